"""Market and reference data in effect at `as_of`: one row per asset.

Prices (market data) and collateral tiers / liability brackets (reference data) are separate explicit
inputs, each valued at the one `as_of` of the run:
- price: the latest `priced_at <= as_of` (SPEC §4);
- tiers and brackets: per asset the rows of the latest `effective_from <= as_of` (SPEC §2), checked
  (start at 0, contiguous, rates in [0, 1]) and laid out wide (tiers.py).
An asset's problem (no price, a bad table) is carried as a status column; it becomes a data issue
only for the accounts that touch that asset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from crossmargin import tiers

COLLATERAL = "c_"  # column prefix of the collateral tier table
LIABILITY = "l_"  # column prefix of the liability bracket table
COLLATERAL_RATES = ["collateral_ratio"]
LIABILITY_RATES = ["maintenance_margin_rate", "initial_margin_rate"]


@dataclass(frozen=True)
class AssetTerms:
    """Per asset: price and wide tier columns in effect, with status flags; and the slice counts."""

    frame: pl.DataFrame
    collateral_slices: int
    liability_slices: int


def prices_in_effect(prices: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    """asset -> price_usdt of its latest priced_at <= as_of (ties: the last row in input order)."""
    return (
        prices.filter(pl.col("priced_at") <= as_of, pl.col("asset").is_not_null())
        .with_row_index("_row")
        .sort("asset", "priced_at", "_row", nulls_last=False)
        .group_by("asset", maintain_order=True)
        .agg(pl.col("price_usdt").last())
    )


def _table(rows: pl.DataFrame, as_of: dt.datetime, rates: list[str], prefix: str) -> tuple[pl.DataFrame, int]:
    effective = tiers.in_effect(rows.filter(pl.col("asset").is_not_null()), as_of)
    problems = tiers.table_problems(effective, rates).rename({"problem": f"{prefix}problem"})
    good = effective.join(problems, on="asset", how="anti")
    wide, k_max = tiers.wide(good, rates, prefix)
    assets = effective.select("asset").unique().with_columns(pl.lit(True).alias(f"{prefix}present"))
    return assets.join(problems, on="asset", how="left").join(wide, on="asset", how="left"), k_max


def asset_terms(
    prices: pl.DataFrame, collateral_tiers: pl.DataFrame, liability_brackets: pl.DataFrame, as_of: dt.datetime
) -> AssetTerms:
    price = prices_in_effect(prices, as_of).with_columns(pl.lit(True).alias("price_present"))
    coll, kc = _table(collateral_tiers, as_of, COLLATERAL_RATES, COLLATERAL)
    liab, kl = _table(liability_brackets, as_of, LIABILITY_RATES, LIABILITY)
    assets = pl.concat([price.select("asset"), coll.select("asset"), liab.select("asset")]).unique()
    frame = (
        assets.join(price, on="asset", how="left", validate="1:1")
        .join(coll, on="asset", how="left", validate="1:1")
        .join(liab, on="asset", how="left", validate="1:1")
        .with_columns(pl.col("price_present", f"{COLLATERAL}present", f"{LIABILITY}present").fill_null(False))
        .sort("asset")
        .with_row_index("asset_idx")
    )
    if not frame["asset"].is_unique().all():  # the m:1 contract of every join onto this frame
        raise AssertionError("asset terms must have one row per asset")
    return AssetTerms(frame, kc, kl)
