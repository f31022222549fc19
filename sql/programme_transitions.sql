-- One row per night, dimension and move: the accounts whose compliance state, margin mode or margin state differs from the root's previous night.
--
-- States come from report account_states; an account not in account_risk on one of the two nights
-- (a new account, one gone, or one left out as a data issue) is 'absent' there. The previous night
-- is nights.previous_as_of, the latest earlier night with a verified partition (days_since_previous
-- says how far back it is when nights are missing). Only moves are listed (from_state differs from
-- to_state); the first night, and a night without a verified partition, have no rows.
-- An account in every partition with the same flags on every night cannot move: it is set aside
-- before the nights are paired (most accounts, most nights), which keeps the pairing small.
-- scope: root
-- reads reports: account_states
-- labels: as_of, dimension, from_state, to_state

with

pairs_of_nights as (
    select as_of, previous_as_of
    from nights
    where has_partition and previous_as_of is not null
),

partitions_read as (
    select count(*) as nights from nights where has_partition
),

movers as (
    -- the accounts whose flags behind the states (account_states reads margin_mode, pro_compliant,
    -- migrate_now, due_for_migration, margin_call, liquidation) differ between two nights, or that
    -- miss a night: only they can move; one integer per account and night keeps this pass cheap
    select account_id
    from (
        select
            account_id,
            (margin_mode = 'pro')::integer + 2 * pro_compliant::integer + 4 * migrate_now::integer
                + 8 * due_for_migration::integer + 16 * margin_call::integer + 32 * liquidation::integer
                as flags
        from account_risk
    )
    group by account_id
    having count(*) < (select nights from partitions_read) or min(flags) <> max(flags)
),

states as (
    select *
    from account_states
    where account_id in (select account_id from movers)
),

now as (
    select s.*, n.previous_as_of
    from states as s
    join pairs_of_nights as n using (as_of)
),

prev as (
    select s.*, n.as_of as next_as_of
    from states as s
    join pairs_of_nights as n on s.as_of = n.previous_as_of
),

paired as (
    select
        coalesce(now.as_of, prev.next_as_of) as as_of,
        coalesce(now.previous_as_of, prev.as_of) as previous_as_of,
        coalesce(prev.compliance_state, 'absent') as compliance_from,
        coalesce(now.compliance_state, 'absent') as compliance_to,
        coalesce(prev.margin_mode, 'absent') as mode_from,
        coalesce(now.margin_mode, 'absent') as mode_to,
        coalesce(prev.margin_state, 'absent') as margin_from,
        coalesce(now.margin_state, 'absent') as margin_to,
        count(*) as accounts
    from now
    full outer join prev on now.as_of = prev.next_as_of and now.account_id = prev.account_id
    group by all
),

moves as (
    select as_of, previous_as_of, 1 as dimension_order, 'compliance_state' as dimension,
           compliance_from as from_state, compliance_to as to_state, accounts
    from paired
    union all
    select as_of, previous_as_of, 2, 'margin_mode', mode_from, mode_to, accounts
    from paired
    union all
    select as_of, previous_as_of, 3, 'margin_state', margin_from, margin_to, accounts
    from paired
),

final as (
    select
        as_of,
        dimension,
        from_state,
        to_state,
        sum(accounts) as accounts,
        previous_as_of,
        datediff('day', previous_as_of, as_of) as days_since_previous
    from moves
    where from_state <> to_state
    group by as_of, previous_as_of, dimension_order, dimension, from_state, to_state
    order by as_of, dimension_order, accounts desc, from_state, to_state
)

select * from final
