"""The issues phase: every data issue of the bucket, and the accounts that leave the outputs for them.

Row issues and group checks come from the row pass; the results that are not finite numbers are
checked here, for accounts without another issue (their inputs are all good, so the cause is the
arithmetic). Every account with an issue leaves account_risk and actions.
"""

from __future__ import annotations

import polars as pl

from crossmargin.engine.rows import RowPass
from crossmargin.io.schemas import ACCOUNT_RISK, ISSUE_COLUMNS, PRICE_PROBLEMS, MarginMode
from crossmargin.policy import Policy
from crossmargin.rules import decisions
from crossmargin.validation import groups

PRICE_CODES = ["missing_price", "ambiguous_price", "stale_price"]


def issues_phase(passed: RowPass, computed: pl.DataFrame) -> pl.DataFrame:
    """Every issue row (ISSUE_COLUMNS), sorted."""
    issues = pl.concat(passed.issues, how="vertical_relaxed").collect()
    clean = computed.lazy().filter(~pl.col("account_id").is_in(issues["account_id"].implode()))
    return (
        pl.concat([issues.lazy(), groups.non_finite_results(clean)], how="vertical_relaxed")
        .unique()
        .sort("account_id", "table", "code", "detail", "asset", nulls_last=True)
        .select([pl.col(c).cast(d) for c, d in ISSUE_COLUMNS.items()])
        .collect()
    )


def price_problems(issues: pl.DataFrame) -> pl.DataFrame:
    """Per asset and price problem: the detail and how many accounts it took out (sorted by asset)."""
    return (
        issues.lazy()
        .filter(pl.col("code").cast(pl.String).is_in(PRICE_CODES), pl.col("asset").is_not_null())
        .group_by("asset", "code")
        .agg(pl.col("detail").min(), pl.col("account_id").n_unique().cast(pl.Int64).alias("accounts"))
        .sort("asset", "code")
        .select([pl.col(c).cast(d) for c, d in PRICE_PROBLEMS.items()])
        .collect()
    )


def account_risk(computed: pl.DataFrame, issues: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """The accounts without an issue, in account order, with the output columns and types."""
    # a filter keeps the account order of `computed` (sorted accounts, order-keeping joins)
    risk = (
        computed.lazy()
        .filter(~pl.col("account_id").is_in(issues["account_id"].unique().implode()))
        .with_columns(
            decisions.pro_ineligible_reasons(policy),
            pl.col("margin_mode").cast(MarginMode, strict=False),
            pl.lit(policy.as_of).dt.cast_time_unit("us").alias("as_of"),
            pl.lit(policy.version).alias("policy_version"),
        )
        .select([pl.col(c).cast(d) for c, d in ACCOUNT_RISK.items()])
        .collect()
    )
    if not risk["account_id"].is_sorted():  # pragma: no cover - guards the construction above
        risk = risk.sort("account_id")
    return risk
