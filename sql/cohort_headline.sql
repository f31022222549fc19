-- One row per run: the headline figures of the migration cohort page.
--
-- Counts of the engine's flags and sums of its amounts over account_risk (bad debt over the Pro
-- accounts due for migration), and the distinct accounts of data_issues; nothing is recomputed.
-- labels: accounts

with

risk as (
    select * from account_risk
),

issues as (
    select count(distinct account_id) as accounts_with_data_issues from data_issues
),

figures as (
    select
        count(*) as accounts,
        count(*) filter (where margin_mode = 'pro' and due_for_migration) as due_for_migration,
        count(*) filter (where margin_mode = 'pro' and migrate_now) as migrate_now,
        coalesce(sum(partial_repayment_usdt) filter (where due_for_migration), 0) as partial_repayment_usdt,
        coalesce(sum(bad_debt_usdt) filter (where due_for_migration), 0) as due_bad_debt_usdt
    from risk
),

final as (
    select f.*, i.accounts_with_data_issues
    from figures as f
    cross join issues as i
)

select * from final
