-- One row per margin mode, condition and band of what it would take to meet it: the least USDT deposit
-- (top-up), or the fewest open orders to cancel.
--
-- Reads the engine's columns of account_risk (docs/rules.md §9), each over the accounts it is defined for:
--   out_of_margin_call        margin_call_topup_usdt     every account
--   eligible_for_pro          pro_topup_usdt             Classic accounts (the conditions money changes)
--   switch_to_classic         classic_switch_topup_usdt  Pro accounts (the level condition)
--   pro_level_by_cancelling   pro_orders_to_cancel       Classic accounts, new Pro formula only
-- A top-up is the deposit at which the level reaches its threshold: the account must deposit more than
-- that. Band "0": the condition holds now, or the level sits exactly at its threshold (any deposit at
-- all lifts it); "no deposit is enough" / "cancelling all is not enough": the column is null. Top-up
-- bands are right-closed, in USDT ((100, 500] holds 100 < t <= 500), their edges written in thousands
-- of USDT. topup_usdt sums the band's top-ups (null where none is enough), orders_to_cancel its counts.
-- E.g. the Classic accounts that would meet Pro's money conditions with at most 500 USDT: the
-- eligible_for_pro rows of bands 0, (0, 100] and (100, 500].
-- labels: margin_mode, condition, band

with

risk as (
    select * from account_risk
),

topups as (
    select margin_mode, 'out_of_margin_call' as condition, 1 as condition_order, margin_call_topup_usdt as topup
    from risk
    union all
    select margin_mode, 'eligible_for_pro', 2, pro_topup_usdt
    from risk
    where margin_mode = 'classic'
    union all
    select margin_mode, 'switch_to_classic', 3, classic_switch_topup_usdt
    from risk
    where margin_mode = 'pro'
),

orders as (
    select margin_mode, 'pro_level_by_cancelling' as condition, 4 as condition_order, pro_orders_to_cancel as orders
    from risk
    where margin_mode = 'classic' and (select new_formula from run_info)
),

topup_bands as (
    select * from (
        values
            (1, 0.0, 0.1, '(0, 100]'),
            (2, 0.1, 0.5, '(100, 500]'),
            (3, 0.5, 1.0, '(500, 1k]'),
            (4, 1.0, 5.0, '(1k, 5k]'),
            (5, 5.0, 10.0, '(5k, 10k]'),
            (6, 10.0, null, '> 10k')
    ) as t (band_order, lower_k_usdt, upper_k_usdt, band)
),

order_bands as (
    select * from (
        values
            (1, 1, 1, '1'),
            (2, 2, 2, '2'),
            (3, 3, 5, '3-5'),
            (4, 6, 10, '6-10'),
            (5, 11, null, '> 10')
    ) as t (band_order, lowest, highest, band)
),

banded_topups as (
    select
        t.margin_mode,
        t.condition,
        t.condition_order,
        t.topup,
        case
            when t.topup is null then 9
            when t.topup = 0 then 0
            else b.band_order
        end as band_order,
        case
            when t.topup is null then 'no deposit is enough'
            when t.topup = 0 then '0'
            else b.band
        end as band
    from topups as t
    left join topup_bands as b
        on t.topup > b.lower_k_usdt * 1000
        and (b.upper_k_usdt is null or t.topup <= b.upper_k_usdt * 1000)
),

banded_orders as (
    select
        o.margin_mode,
        o.condition,
        o.condition_order,
        o.orders,
        case
            when o.orders is null then 9
            when o.orders = 0 then 0
            else b.band_order
        end as band_order,
        case
            when o.orders is null then 'cancelling all is not enough'
            when o.orders = 0 then '0'
            else b.band
        end as band
    from orders as o
    left join order_bands as b
        on o.orders >= b.lowest
        and (b.highest is null or o.orders <= b.highest)
),

per_band as (
    select
        margin_mode,
        condition,
        condition_order,
        band,
        band_order,
        count(*) as accounts,
        sum(topup) as topup_usdt,
        null::bigint as orders_to_cancel
    from banded_topups
    group by all
    union all
    select
        margin_mode,
        condition,
        condition_order,
        band,
        band_order,
        count(*) as accounts,
        null::double as topup_usdt,
        sum(orders)::bigint as orders_to_cancel
    from banded_orders
    group by all
),

final as (
    select margin_mode, condition, band, condition_order, band_order, accounts, topup_usdt, orders_to_cancel
    from per_band
    order by margin_mode, condition_order, band_order
)

select * from final
