-- One row per input table and issue code, counting the accounts the engine left out of account_risk.
--
-- Every input account is in exactly one of account_risk or data_issues; an account can have several
-- issues, so accounts here do not add up across rows (distinct_accounts_all_issues does, once).
-- labels: table, code

with

issues as (
    select * from data_issues
),

final as (
    select
        "table",
        code,
        count(distinct account_id) as accounts,
        count(*) as issue_rows,
        (select count(distinct account_id) from issues) as distinct_accounts_all_issues,
        min(detail) as example_detail
    from issues
    group by "table", code
    order by accounts desc, "table", code
)

select * from final
