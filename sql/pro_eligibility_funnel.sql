-- One row per Pro activation condition of the formula in force (in its listed order), plus a final eligible_for_pro row, over Classic accounts.
--
-- Reads pro_ineligible_reasons (the names of the conditions an account fails) and eligible_for_pro;
-- pro_conditions gives the conditions of the policy in force at the run's as_of, in order.
--   failing_accounts:      Classic accounts failing this condition (whatever else they fail)
--   sole_blocker_accounts: accounts for which this is the only failed condition
--   remaining_accounts:    accounts passing this condition and every earlier one (the funnel)
-- The eligible_for_pro row counts the engine's flag; its remaining_accounts must equal the last
-- condition's remaining_accounts. A reason not in pro_conditions (a mismatch with the engine) shows up
-- as an extra row with step null.
-- labels: step, condition

with

classic as (
    select account_id, eligible_for_pro, pro_ineligible_reasons
    from account_risk
    where margin_mode = 'classic'
),

classic_total as (
    select count(*) as classic_accounts from classic
),

failures as (
    select
        account_id,
        unnest(pro_ineligible_reasons) as condition,
        len(pro_ineligible_reasons) as failed_conditions
    from classic
),

first_failure as (
    select f.account_id, min(c.position) as first_failed_step
    from failures as f
    join pro_conditions as c using (condition)
    group by f.account_id
),

per_condition as (
    select
        condition,
        count(distinct account_id) as failing_accounts,
        count(distinct account_id) filter (where failed_conditions = 1) as sole_blocker_accounts
    from failures
    group by condition
),

steps as (
    select
        c.position as step,
        coalesce(c.condition, p.condition) as condition,
        coalesce(p.failing_accounts, 0) as failing_accounts,
        coalesce(p.sole_blocker_accounts, 0) as sole_blocker_accounts
    from pro_conditions as c
    full outer join per_condition as p using (condition)
),

funnel as (
    select
        s.step,
        s.condition,
        s.failing_accounts,
        s.sole_blocker_accounts,
        t.classic_accounts - s.failing_accounts as passing_accounts,
        case
            when s.step is null then null
            else t.classic_accounts - (
                select count(*) from first_failure as ff where ff.first_failed_step <= s.step
            )
        end as remaining_accounts
    from steps as s
    cross join classic_total as t
),

eligible as (
    select
        (select max(position) from pro_conditions) + 1 as step,
        'eligible_for_pro' as condition,
        count(*) filter (where not eligible_for_pro) as failing_accounts,
        null::bigint as sole_blocker_accounts,
        count(*) filter (where eligible_for_pro) as passing_accounts,
        count(*) filter (where eligible_for_pro) as remaining_accounts
    from classic
),

final as (
    select
        step,
        condition,
        failing_accounts,
        sole_blocker_accounts,
        passing_accounts,
        remaining_accounts,
        remaining_accounts / nullif((select classic_accounts from classic_total), 0) as remaining_share
    from (select * from funnel union all select * from eligible)
    order by step nulls last, condition
)

select * from final
