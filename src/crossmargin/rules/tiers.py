"""Tiered (progressive) sums, docs/rules.md §1.2: `tiered(x) = Σ_k rate_k · clip(x − lower_k, 0, upper_k − lower_k)`.

A tier table is small reference data (a few slices per asset). It is checked, then laid out *flat*:
entry `asset_idx·K + k` holds slice k of that asset (K = the most slices any asset has), with
`lower_k`, `rate_k` and `below_k = Σ_{j<k} rate_j · (upper_j − lower_j)`, the sum of the full slices
under it. For an amount x in slice k (lower_k ≤ x < lower_{k+1}) every slice below is full and
every slice above adds 0, so

    tiered(x) = below_k + rate_k · (x − lower_k)

— the same terms added in the same (ascending) order as the textbook sum, so the same float bits. A
row then costs K − 1 comparisons (its slice) and three gathers from arrays of a few hundred
entries: no join of 3K wide columns. `slice_at` and `tiered_at` are these two steps for one amount,
compiled into the kernels that value rows (kernels/valuation.py); tests check them against the
textbook sum, bit for bit. `slice_parts` lists, for one amount, the slices it uses and what each adds
(what `crossmargin explain` shows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from crossmargin.kernels.compiled import jitable


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

    def arrays(self, rate: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, rate_k, below_k) as numpy arrays, for `slice_at` / `tiered_at`."""
        return self.lower.to_numpy(), self.rate[rate].to_numpy(), self.below[rate].to_numpy()


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


@jitable
def slice_at(x: float, asset_idx: int, lower: np.ndarray, k_max: int) -> int:
    """asset_idx·K + k for the slice k holding x (lower_k <= x < lower_{k+1})."""
    base = asset_idx * k_max
    k = 0
    for j in range(1, k_max):
        if x >= lower[base + j]:
            k += 1
    return base + k


@jitable
def tiered_at(x: float, at: int, lower: np.ndarray, rate: np.ndarray, below: np.ndarray) -> float:
    """below_k + rate_k · (x − lower_k) at `at` = slice_at(x, ...): the progressive sum of x."""
    return below[at] + rate[at] * (x - lower[at])


def slice_parts(x: float, asset_idx: int, s: Slices, rate: str) -> list[dict[str, float]]:
    """The slices of one asset's table that amount x reaches, each with the part of x inside it and
    rate × that part (ascending; their sum is tiered(x) up to rounding): an explanation, not a rule."""
    lower, rates, _ = s.arrays(rate)
    base = asset_idx * s.k_max
    bounds = [float(lower[base + k]) for k in range(s.k_max)] + [float("inf")]
    parts = []
    for k in range(s.k_max):
        lo, hi = bounds[k], bounds[k + 1]
        if not x > lo and not (k == 0 and x == lo):
            break
        inside = min(x, hi) - lo
        parts.append({"lower_usdt": lo, "upper_usdt": hi, "rate": float(rates[base + k]), "amount_usdt": inside,
                      "value_usdt": float(rates[base + k]) * inside})  # fmt: skip
    return parts
