"""Tiered (progressive) sums, SPEC.md §1: `tiered(x) = Σ_k rate_k · clip(x − lower_k, 0, upper_k − lower_k)`.

A tier table is small reference data (a few slices per asset). It is checked, then laid out *flat*:
entry `asset_idx·K + k` holds slice k of that asset (K = the most slices any asset has), with
`lower_k`, `rate_k` and `below_k = Σ_{j<k} rate_j · (upper_j − lower_j)`, the sum of the full slices
under it. For an amount x in slice k (lower_k ≤ x < lower_{k+1}) every slice below is full and
every slice above adds 0, so

    tiered(x) = below_k + rate_k · (x − lower_k)

— the same terms added in the same (ascending) order as the SPEC sum, so the same float bits. A
row then costs K − 1 comparisons (its slice) and three gathers from arrays of a few hundred
entries: no join of 3K wide columns, no per-row lookup in Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl


def in_effect(table: pl.DataFrame, as_of: dt.datetime, ts: str = "effective_from") -> pl.DataFrame:
    """Per asset, the rows of the latest `ts <= as_of` (the version in effect at as_of)."""
    rows = table.filter(pl.col(ts) <= as_of)
    return rows.filter(pl.col(ts) == pl.col(ts).max().over("asset"))


def _problem(rates: list[str]) -> pl.Expr:
    """First thing wrong with a slice row (sorted by asset, lower), or null; SPEC §1 tier rules."""
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


@dataclass(frozen=True)
class Slices:
    """A checked tier table in effect, flat by (asset_idx, slice k): entry asset_idx·K + k.

    An asset with fewer than K slices (or none) is padded with `lower = +inf` slices, which no finite
    amount reaches; an asset without a table has one slice [0, ∞) at rate 0 (its rows need no
    table, or are a data issue).
    """

    k_max: int
    lower: pl.Series
    rate: dict[str, pl.Series]
    below: dict[str, pl.Series]


def flat(rows: pl.DataFrame, asset_index: pl.DataFrame, rates: list[str]) -> Slices:
    """Slices of the checked tables in `rows`, flat over every asset of `asset_index` (asset, asset_idx)."""
    rows = rows.join(asset_index, on="asset", how="inner", validate="m:1").sort("asset_idx", "lower_usdt")
    k_max = max(1, int(rows.group_by("asset").len()["len"].max() or 0))
    width = (pl.col("upper_usdt") - pl.col("lower_usdt")).fill_null(float("inf"))
    slices = rows.select(
        "asset_idx",
        pl.int_range(pl.len()).over("asset_idx").alias("k"),
        "lower_usdt",
        *rates,
        # below_k, added in ascending slice order (cum_sum is a sequential left-to-right sum)
        *[
            (pl.col(r) * width).cum_sum().shift(1, fill_value=0.0).over("asset_idx").alias(f"below_{r}")
            for r in rates
        ],
    )
    grid = asset_index.select(pl.col("asset_idx").cast(pl.UInt32)).join(
        pl.DataFrame({"k": range(k_max)}, schema={"k": pl.UInt32}), how="cross"
    )
    padded = grid.join(
        slices.with_columns(pl.col("asset_idx", "k").cast(pl.UInt32)), on=["asset_idx", "k"], how="left"
    )
    padded = padded.sort("asset_idx", "k").with_columns(
        pl.col("lower_usdt").fill_null(pl.when(pl.col("k") == 0).then(0.0).otherwise(float("inf"))),
        pl.col(*rates, *[f"below_{r}" for r in rates]).fill_null(0.0),
    )
    return Slices(
        k_max,
        padded["lower_usdt"],
        {r: padded[r] for r in rates},
        {r: padded[f"below_{r}"] for r in rates},
    )


def slice_index(x: pl.Expr, asset_idx: pl.Expr, s: Slices) -> pl.Expr:
    """asset_idx·K + k for the slice k holding x (lower_k <= x < lower_{k+1}); null without an asset."""
    base = asset_idx.cast(pl.Int64) * s.k_max
    k = pl.lit(0, pl.Int64)
    for j in range(1, s.k_max):
        k = k + (x >= pl.lit(s.lower).gather(base + j)).cast(pl.Int64)
    return base + k


def tiered(x: pl.Expr, at: pl.Expr, s: Slices, rate: str) -> pl.Expr:
    """below_k + rate_k · (x − lower_k) at `at` = slice_index(x, ...): the progressive sum of x."""
    return pl.lit(s.below[rate]).gather(at) + pl.lit(s.rate[rate]).gather(at) * (
        x - pl.lit(s.lower).gather(at)
    )
