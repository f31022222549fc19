"""The one valuation: an account's rows valued at a vector of prices, a move of the non-stable prices
and a USDT deposit, into the account's sums (rules/quantities.Quantities).

`value_balances` and `value_orders` are the only code that turns rows into an account's sums. Every
path that needs sums calls them: the row pass (the prices in effect), the scenarios (one moved price
vector per scenario), the distances to thresholds (the prices in effect with every non-stable price
times m) and the top-ups (a deposit d), and `crossmargin explain` (one account, row by row). Each row
is valued by the per-row functions of rules/quantities.py; an account's rows are added one after
another in input order, left to right (a NaN — a null input, or 0 × a missing price — adds 0), so an
account's sums depend only on its own rows, never on threads, chunks or buckets.

A *deposit* of d USDT adds d to the value of the account's USDT holding (the first USDT row; as if it
held a row of zeros when it has none): total_asset grows by d and collateral by tiered(v + d) −
tiered(v) over USDT's collateral tiers (docs/rules.md §9).

`need` says which sums are wanted besides total_asset and total_liability (COLLATERAL, MARGINS): the
kernels that move an account along a path ask only for what the measure they follow reads; the others
are left at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from crossmargin.kernels.compiled import jitable, kernel
from crossmargin.kernels.runs import run_end
from crossmargin.market import AssetTerms
from crossmargin.rules.quantities import (
    asset_value_usdt,
    collateral_value_usdt,
    debt_margins_usdt,
    debt_value_usdt,
    nan_as_zero,
    order_loss_usdt,
)

COLLATERAL, MARGINS = 1, 2  # `need` bits: collateral_usdt; maintenance and initial margin
EVERYTHING = COLLATERAL | MARGINS
NO_ASSET = -1  # an asset index that names no asset (no USDT in the market)


@jitable
def moved_price(price: np.ndarray, moving: np.ndarray, m: float, a: int) -> float:
    """The price of asset a with every non-stable price times m (m = 1: the price itself, to the bit)."""
    return price[a] * m if moving[a] else price[a]


@jitable
def value_balances(asset, holding, debt, s, e, price, moving, m, deposit, usdt, coll, liab, need):
    """(total_asset, total_liability, collateral, maintenance margin, initial margin) of balance rows
    s..e-1 (asset index, holding, debt) at `price` with the non-stable prices times m, plus a deposit
    of `deposit` USDT (`usdt`: USDT's asset index). An asset index past the last names no asset: its
    row adds 0 (it needs no price, or is a data issue)."""
    n_assets = price.size
    total_asset, total_liability, collateral, maintenance, initial = -0.0, -0.0, -0.0, -0.0, -0.0
    deposited = deposit == 0.0
    for i in range(s, e):
        a = asset[i]
        if a >= n_assets:
            continue
        p = moved_price(price, moving, m, a)
        value = asset_value_usdt(holding[i], p)
        if not deposited and a == usdt:
            value = value + deposit
            deposited = True
        debt_value = debt_value_usdt(debt[i], p)
        total_asset += nan_as_zero(value)
        total_liability += nan_as_zero(debt_value)
        if need & COLLATERAL:
            collateral += nan_as_zero(collateral_value_usdt(value, a, coll))
        if need & MARGINS:
            mm, im = debt_margins_usdt(debt_value, a, liab)
            maintenance += nan_as_zero(mm)
            initial += nan_as_zero(im)
    if not deposited:  # no USDT row: the deposit is a USDT holding of its own
        total_asset += deposit
        if need & COLLATERAL:
            collateral += nan_as_zero(collateral_value_usdt(deposit, usdt, coll))
    return total_asset, total_liability, collateral, maintenance, initial


@jitable
def value_orders(base, quote, is_buy, qty, limit, lo, hi, price, moving, m, ratio, cancelled):
    """open_order_loss of orders lo..hi-1 at `price` with the non-stable prices times m, leaving out
    the orders flagged in `cancelled` (by position from lo; an empty array: none)."""
    n_assets = price.size
    total = -0.0
    for j in range(lo, hi):
        if cancelled.size and cancelled[j - lo]:
            continue
        b, q = base[j], quote[j]
        if b >= n_assets or q >= n_assets:  # an asset no price or table names: a data issue
            continue
        loss = order_loss_usdt(
            is_buy[j],
            qty[j],
            limit[j],
            moved_price(price, moving, m, b),
            ratio[b],
            moved_price(price, moving, m, q),
            ratio[q],
        )
        total += nan_as_zero(loss)
    return total


# ------------------------------------------------------------------ the sums of every account


@kernel
def balance_sums_kernel(
    starts, stop, asset, holding, debt, prices, moving, usdt, coll, liab, out, bits, run_idx
):
    """Per run (account) r and price vector p: out[k, run_idx[r], p] = the k-th balance sum of
    value_balances; bits[run_idx[r]] the OR of its rows' asset bits."""
    for r in range(starts.size):
        s, e, at = starts[r], run_end(starts, stop, r), run_idx[r]
        bit = np.uint64(0)
        for i in range(s, e):
            bit |= np.uint64(1) << np.uint64(asset[i] % 64)
        bits[at] = bit
        for p in range(prices.shape[0]):
            sums = value_balances(
                asset, holding, debt, s, e, prices[p], moving, 1.0, 0.0, usdt, coll, liab, EVERYTHING
            )
            for k in range(out.shape[0]):
                out[k, at, p] = sums[k]


@kernel
def order_sums_kernel(starts, stop, order_id, base, quote, is_buy, qty, limit, prices, moving, ratio, none, out, bits,
                      run_idx):  # fmt: skip
    """Per run (account) r and price vector p: out[0, run_idx[r], p] = value_orders of its orders (`none`:
    an empty array, no order cancelled); bits[run_idx[r]] the OR of its rows' order_id bits."""
    for r in range(starts.size):
        s, e, at = starts[r], run_end(starts, stop, r), run_idx[r]
        bit = np.uint64(0)
        for i in range(s, e):
            bit |= np.uint64(1) << np.uint64(order_id[i] & 63)
        bits[at] = bit
        for p in range(prices.shape[0]):
            out[0, at, p] = value_orders(
                base, quote, is_buy, qty, limit, s, e, prices[p], moving, 1.0, ratio, none
            )


# ------------------------------------------------------------------ the market as the kernels read it


@dataclass(frozen=True)
class Market:
    """The market and reference data in effect, per asset_idx, as kernel arrays (made once per run)."""

    prices: np.ndarray  # (1, assets): the prices in effect (NaN: none)
    moving: np.ndarray  # not a stable asset: a uniform move moves its price
    ratio: np.ndarray  # first-slice collateral ratio (NaN: none)
    coll: tuple  # the collateral tiers (k_max, lower, rate, below): tiers.Slices
    liab: tuple  # the liability brackets (k_max, lower, mm rate, mm below, im rate, im below)
    usdt: int  # USDT's index when a deposit can be valued (its price and collateral tiers in effect)

    @classmethod
    def of(cls, terms: AssetTerms, stable_assets: tuple[str, ...]) -> Market:
        frame = terms.frame
        c, li = terms.collateral, terms.liability
        lower, mm, below_mm = li.arrays("maintenance_margin_rate")
        _, im, below_im = li.arrays("initial_margin_rate")
        usable = (  # a deposit needs USDT's price (> 0: at 0 no USDT is worth d) and collateral tiers in
            (pl.col("asset") == "USDT")  # effect, neither with a problem
            & (pl.col("price_problem") == 0).fill_null(False)
            & pl.col("price_usdt").is_finite().fill_null(False)
            & (pl.col("price_usdt") > 0).fill_null(False)
            & pl.col("c_present")
            & ~pl.col("c_bad").fill_null(False)
        )
        usdt = frame.filter(usable)["asset_idx"]
        return cls(
            prices_matrix(terms),
            (~frame["asset"].is_in(list(stable_assets))).to_numpy(),
            frame["first_collateral_ratio"].cast(pl.Float64).to_numpy(),
            (c.k_max, *c.arrays("collateral_ratio")),
            (li.k_max, lower, mm, below_mm, im, below_im),
            int(usdt[0]) if usdt.len() else NO_ASSET,
        )


def prices_matrix(terms: AssetTerms, prices: list[pl.Series] | None = None) -> np.ndarray:
    """(price vectors, assets) float64: the prices in effect, or one moved vector per scenario; a missing
    price is NaN (its rows' values add 0, or are data issues)."""
    vectors = prices if prices is not None else [terms.frame["price_usdt"]]
    return np.ascontiguousarray(np.stack([v.cast(pl.Float64).to_numpy() for v in vectors]))
