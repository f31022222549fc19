-- One row per margin mode and Pro level threshold, counting accounts whose Pro margin level crosses the threshold between the old and the new formula.
--
-- The old Pro level is net_equity / maintenance_margin; the new one takes collateral haircuts and
-- open-order loss: (net_collateral - open_order_loss) / maintenance_margin. Both are computed by the
-- engine for every account (pro_margin_level_old, pro_margin_level_new); this report only compares
-- each of them with the policy thresholds of the Pro level (policy_thresholds: Pro activation level,
-- Pro margin call, Pro liquidation), in the engine's direction: above means level > threshold.
--   crossed_down: above under the old formula, at or below under the new one
--   crossed_up:   the reverse (not expected: haircuts and open-order loss only lower the level)
-- The crossed_down accounts are split by cause: haircut only (open_order_loss = 0), open-order loss
-- only (collateral = total asset), or both; haircut_usdt = total_asset - collateral.
-- labels: margin_mode, threshold

with

thresholds as (
    select name as threshold, value as threshold_value
    from policy_thresholds
    where name in ('new_min_pro_margin_level', 'pro_margin_call', 'pro_liquidation')
),

compared as (
    select
        r.margin_mode,
        t.threshold,
        t.threshold_value,
        r.pro_margin_level_old > t.threshold_value as above_old,
        r.pro_margin_level_new > t.threshold_value as above_new,
        r.total_asset_usdt - r.collateral_usdt as haircut_usdt,
        r.open_order_loss_usdt
    from account_risk as r
    cross join thresholds as t
),

final as (
    select
        margin_mode,
        threshold,
        threshold_value,
        count(*) as accounts,
        count(*) filter (where above_old) as above_old_formula,
        count(*) filter (where above_new) as above_new_formula,
        count(*) filter (where above_old and not above_new) as crossed_down,
        count(*) filter (where not above_old and above_new) as crossed_up,
        count(*) filter (where above_old and not above_new and open_order_loss_usdt = 0) as crossed_down_haircut_only,
        count(*) filter (where above_old and not above_new and haircut_usdt = 0) as crossed_down_open_order_loss_only,
        count(*) filter (
            where above_old and not above_new and open_order_loss_usdt > 0 and haircut_usdt <> 0
        ) as crossed_down_both,
        coalesce(sum(haircut_usdt) filter (where above_old and not above_new), 0) as crossed_down_haircut_usdt,
        coalesce(sum(open_order_loss_usdt) filter (where above_old and not above_new), 0)
            as crossed_down_open_order_loss_usdt
    from compared
    group by margin_mode, threshold, threshold_value
    order by margin_mode, threshold_value desc
)

select * from final
