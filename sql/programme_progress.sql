-- One row per night of the root, from its first to its last partition: the migration programme's counts and amounts that night.
--
-- Counts of the engine's flags and the sum of its partial_repayment_usdt over the night's
-- account_risk; nothing is recomputed. pro_compliant counts the Pro accounts whose pro_compliant flag
-- is set. newly_compliant counts the accounts that are Pro on this night and on the root's previous
-- night (nights.previous_as_of: the latest earlier night with a verified partition), compliant now
-- and not then; it is null on the first night. A night without a verified partition (missing, or
-- left out because it does not verify) has a row whose figures are all null: nights are never
-- interpolated.
-- scope: root
-- labels: as_of

with

night_axis as (
    select as_of, has_partition, previous_as_of from nights
),

per_night as (
    select
        as_of,
        count(*) as accounts,
        count(*) filter (where margin_mode = 'pro') as pro_accounts,
        count(*) filter (where margin_mode = 'pro' and pro_compliant) as pro_compliant,
        count(*) filter (where due_for_migration) as due_for_migration,
        count(*) filter (where migrate_now) as migrate_now,
        count(*) filter (where eligible_for_pro) as eligible_for_pro,
        sum(partial_repayment_usdt) as partial_repayment_usdt
    from account_risk
    group by as_of
),

pro as (
    select as_of, account_id, pro_compliant
    from account_risk
    where margin_mode = 'pro'
),

newly as (
    select n.as_of, count(*) as newly_compliant
    from night_axis as n
    join pro as now on now.as_of = n.as_of
    join pro as prev on prev.as_of = n.previous_as_of and prev.account_id = now.account_id
    where now.pro_compliant and not prev.pro_compliant
    group by n.as_of
),

final as (
    select
        n.as_of,
        p.accounts,
        p.pro_accounts,
        p.pro_compliant,
        p.due_for_migration,
        p.migrate_now,
        p.eligible_for_pro,
        p.partial_repayment_usdt,
        case
            when n.has_partition and n.previous_as_of is not null then coalesce(c.newly_compliant, 0)
        end as newly_compliant
    from night_axis as n
    left join per_night as p using (as_of)
    left join newly as c using (as_of)
    order by n.as_of
)

select * from final
