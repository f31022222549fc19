-- One row per stress scenario: report scenario_summary summed over the margin modes, in the order of the scenario file.
--
-- A run without --scenarios gives no rows.
-- reads reports: scenario_summary
-- labels: scenario

with

summary as (
    select * from scenario_summary
),

positions as (
    select scenario, min(scenario_position) as scenario_position
    from scenario_risk
    group by scenario
),

final as (
    select
        s.scenario,
        sum(s.accounts) as accounts,
        sum(s.newly_at_margin_call) as newly_at_margin_call,
        sum(s.newly_at_liquidation) as newly_at_liquidation,
        sum(s.bad_debt_usdt) as bad_debt_usdt,
        sum(s.partial_repayment_usdt) as partial_repayment_usdt
    from summary as s
    join positions as p using (scenario)
    group by s.scenario
    order by min(p.scenario_position)
)

select * from final
