"""The account pass: every account with an id, its sums beside it (0 without rows), then its levels
(rules/levels.py) and decisions (rules/decisions.py) as polars expressions over all accounts at once.

Duplicated account ids flow through and are left out by the issues phase, with their issue.
"""

from __future__ import annotations

import polars as pl

from crossmargin.engine.rows import RowPass
from crossmargin.policy import Policy
from crossmargin.rules import decisions, levels, quantities

ACCOUNT = "account_id"


def _beside(known: pl.DataFrame, per_account: pl.LazyFrame, columns: list[str]) -> pl.LazyFrame:
    """`columns` of a per-account frame (one row per account_id) row for row beside `known`: a left
    join on the ids alone that keeps `known`'s rows one to one and in order (a merge join: both sorted)."""
    return (
        known.lazy()
        .select(ACCOUNT)
        .join(per_account.select(ACCOUNT, *columns), on=ACCOUNT, how="left", maintain_order="left")
        .drop(ACCOUNT)
    )


def account_pass(passed: RowPass, policy: Policy) -> pl.DataFrame:
    """Every account with an id: its sums, switches today, levels and decisions."""
    known = passed.accounts.filter(pl.col(ACCOUNT).is_not_null()).collect()
    beside = pl.concat(
        [
            _beside(known, passed.balance_sums, quantities.BALANCE_SUMS),
            _beside(known, passed.order_sums, quantities.ORDER_SUMS),
            _beside(known, passed.switch_counts, ["switches_today"]),
        ],
        how="horizontal",
    ).collect()
    if beside.height != known.height:  # pragma: no cover - guards the one-row-per-account construction
        raise AssertionError("per-account sums must have one row per account_id")
    computed = (
        pl.concat([known, beside], how="horizontal")
        .lazy()
        .with_columns(
            pl.col(*quantities.SUMS).fill_null(0.0),  # no rows: the sums are 0
            pl.col("switches_today").fill_null(0),
        )
    )
    for stage in [*levels.all_levels(policy), *decisions.all_decisions(policy)]:
        computed = computed.with_columns(**stage)
    return computed.collect()
