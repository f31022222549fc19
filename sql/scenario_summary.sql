-- One row per scenario and margin_mode: the accounts each stress scenario puts at margin call and at
-- liquidation that are not there at the prices in effect, and the bad debt and partial repayments
-- under the scenario.
--
-- Reads scenario_risk, written by `crossmargin run --scenarios FILE` (or `--scenarios default`, the
-- shipped set); a run without scenarios gives no rows. Each account under a scenario is compared with
-- its own row of account_risk (no move): newly_* counts the accounts flagged under the scenario and
-- not in account_risk. Amounts are sums over the accounts under the scenario; *_change_usdt is the
-- difference to the same sum in account_risk. Scenarios are listed in the order of the scenario file.
-- labels: scenario, margin_mode

with

scenario as (
    select * from scenario_risk
),

now as (
    select
        account_id,
        margin_call as margin_call_now,
        liquidation as liquidation_now,
        bad_debt_usdt as bad_debt_now_usdt,
        partial_repayment_usdt as partial_repayment_now_usdt
    from account_risk
),

joined as (
    select
        s.scenario,
        s.margin_mode,
        s.scenario_position,
        s.margin_call,
        s.liquidation,
        s.bad_debt_usdt,
        s.partial_repayment_usdt,
        n.margin_call_now,
        n.liquidation_now,
        n.bad_debt_now_usdt,
        n.partial_repayment_now_usdt
    from scenario as s
    join now as n using (account_id)
),

by_scenario as (
    select
        scenario,
        margin_mode,
        min(scenario_position) as scenario_position,
        count(*) as accounts,
        count(*) filter (where margin_call) as at_margin_call,
        count(*) filter (where margin_call and not margin_call_now) as newly_at_margin_call,
        count(*) filter (where liquidation) as at_liquidation,
        count(*) filter (where liquidation and not liquidation_now) as newly_at_liquidation,
        count(*) filter (where bad_debt_usdt > 0) as accounts_with_bad_debt,
        sum(bad_debt_usdt) as bad_debt_usdt,
        sum(bad_debt_usdt) - sum(bad_debt_now_usdt) as bad_debt_change_usdt,
        count(*) filter (where partial_repayment_usdt > 0) as accounts_with_partial_repayment,
        sum(partial_repayment_usdt) as partial_repayment_usdt,
        sum(partial_repayment_usdt) - sum(partial_repayment_now_usdt) as partial_repayment_change_usdt
    from joined
    group by scenario, margin_mode
),

final as (
    select
        scenario,
        margin_mode,
        accounts,
        at_margin_call,
        newly_at_margin_call,
        at_liquidation,
        newly_at_liquidation,
        accounts_with_bad_debt,
        bad_debt_usdt,
        bad_debt_change_usdt,
        accounts_with_partial_repayment,
        partial_repayment_usdt,
        partial_repayment_change_usdt
    from by_scenario
    order by scenario_position, margin_mode
)

select * from final
