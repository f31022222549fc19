-- One row per night and state of the cohort: the accounts due for migration on the root's first night, followed across the nights that have a verified partition.
--
-- The cohort is fixed on the first night with a verified partition (due_for_migration there). Each
-- later night counts its accounts per compliance state of report account_states ('classic' once
-- switched, 'absent' when the account is not in that night's account_risk), with the engine's
-- partial_repayment_usdt and total_liability_usdt summed over them; share_of_cohort divides by the
-- cohort's size. A night without a verified partition has no rows (never interpolated).
-- scope: root
-- reads reports: account_states
-- labels: as_of, state

with

first_night as (
    select min(as_of) as as_of from nights where has_partition
),

cohort as (
    select r.account_id
    from account_risk as r
    join first_night as f using (as_of)
    where r.due_for_migration
),

cohort_size as (
    select count(*) as accounts from cohort
),

nights_with_partition as (
    select as_of from nights where has_partition
),

followed as (
    select
        n.as_of,
        coalesce(s.compliance_state, 'absent') as state,
        r.margin_call,
        r.partial_repayment_usdt,
        r.total_liability_usdt
    from nights_with_partition as n
    cross join cohort as c
    left join account_states as s on s.as_of = n.as_of and s.account_id = c.account_id
    left join account_risk as r on r.as_of = n.as_of and r.account_id = c.account_id
),

final as (
    select
        f.as_of,
        (select as_of from first_night) as cohort_as_of,
        f.state,
        count(*) as accounts,
        count(*) / (select accounts from cohort_size) as share_of_cohort,
        count(*) filter (where f.margin_call) as margin_call_accounts,
        coalesce(sum(f.partial_repayment_usdt), 0) as partial_repayment_usdt,
        coalesce(sum(f.total_liability_usdt), 0) as total_liability_usdt
    from followed as f
    group by f.as_of, f.state
    order by f.as_of, accounts desc, f.state
)

select * from final
