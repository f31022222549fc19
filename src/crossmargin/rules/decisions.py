"""Decisions per account at `as_of`, docs/rules.md §4: one small named expression per row of the table.

Each compares a level as output (one float64 division) with the policy's float64 threshold in the
direction docs/rules.md writes; nothing is rearranged: the comparisons are the conditions of
rules/thresholds.py. Date cut-overs are scalars of the resolved Policy.
"""

from __future__ import annotations

import polars as pl

from crossmargin.io.schemas import (
    BORROW_BLOCKED_REASONS,
    NOT_CLASSIC,
    PRO_CONDITIONS_NEW,
    PRO_CONDITIONS_OLD,
    BorrowBlockedReason,
    ProCondition,
)
from crossmargin.policy import Policy
from crossmargin.rules import thresholds
from crossmargin.rules.quantities import is_classic, is_pro
from crossmargin.rules.thresholds import classic_threshold, initial_risk_ratio


def _stamped_within(column: str, start, as_of) -> pl.Expr:
    c = pl.col(column)
    return c.is_not_null() & (c >= start) & (c <= as_of)


COMPLIANCE_STAMPS = ["questionnaire_completed_at", "terms_agreed_at"]


def compliance_stamps(policy: Policy) -> dict[str, pl.Expr]:
    """Per timestamp compliance needs: not null, >= the compliance date and <= as_of."""
    start = policy.compliance_required_from
    return {column: _stamped_within(column, start, policy.as_of) for column in COMPLIANCE_STAMPS}


def pro_compliant(policy: Policy) -> pl.Expr:
    """Questionnaire and terms both not null, >= compliance date and <= as_of."""
    questionnaire, terms = compliance_stamps(policy).values()
    return questionnaire & terms


def liquidation(policy: Policy) -> pl.Expr:
    """margin_level <= liquidation threshold of the account's mode."""
    return thresholds.liquidation(policy).holds()


def margin_call(policy: Policy) -> pl.Expr:
    """margin_level <= margin-call threshold of its mode (Classic: of its leverage); true when liquidated."""
    return thresholds.margin_call(policy).holds()


def borrow_block_reasons(policy: Policy) -> dict[str, pl.Expr]:
    """Each reason borrowing is blocked for, with when it applies, in the order they are tried: Classic
    collateral level <= IRR; Pro non-compliant (from 2024-12-19); Pro without available margin."""
    return dict(
        zip(
            BORROW_BLOCKED_REASONS,
            [
                is_classic() & thresholds.borrow_collateral_level(policy).holds(),
                is_pro() & ~pl.col("pro_compliant") & pl.lit(policy.noncompliant_borrow_disabled),
                is_pro() & (pl.col("pro_available_margin_usdt") <= 0),
            ],
            strict=True,
        )
    )


def borrow_blocked_reason(policy: Policy) -> pl.Expr:
    """The first reason of borrow_block_reasons that applies; null when none does."""

    def reason(name: str) -> pl.Expr:  # the enum's value itself: no text is built per row, then cast
        return pl.lit(name, dtype=BorrowBlockedReason)

    (first, applies), *others = borrow_block_reasons(policy).items()
    chain = pl.when(applies).then(reason(first))
    for name, applies in others:
        chain = chain.when(applies).then(reason(name))
    return chain.otherwise(pl.lit(None, dtype=BorrowBlockedReason))


def borrow_blocked() -> pl.Expr:
    return pl.col("borrow_blocked_reason").is_not_null()


def due_for_migration(policy: Policy) -> pl.Expr:
    """Pro, non-compliant, as_of >= 2024-12-17."""
    return is_pro() & ~pl.col("pro_compliant") & pl.lit(policy.compliance_required)


def migrate_now(policy: Policy) -> pl.Expr:
    """due_for_migration and as_of >= 2025-01-15."""
    return pl.col("due_for_migration") & pl.lit(policy.noncompliant_switched)


def repayment_at_risk(policy: Policy) -> pl.Expr:
    """classic_margin_level < the Classic margin-call threshold of the account's classic_leverage."""
    return pl.col("classic_margin_level") < classic_threshold(policy, "margin_call")


def partial_repayment_usdt(policy: Policy) -> pl.Expr:
    """x = (T·L − A)/(T − 1) clipped to [0, min(A, L)] when due and classic level < Classic margin call; else 0."""
    target = initial_risk_ratio(policy)
    a, liab = pl.col("total_asset_usdt"), pl.col("total_liability_usdt")
    x = (target * liab - a) / (target - 1.0)
    return (
        pl.when(pl.col("due_for_migration") & repayment_at_risk(policy))
        .then(x.clip(pl.lit(0.0), pl.min_horizontal(a, liab)))
        .otherwise(pl.lit(0.0))
    )


def bad_debt_usdt() -> pl.Expr:
    """max(L − A, 0)."""
    return pl.max_horizontal(pl.col("total_liability_usdt") - pl.col("total_asset_usdt"), pl.lit(0.0))


def switches_left_today(policy: Policy) -> pl.Expr:
    """5 − switches in [start of as_of's UTC day, as_of], floored at 0 (count joined as switches_today)."""
    return pl.max_horizontal(
        pl.lit(policy.max_switches_per_utc_day) - pl.col("switches_today"), pl.lit(0)
    ).cast(pl.Int64)


def pro_conditions(policy: Policy) -> dict[str, pl.Expr]:
    """The activation conditions in force (docs/rules.md §4 eligible_for_pro), named; exhaustive lists."""
    switches = pl.col("switches_left_today") > 0
    country = ~pl.col("country").is_in(list(policy.restricted_jurisdictions))
    if policy.new_formula:
        terms = pl.col("terms_agreed_at").is_not_null() & (pl.col("terms_agreed_at") <= policy.as_of)
        exprs = [
            pl.col("cross_margin_activated"),
            pl.col("pro_quiz_passed"),
            terms,
            thresholds.pro_level_after_switch(policy).holds(),
            thresholds.pro_net_equity(policy).holds(),
            country,
            switches,
        ]
        return dict(zip(PRO_CONDITIONS_NEW, exprs, strict=True))
    exprs = [
        pl.col("cross_margin_activated"),
        pl.col("pro_quiz_passed"),
        country,
        thresholds.pro_classic_collateral_level(policy).holds(),
        switches,
    ]
    return dict(zip(PRO_CONDITIONS_OLD, exprs, strict=True))


def pro_failed_conditions(policy: Policy) -> pl.Expr:
    """Bitmask of the failed activation conditions (bit i: i-th condition in force); Pro: the bit past them."""
    conditions = list(pro_conditions(policy).values())
    mask = pl.lit(0, pl.UInt16)
    for i, ok in enumerate(conditions):
        mask = mask + pl.when(ok).then(pl.lit(0, pl.UInt16)).otherwise(pl.lit(1 << i, pl.UInt16))
    return pl.when(is_pro()).then(pl.lit(1 << len(conditions), pl.UInt16)).otherwise(mask)


def pro_ineligible_reasons(policy: Policy) -> pl.Expr:
    """Names of the failed conditions in rule order, read off pro_failed_conditions; Pro: ["already_pro"].

    Every bitmask value indexes a small table of name lists (2^7 + 1 entries at most).
    """
    names = list(pro_conditions(policy))
    reasons = [[n for i, n in enumerate(names) if m >> i & 1] for m in range(1 << len(names))]
    table = pl.Series([*reasons, [NOT_CLASSIC]], dtype=pl.List(ProCondition))
    return pl.lit(table).gather(pl.col("pro_failed_conditions")).alias("pro_ineligible_reasons")


def eligible_for_pro() -> pl.Expr:
    """Classic account meeting every condition in force (no failed condition); false for Pro."""
    return is_classic() & (pl.col("pro_failed_conditions") == 0)


def can_switch_to_classic(policy: Policy) -> pl.Expr:
    """Pro: (new) collateral level > IRR, (old) classic margin level > IRR, of its leverage; and a switch left."""
    return is_pro() & thresholds.switch_level(policy).holds() & (pl.col("switches_left_today") > 0)


def all_decisions(policy: Policy) -> list[dict[str, pl.Expr]]:
    """Stages of with_columns, in dependency order."""
    return [
        {
            "pro_compliant": pro_compliant(policy),
            "liquidation": liquidation(policy),
            "bad_debt_usdt": bad_debt_usdt(),
            "switches_left_today": switches_left_today(policy),
        },
        {
            "margin_call": margin_call(policy),
            "borrow_blocked_reason": borrow_blocked_reason(policy),
            "due_for_migration": due_for_migration(policy),
            "pro_failed_conditions": pro_failed_conditions(policy),
            "can_switch_to_classic": can_switch_to_classic(policy),
        },
        {
            "borrow_blocked": borrow_blocked(),
            "eligible_for_pro": eligible_for_pro(),
            "migrate_now": migrate_now(policy),
            "partial_repayment_usdt": partial_repayment_usdt(policy),
        },
    ]
