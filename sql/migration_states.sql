-- One row per compliance state of the Pro accounts: report migration_cohorts summed over its buckets and countries.
--
-- The states in the order of migration_cohorts: switch_now, pending, not_yet_required, compliant.
-- reads reports: migration_cohorts
-- labels: compliance_state

with

cohorts as (
    select * from migration_cohorts
),

final as (
    select
        compliance_state,
        sum(accounts) as accounts,
        sum(due_for_migration_accounts) as due_for_migration_accounts,
        sum(migrate_now_accounts) as migrate_now_accounts,
        sum(accounts_needing_repayment) as accounts_needing_repayment,
        sum(total_asset_usdt) as total_asset_usdt,
        sum(total_liability_usdt) as total_liability_usdt,
        sum(net_equity_usdt) as net_equity_usdt,
        sum(partial_repayment_usdt) as partial_repayment_usdt,
        sum(bad_debt_usdt) as bad_debt_usdt,
        sum(accounts_with_bad_debt) as accounts_with_bad_debt
    from cohorts
    group by compliance_state
    order by case compliance_state
        when 'switch_now' then 1 when 'pending' then 2 when 'not_yet_required' then 3 else 4
    end
)

select * from final
