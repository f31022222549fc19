-- One row per scored account (over a root: per account and night): its margin mode, compliance state and margin state, read from the engine's flags.
--
-- compliance_state: classic (a Classic account) | compliant (pro_compliant) | switch_now (migrate_now)
-- | pending (due_for_migration, switch date not reached) | not_yet_required (non-compliant Pro before
-- the compliance date). margin_state: liquidation | margin_call (and not liquidated) | none.
-- due_for_migration, partial_repayment_usdt and total_liability_usdt are the engine's, as they are.
-- Over one run as_of is the run's valuation time; over a root it is the night of the partition.
-- The migration reports (migration_cohorts, programme_transitions, programme_cohort) read these states
-- from here, so a state is named in one place.
-- scope: run, root
-- labels: as_of, account_id

with

risk as (
    select * from account_risk
),

final as (
    select
        as_of,
        account_id,
        margin_mode,
        case
            when margin_mode <> 'pro' then 'classic'
            when pro_compliant then 'compliant'
            when migrate_now then 'switch_now'
            when due_for_migration then 'pending'
            else 'not_yet_required'
        end as compliance_state,
        case
            when liquidation then 'liquidation'
            when margin_call then 'margin_call'
            else 'none'
        end as margin_state,
        due_for_migration,
        partial_repayment_usdt,
        total_liability_usdt
    from risk
)

select * from final
