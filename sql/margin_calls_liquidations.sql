-- One row per margin mode and Classic leverage, with the margin calls and liquidations the engine decided.
--
-- For Pro accounts classic_leverage is the leverage they switch (or are switched) to; their calls use
-- the Pro thresholds. margin_calls counts the margin_call flag, which is true for liquidated accounts
-- too; margin_call_only excludes them (= MARGIN_CALL action rows). The action_* columns count the rows
-- of actions, as a cross-check, and action_reasons lists their reasons (classic_3x, classic_5x, pro).
-- labels: margin_mode, classic_leverage

with

risk as (
    select * from account_risk
),

flags as (
    select
        margin_mode,
        classic_leverage,
        count(*) as accounts,
        count(*) filter (where margin_call) as margin_calls,
        count(*) filter (where margin_call and not liquidation) as margin_call_only,
        count(*) filter (where liquidation) as liquidations,
        sum(total_liability_usdt) filter (where margin_call) as liability_under_margin_call_usdt,
        sum(total_liability_usdt) filter (where liquidation) as liability_liquidated_usdt,
        sum(bad_debt_usdt) filter (where liquidation) as bad_debt_liquidated_usdt
    from risk
    group by margin_mode, classic_leverage
),

action_counts as (
    select
        r.margin_mode,
        r.classic_leverage,
        count(*) filter (where a.action = 'MARGIN_CALL') as margin_call_action_rows,
        count(*) filter (where a.action = 'LIQUIDATION') as liquidation_action_rows,
        string_agg(distinct a.reason, ',' order by a.reason) as action_reasons
    from actions as a
    join risk as r using (account_id)
    where a.action in ('MARGIN_CALL', 'LIQUIDATION')
    group by r.margin_mode, r.classic_leverage
),

final as (
    select
        f.margin_mode,
        f.classic_leverage,
        f.accounts,
        f.margin_calls,
        f.margin_call_only,
        f.liquidations,
        f.margin_calls / f.accounts as margin_call_share,
        coalesce(f.liability_under_margin_call_usdt, 0) as liability_under_margin_call_usdt,
        coalesce(f.liability_liquidated_usdt, 0) as liability_liquidated_usdt,
        coalesce(f.bad_debt_liquidated_usdt, 0) as bad_debt_liquidated_usdt,
        coalesce(a.margin_call_action_rows, 0) as margin_call_action_rows,
        coalesce(a.liquidation_action_rows, 0) as liquidation_action_rows,
        a.action_reasons
    from flags as f
    left join action_counts as a using (margin_mode, classic_leverage)
    order by f.margin_mode, f.classic_leverage
)

select * from final
