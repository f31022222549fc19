-- One row per night of the root, from its first to its last partition: whether it has a verified partition, under which policy version, and what it scored.
--
-- has_partition is false for a missing night (no as_of=YYYY-MM-DD/ directory) and for a partition
-- left out because it does not verify (left_out_reason says why). other_policy_version marks a
-- partition whose policy_version (from its manifest) differs from the root's latest verified
-- partition: its figures were computed under other rules. accounts_scored counts account_risk rows,
-- data_issue_accounts the distinct accounts of data_issues.
-- scope: root
-- labels: as_of

with

night_axis as (
    select * from nights
),

scored as (
    select as_of, count(*) as accounts_scored
    from account_risk
    group by as_of
),

issues as (
    select as_of, count(distinct account_id) as data_issue_accounts
    from data_issues
    group by as_of
),

final as (
    select
        n.as_of,
        n.has_partition,
        n.left_out_reason,
        n.policy_version,
        n.has_partition and n.policy_version is distinct from n.latest_policy_version as other_policy_version,
        n.latest_policy_version,
        n.previous_as_of,
        s.accounts_scored,
        case when n.has_partition then coalesce(i.data_issue_accounts, 0) end as data_issue_accounts
    from night_axis as n
    left join scored as s using (as_of)
    left join issues as i using (as_of)
    order by n.as_of
)

select * from final
