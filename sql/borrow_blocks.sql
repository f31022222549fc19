-- One row per margin mode and borrow-block reason, over the accounts the engine blocked from borrowing.
--
-- Reads the engine's borrow_blocked / borrow_blocked_reason flags (first matching reason wins)
-- and cross-checks them against the BORROW_BLOCKED rows of actions (action_rows must equal
-- blocked_accounts).
-- labels: margin_mode, borrow_blocked_reason

with

mode_totals as (
    select margin_mode, count(*) as mode_accounts
    from account_risk
    group by margin_mode
),

blocked as (
    select
        margin_mode,
        borrow_blocked_reason,
        count(*) as blocked_accounts,
        sum(total_liability_usdt) as total_liability_usdt,
        sum(net_equity_usdt) as net_equity_usdt,
        sum(bad_debt_usdt) as bad_debt_usdt
    from account_risk
    where borrow_blocked
    group by margin_mode, borrow_blocked_reason
),

action_rows as (
    select r.margin_mode, a.reason as borrow_blocked_reason, count(*) as action_rows
    from actions as a
    join account_risk as r using (account_id)
    where a.action = 'BORROW_BLOCKED'
    group by r.margin_mode, a.reason
),

final as (
    select
        b.margin_mode,
        b.borrow_blocked_reason,
        b.blocked_accounts,
        b.blocked_accounts / t.mode_accounts as share_of_mode_accounts,
        coalesce(ar.action_rows, 0) as action_rows,
        b.total_liability_usdt,
        b.net_equity_usdt,
        b.bad_debt_usdt
    from blocked as b
    join mode_totals as t using (margin_mode)
    left join action_rows as ar using (margin_mode, borrow_blocked_reason)
    order by b.margin_mode, b.blocked_accounts desc, b.borrow_blocked_reason
)

select * from final
