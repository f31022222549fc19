-- One row per margin mode, summarising the book and every decision the engine took at the run's as_of.
--
-- Sums of the engine's quantities and counts of its flags; nothing is recomputed.
-- labels: margin_mode

with

risk as (
    select * from account_risk
),

final as (
    select
        margin_mode,
        count(*) as accounts,
        sum(total_asset_usdt) as total_asset_usdt,
        sum(total_liability_usdt) as total_liability_usdt,
        sum(net_equity_usdt) as net_equity_usdt,
        sum(collateral_usdt) as collateral_usdt,
        sum(open_order_loss_usdt) as open_order_loss_usdt,
        sum(bad_debt_usdt) as bad_debt_usdt,
        count(*) filter (where total_liability_usdt = 0) as accounts_without_liability,
        count(*) filter (where margin_call) as margin_calls,
        count(*) filter (where liquidation) as liquidations,
        count(*) filter (where borrow_blocked) as borrow_blocked,
        count(*) filter (where due_for_migration) as due_for_migration,
        count(*) filter (where migrate_now) as migrate_now,
        sum(partial_repayment_usdt) as partial_repayment_usdt,
        count(*) filter (where eligible_for_pro) as eligible_for_pro,
        count(*) filter (where can_switch_to_classic) as can_switch_to_classic,
        count(*) filter (where switches_left_today = 0) as no_switches_left_today,
        median(margin_level) filter (where not isinf(margin_level)) as median_finite_margin_level
    from risk
    group by margin_mode
    order by margin_mode
)

select * from final
