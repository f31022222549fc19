"""The price in effect for an asset at as_of, and why there may be none.

For each asset, the price rows with the latest `priced_at <= as_of` decide:
- two or more distinct `price_usdt` values among them (a null counts as a value; exact duplicates
  are one value; 0.0 and -0.0 are one value, and so are two NaNs) -> `ambiguous_price`: which one
  holds cannot be told, and the answer must never depend on the order of the rows;
- else a null value -> `missing_price` (a null is no price, never 0);
- else a latest `priced_at` more than the policy's `max_price_age` before as_of -> `stale_price`
  (a feed that stopped is not scored silently);
- no row at all at or before as_of -> `missing_price`.
A row with a null `priced_at` or `asset` cannot be placed and is never in effect.
A finite, non-negative value then still has to pass the value rules (`rows.py`: non-finite,
negative), like any quantity.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from crossmargin.validation.rules import fmt

# price_problem codes of an asset's price in effect (UInt8; null = no row at or before as_of)
OK, MISSING, AMBIGUOUS, STALE = 0, 1, 2, 3
CODES = {MISSING: "missing_price", AMBIGUOUS: "ambiguous_price", STALE: "stale_price"}


def _iso(e: pl.Expr) -> pl.Expr:
    return e.dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ")


def price_in_effect(prices: pl.DataFrame, as_of: dt.datetime, max_age: dt.timedelta) -> pl.DataFrame:
    """asset -> price_usdt (null unless usable), price_problem (UInt8 above), price_detail (text), and
    priced_at (the time of the rows in effect).

    One row per asset with a price row at or before as_of; assets without one are absent (missing).
    """
    rows = prices.filter(pl.col("priced_at") <= as_of, pl.col("asset").is_not_null())
    latest = rows.filter(pl.col("priced_at") == pl.col("priced_at").max().over("asset"))
    per_asset = latest.group_by("asset").agg(
        pl.col("priced_at").first(),
        pl.col("price_usdt").n_unique().alias("values"),
        pl.col("price_usdt").is_null().any().alias("null"),
        # one value: max() is that value whatever the row order; + 0.0 reads -0.0 as 0.0
        (pl.col("price_usdt").max() + 0.0).alias("price_usdt"),
        pl.col("price_usdt").unique().sort(nulls_last=True).cast(pl.String).fill_null("null").alias("_all"),
    )
    age = pl.lit(as_of) - pl.col("priced_at")
    problem = (
        pl.when(pl.col("values") > 1)
        .then(pl.lit(AMBIGUOUS, pl.UInt8))
        .when(pl.col("null"))
        .then(pl.lit(MISSING, pl.UInt8))
        .when(age > max_age)
        .then(pl.lit(STALE, pl.UInt8))
        .otherwise(pl.lit(OK, pl.UInt8))
    )
    hours = max_age.total_seconds() / 3600
    detail = (
        pl.when(pl.col("price_problem") == AMBIGUOUS)
        .then(
            fmt(
                "{} has {} distinct prices at {} ({})",
                pl.col("asset"),
                pl.col("values"),
                _iso(pl.col("priced_at")),
                pl.col("_all").list.join(", "),
            )
        )
        .when(pl.col("price_problem") == MISSING)
        .then(fmt("price_usdt of {} is null at {}", pl.col("asset"), _iso(pl.col("priced_at"))))
        .when(pl.col("price_problem") == STALE)
        .then(
            fmt(
                "latest price of {} is from {}, {} h before as_of (max_price_age {} h)",
                pl.col("asset"),
                _iso(pl.col("priced_at")),
                (age.dt.total_seconds() / 3600).round(2),
                pl.lit(f"{hours:g}"),
            )
        )
    )
    return (
        per_asset.with_columns(problem.alias("price_problem"))
        .with_columns(
            detail.alias("price_detail"),
            pl.when(pl.col("price_problem") == OK).then(pl.col("price_usdt")).alias("price_usdt"),
        )
        .select("asset", "price_usdt", "price_problem", "price_detail", "priced_at")
        .sort("asset")
    )
