-- One row per migration state (MIGRATE_TO_CLASSIC reason) and Classic leverage, over the Pro accounts due for migration.
--
-- partial_repayment_usdt is the engine's amount an account must repay before it is switched to Classic
-- (at its own classic_leverage); the PARTIAL_REPAYMENT rows of actions carry the same amounts
-- (repayment_action_usdt is the cross-check). migration_state is the reason of the account's
-- MIGRATE_TO_CLASSIC action: pending before the switch date, due from it.
-- labels: migration_state, classic_leverage

with

due as (
    select *
    from account_risk
    where due_for_migration
),

migration as (
    select account_id, reason as migration_state
    from actions
    where action = 'MIGRATE_TO_CLASSIC'
),

repayment_actions as (
    select account_id, sum(amount_usdt) as repayment_action_usdt
    from actions
    where action = 'PARTIAL_REPAYMENT'
    group by account_id
),

final as (
    select
        coalesce(m.migration_state, 'no_action_row') as migration_state,
        d.classic_leverage,
        count(*) as due_accounts,
        count(*) filter (where d.partial_repayment_usdt > 0) as accounts_needing_repayment,
        sum(d.partial_repayment_usdt) as partial_repayment_usdt,
        coalesce(sum(ra.repayment_action_usdt), 0) as repayment_action_usdt,
        max(d.partial_repayment_usdt) as max_partial_repayment_usdt,
        sum(d.total_asset_usdt) as total_asset_usdt,
        sum(d.total_liability_usdt) as total_liability_usdt,
        sum(d.total_liability_usdt) filter (where d.partial_repayment_usdt > 0) as liability_needing_repayment_usdt,
        sum(d.bad_debt_usdt) as bad_debt_usdt
    from due as d
    left join migration as m using (account_id)
    left join repayment_actions as ra using (account_id)
    group by all
    order by migration_state, d.classic_leverage
)

select * from final
