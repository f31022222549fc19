"""Whether a collateral tier / liability bracket table in effect is usable (else `bad_tier_table`).

A table for one asset is a list of slices [lower, upper) with rates; it must start at 0, be
contiguous (each slice starts where the previous ends: no gap, no overlap), end with the one
unbounded slice (upper null), have finite bounds with upper > lower, and every rate in [0, 1].
The first problem found (slices sorted by lower) is the detail of the issue.
"""

from __future__ import annotations

import polars as pl


def _problem(rates: list[str]) -> pl.Expr:
    """First thing wrong with a slice row (sorted by asset, lower), or null; docs/rules.md §1 tier rules."""
    lower, upper = pl.col("lower_usdt"), pl.col("upper_usdt")
    nxt = lower.shift(-1).over("asset")
    first = pl.int_range(pl.len()).over("asset") == 0
    last = pl.int_range(pl.len()).over("asset") == pl.len().over("asset") - 1

    def fmt(v):
        return v.round(6).cast(pl.String).fill_null("null")

    rule = pl.when(lower.is_null() | ~lower.is_finite() | (upper.is_not_null() & ~upper.is_finite())).then(
        pl.lit("slice bound is null or not finite")
    )
    for r in rates:
        rule = rule.when(
            pl.col(r).is_null() | ~pl.col(r).is_finite() | (pl.col(r) < 0) | (pl.col(r) > 1)
        ).then(
            pl.concat_str([pl.lit(f"{r} "), fmt(pl.col(r)), pl.lit(" outside [0, 1] at lower "), fmt(lower)])
        )
    return (
        rule.when(first & (lower != 0))
        .then(pl.concat_str([pl.lit("table starts at "), fmt(lower), pl.lit(", not 0")]))
        .when(upper.is_not_null() & (upper <= lower))
        .then(pl.concat_str([pl.lit("empty slice ["), fmt(lower), pl.lit(", "), fmt(upper), pl.lit(")")]))
        .when(~last & upper.is_null())
        .then(pl.concat_str([pl.lit("unbounded slice at "), fmt(lower), pl.lit(" is not the last")]))
        .when(last & upper.is_not_null())
        .then(pl.concat_str([pl.lit("last slice ends at "), fmt(upper), pl.lit(" instead of unbounded")]))
        .when(~last & (upper < nxt))
        .then(pl.concat_str([pl.lit("gap between "), fmt(upper), pl.lit(" and "), fmt(nxt)]))
        .when(~last & (upper > nxt))
        .then(
            pl.concat_str(
                [pl.lit("overlap: slice ends at "), fmt(upper), pl.lit(", next starts at "), fmt(nxt)]
            )
        )
    )


def table_problems(rows: pl.DataFrame, rates: list[str]) -> pl.DataFrame:
    """asset -> detail of the first problem of its tier table in effect (only assets with a problem)."""
    return (
        rows.sort("asset", "lower_usdt", nulls_last=True)
        .with_columns(_problem(rates).alias("problem"))
        .filter(pl.col("problem").is_not_null())
        .group_by("asset", maintain_order=True)
        .agg(pl.col("problem").first())
    )
