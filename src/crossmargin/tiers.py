"""Tiered (progressive) sums, SPEC.md §1: `tiered(x) = Σ_k rate_k · clip(x − lower_k, 0, upper_k − lower_k)`.

A tier table is small reference data (a few slices per asset). It is checked, then laid out *wide*:
one row per asset with columns `{prefix}lower_k`, `{prefix}width_k` and `{prefix}{rate}_k` for
k = 0..K-1 (null where an asset has fewer slices). Joined m:1 onto positions, the progressive sum is
then a fixed horizontal sum of K expressions — no explode, no per-row lookup.
"""

from __future__ import annotations

import datetime as dt

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
    fmt = lambda v: v.round(6).cast(pl.String).fill_null("null")
    rule = pl.when(lower.is_null() | ~lower.is_finite() | (upper.is_not_null() & ~upper.is_finite())).then(
        pl.lit("slice bound is null or not finite")
    )
    for r in rates:
        rule = rule.when(pl.col(r).is_null() | ~pl.col(r).is_finite() | (pl.col(r) < 0) | (pl.col(r) > 1)).then(
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
        .then(pl.concat_str([pl.lit("overlap: slice ends at "), fmt(upper), pl.lit(", next starts at "), fmt(nxt)]))
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


def wide(rows: pl.DataFrame, rates: list[str], prefix: str) -> tuple[pl.DataFrame, int]:
    """One row per asset: `{prefix}lower_k`, `{prefix}width_k`, `{prefix}{rate}_k` for k < K.

    An asset with fewer than K slices is padded with empty slices (width 0, rate 0), which add
    exactly 0 to the sum, so the sum needs no null handling.
    """
    rows = rows.sort("asset", "lower_usdt")
    k_max = int(rows.group_by("asset").len()["len"].max() or 0)
    width = (pl.col("upper_usdt") - pl.col("lower_usdt")).fill_null(float("inf"))
    lists = rows.group_by("asset", maintain_order=True).agg(
        pl.col("lower_usdt").alias("lower"), width.alias("width"), *[pl.col(r) for r in rates]
    )
    cols = [
        pl.col(name).list.get(k, null_on_oob=True).fill_null(0.0).alias(f"{prefix}{name}_{k}")
        for k in range(k_max)
        for name in ["lower", "width", *rates]
    ]
    return lists.select("asset", *cols), k_max


def tiered(x: pl.Expr, prefix: str, rate: str, k_max: int) -> pl.Expr:
    """Σ_k rate_k · clip(x − lower_k, 0, width_k), summed in ascending slice order.

    Null where the asset has no table (the row then needs none, or is a data issue); 0 with K = 0.
    """
    parts = [
        pl.col(f"{prefix}{rate}_{k}") * (x - pl.col(f"{prefix}lower_{k}")).clip(0.0, pl.col(f"{prefix}width_{k}"))
        for k in range(k_max)
    ]
    if not parts:
        return pl.lit(0.0)
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
