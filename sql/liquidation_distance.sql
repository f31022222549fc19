-- One row per margin_mode and liquidation_drop band: how far the prices of every non-stable asset
-- may fall together before each account reaches its liquidation threshold.
--
-- liquidation_drop is the engine's column of account_risk (docs/rules.md §8.2): 0 for an account
-- already at or below its threshold ("now"), null when no fall down to -100 % reaches it ("never":
-- no liability, no exposure to a moving asset, or a short book). Bands are right-closed: (5 %, 10 %]
-- holds a drop d with 0.05 < d <= 0.10. band_order sorts the bands from "now" to "never".
-- labels: margin_mode, liquidation_drop_band

with

risk as (
    select margin_mode, liquidation_drop, total_liability_usdt from account_risk
),

banded as (
    select
        margin_mode,
        total_liability_usdt,
        case
            when liquidation_drop is null then 9
            when liquidation_drop = 0 then 0
            when liquidation_drop <= 0.05 then 1
            when liquidation_drop <= 0.10 then 2
            when liquidation_drop <= 0.20 then 3
            when liquidation_drop <= 0.30 then 4
            when liquidation_drop <= 0.50 then 5
            when liquidation_drop <= 0.75 then 6
            else 7
        end as band_order
    from risk
),

labels as (
    select * from (
        values
            (0, 'now'),
            (1, '(0, 5 %]'),
            (2, '(5 %, 10 %]'),
            (3, '(10 %, 20 %]'),
            (4, '(20 %, 30 %]'),
            (5, '(30 %, 50 %]'),
            (6, '(50 %, 75 %]'),
            (7, '(75 %, 100 %]'),
            (9, 'never')
    ) as t (band_order, liquidation_drop_band)
),

final as (
    select
        b.margin_mode,
        l.liquidation_drop_band,
        b.band_order,
        count(*) as accounts,
        sum(b.total_liability_usdt) as total_liability_usdt
    from banded as b
    join labels as l using (band_order)
    group by b.margin_mode, l.liquidation_drop_band, b.band_order
    order by b.margin_mode, b.band_order
)

select * from final
