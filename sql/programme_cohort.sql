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
    select s.account_id
    from account_states as s
    join first_night as f using (as_of)
    where s.due_for_migration
),

cohort_size as (
    select count(*) as accounts from cohort
),

present as (
    select
        as_of,
        compliance_state as state,
        count(*) as accounts,
        count(*) filter (where margin_state <> 'none') as margin_call_accounts,
        sum(partial_repayment_usdt) as partial_repayment_usdt,
        sum(total_liability_usdt) as total_liability_usdt
    from account_states
    where account_id in (select account_id from cohort)
    group by as_of, compliance_state
),

absent as (
    select
        n.as_of,
        'absent' as state,
        (select accounts from cohort_size) - coalesce(sum(p.accounts), 0) as accounts,
        0 as margin_call_accounts,
        0.0 as partial_repayment_usdt,
        0.0 as total_liability_usdt
    from nights as n
    left join present as p using (as_of)
    where n.has_partition
    group by n.as_of
),

followed as (
    select * from present
    union all
    select * from absent where accounts > 0
),

final as (
    select
        as_of,
        (select as_of from first_night) as cohort_as_of,
        state,
        accounts,
        accounts / (select accounts from cohort_size) as share_of_cohort,
        margin_call_accounts,
        partial_repayment_usdt,
        total_liability_usdt
    from followed
    where (select accounts from cohort_size) > 0
    order by as_of, accounts desc, state
)

select * from final
