-- One row per Classic margin-level bucket and net-equity bucket of report migration_cohorts: the Pro accounts due for migration in it.
--
-- Every pair of the buckets that occur in migration_cohorts is listed, empty ones with 0, in bucket
-- order, so a chart has a fixed grid.
-- reads reports: migration_cohorts
-- labels: classic_margin_level_bucket, net_equity_bucket

with

cohorts as (
    select * from migration_cohorts
),

level_buckets as (
    select distinct level_bucket_order, classic_margin_level_bucket from cohorts
),

equity_buckets as (
    select distinct equity_bucket_order, net_equity_bucket from cohorts
),

due as (
    select
        classic_margin_level_bucket,
        net_equity_bucket,
        sum(due_for_migration_accounts) as due_for_migration_accounts
    from cohorts
    group by all
),

final as (
    select
        l.classic_margin_level_bucket,
        e.net_equity_bucket,
        coalesce(d.due_for_migration_accounts, 0) as due_for_migration_accounts,
        l.level_bucket_order,
        e.equity_bucket_order
    from level_buckets as l
    cross join equity_buckets as e
    left join due as d using (classic_margin_level_bucket, net_equity_bucket)
    order by l.level_bucket_order, e.equity_bucket_order
)

select * from final
