"""Market and reference data in effect at `as_of`: one row per asset.

Prices (market data) and collateral tiers / liability brackets (reference data) are separate explicit
inputs, each valued at the one `as_of` of the run:
- price: the latest `priced_at <= as_of`, unless ambiguous, null or stale (validation/prices.py);
- tiers and brackets: per asset the rows of the latest `effective_from <= as_of`, checked
  (validation/tier_tables.py) and laid out flat by asset index (tiers.py).
An asset's problem (no price, a bad table) is carried as a status column; it becomes a data issue
only for the accounts that touch that asset.

Positions reach these terms by *gather*, not join: an asset name becomes its index in the sorted
asset list (a cast to an Enum of those names), and each per-asset value is read at that index from
a Series of a few hundred entries. The streaming engine does that in place, in input order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from crossmargin.rules import tiers
from crossmargin.validation.prices import price_in_effect
from crossmargin.validation.tier_tables import table_problems

COLLATERAL = "c_"  # column prefix of the collateral tier table's terms
LIABILITY = "l_"  # column prefix of the liability bracket table's terms
BASE = "_base"  # column suffix of an order's base-asset terms
QUOTE = "_quote"  # column suffix of an order's quote-asset terms
COLLATERAL_RATES = ["collateral_ratio"]
LIABILITY_RATES = ["maintenance_margin_rate", "initial_margin_rate"]

TERM_COLUMNS = [
    "price_usdt",
    "price_problem",
    "price_detail",
    f"{COLLATERAL}present",
    f"{COLLATERAL}problem",
    f"{COLLATERAL}bad",
    f"{LIABILITY}present",
    f"{LIABILITY}problem",
    f"{LIABILITY}bad",
    "first_collateral_ratio",
]


@dataclass(frozen=True)
class AssetTerms:
    """Per asset (row `asset_idx`): price and table status in effect (and the price's `priced_at`); the
    tables themselves, flat."""

    frame: pl.DataFrame
    collateral: tiers.Slices
    liability: tiers.Slices

    def index(self, asset: pl.Expr) -> pl.Expr:
        """asset_idx of an asset name; null for a name no price or table mentions."""
        return asset.cast(pl.Enum(self.frame["asset"]), strict=False).to_physical().cast(pl.UInt32)

    def indexed(self, frame: pl.LazyFrame, asset: str, suffix: str = "") -> pl.LazyFrame:
        """`frame` with `asset_idx{suffix}`, the index of the asset named in column `asset`."""
        return frame.with_columns(self.index(pl.col(asset)).alias(f"asset_idx{suffix}"))

    def terms_of(self, frame: pl.LazyFrame, suffix: str = "") -> pl.LazyFrame:
        """An `indexed` frame with the terms of its asset (`price_usdt{suffix}`, ...), gathered by index."""
        idx = pl.col(f"asset_idx{suffix}")
        return frame.with_columns(
            pl.lit(self.frame[c]).gather(idx).alias(f"{c}{suffix}") for c in TERM_COLUMNS
        )


def in_effect(table: pl.DataFrame, as_of: dt.datetime, ts: str = "effective_from") -> pl.DataFrame:
    """Per asset, the rows of the latest `ts <= as_of` (the version in effect at as_of)."""
    rows = table.filter(pl.col(ts) <= as_of)
    return rows.filter(pl.col(ts) == pl.col(ts).max().over("asset"))


def _table(
    rows: pl.DataFrame, as_of: dt.datetime, rates: list[str], prefix: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(asset -> {prefix}present, {prefix}problem; the slice rows of the good tables)."""
    effective = in_effect(rows.filter(pl.col("asset").is_not_null()), as_of)
    problems = table_problems(effective, rates).rename({"problem": f"{prefix}problem"})
    good = effective.join(problems, on="asset", how="anti")
    assets = effective.select("asset").unique().with_columns(pl.lit(True).alias(f"{prefix}present"))
    return assets.join(problems, on="asset", how="left"), good


def asset_terms(
    prices: pl.DataFrame,
    collateral_tiers: pl.DataFrame,
    liability_brackets: pl.DataFrame,
    as_of: dt.datetime,
    max_price_age: dt.timedelta,
) -> AssetTerms:
    price = price_in_effect(prices, as_of, max_price_age)
    coll, coll_slices = _table(collateral_tiers, as_of, COLLATERAL_RATES, COLLATERAL)
    liab, liab_slices = _table(liability_brackets, as_of, LIABILITY_RATES, LIABILITY)
    first_ratio = coll_slices.filter(pl.col("lower_usdt") == 0).select(
        "asset", pl.col("collateral_ratio").alias("first_collateral_ratio")
    )
    assets = pl.concat([price.select("asset"), coll.select("asset"), liab.select("asset")]).unique()
    frame = (
        assets.join(price, on="asset", how="left", validate="1:1")
        .join(coll, on="asset", how="left", validate="1:1")
        .join(liab, on="asset", how="left", validate="1:1")
        .join(first_ratio, on="asset", how="left", validate="1:1")
        .with_columns(pl.col(f"{COLLATERAL}present", f"{LIABILITY}present").fill_null(False))
        # the rules test these flags; the problem text is read only for the detail of an issue row
        .with_columns(pl.col(f"{p}problem").is_not_null().alias(f"{p}bad") for p in (COLLATERAL, LIABILITY))
        .sort("asset")
        .with_row_index("asset_idx")
    )
    if not frame["asset"].is_unique().all():  # the gathers by asset_idx read one row per asset
        raise AssertionError("asset terms must have one row per asset")
    index = frame.select("asset", "asset_idx")
    return AssetTerms(
        frame.select("asset", "asset_idx", *TERM_COLUMNS, "priced_at"),
        tiers.flat(coll_slices, index, COLLATERAL_RATES),
        tiers.flat(liab_slices, index, LIABILITY_RATES),
    )
