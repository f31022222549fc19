"""The long-form actions table of docs/rules.md §5: one row per account and action, read off account_risk."""

from __future__ import annotations

import polars as pl

from crossmargin.io.schemas import ACTIONS_SCHEMA, Action
from crossmargin.policy import Policy
from crossmargin.rules.quantities import is_pro


def _mode_label() -> pl.Expr:
    """ "pro", "classic_3x" or "classic_5x": the threshold family a margin call / liquidation came from."""
    return (
        pl.when(is_pro())
        .then(pl.lit("pro"))
        .otherwise(
            pl.concat_str([pl.lit("classic_"), pl.col("classic_leverage").cast(pl.String), pl.lit("x")])
        )
    )


def action_rules(policy: Policy) -> dict[str, tuple[pl.Expr, pl.Expr, pl.Expr]]:
    """action -> (when, reason, amount_usdt)."""
    null_amount = pl.lit(None, dtype=pl.Float64)
    migration = "due" if policy.noncompliant_switched else "pending"
    return {
        "LIQUIDATION": (pl.col("liquidation"), _mode_label(), null_amount),
        # the amount: the least deposit that lifts the account out of margin call (docs/rules.md §9)
        "MARGIN_CALL": (
            pl.col("margin_call") & ~pl.col("liquidation"),
            _mode_label(),
            pl.col("margin_call_topup_usdt"),
        ),
        "BORROW_BLOCKED": (
            pl.col("borrow_blocked"),
            pl.col("borrow_blocked_reason").cast(pl.String),
            null_amount,
        ),
        "MIGRATE_TO_CLASSIC": (pl.col("due_for_migration"), pl.lit(migration), null_amount),
        "PARTIAL_REPAYMENT": (
            pl.col("partial_repayment_usdt") > 0,
            pl.lit(None, pl.String),
            pl.col("partial_repayment_usdt"),
        ),
        "ELIGIBLE_FOR_PRO": (pl.col("eligible_for_pro"), pl.lit(None, pl.String), null_amount),
    }


def actions(account_risk: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """Sorted by account_id, then action in the order of docs/rules.md §5."""
    parts = [
        account_risk.filter(when).select(
            "account_id",
            pl.lit(name).cast(Action).alias("action"),
            reason.cast(pl.String).alias("reason"),
            amount.alias("amount_usdt"),
            pl.lit(policy.version).alias("policy_version"),
        )
        for name, (when, reason, amount) in action_rules(policy).items()
    ]
    return (
        pl.concat(parts)
        .sort("account_id", "action")
        .select([pl.col(c).cast(t) for c, t in ACTIONS_SCHEMA.items()])
    )
