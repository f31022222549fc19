"""Quantities, one small named function each (all money in USDT, float64).

Row level — a balance row with its asset's terms, or an open order with both of its assets' terms —
as compiled functions of one row (the kernels of account_sums.py call them for every row), then
account level (polars expressions over the sums of the account's rows). A per-row value has its own
name (`asset_value_usdt`); the account total it adds into has the account name (`total_asset_usdt`):
`BALANCE_SUMS` and `ORDER_SUMS` map one to the other. `holding` and `debt` are polars expressions: a
balance row's two amounts, added once as the rows are read (the kernels value those two numbers), and
read by the data-quality rules (a row that holds or owes needs a price).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crossmargin.compiled import njit
from crossmargin.tiers import slice_at, tiered_at

# ------------------------------------------------------------------ the account's mode


def is_pro() -> pl.Expr:
    return pl.col("margin_mode") == "pro"


def is_classic() -> pl.Expr:
    return pl.col("margin_mode") == "classic"


# ------------------------------------------------------------------ per balance row (one asset)


def holding() -> pl.Expr:
    """free + locked, asset units."""
    return pl.col("free") + pl.col("locked")


def debt() -> pl.Expr:
    """borrowed + interest, asset units."""
    return pl.col("borrowed") + pl.col("interest")


# ------------------------------------------------------------------ per open order
# An order with its base-asset terms (suffix _base) and quote-asset terms (suffix _quote).


def is_buy() -> pl.Expr:
    return pl.col("side") == "BUY"


# ------------------------------------------------------------------ per account (after the sums)


def total_asset_usdt() -> pl.Expr:
    return pl.col("total_asset_usdt")


def total_liability_usdt() -> pl.Expr:
    return pl.col("total_liability_usdt")


def net_equity_usdt() -> pl.Expr:
    """total_asset − total_liability."""
    return total_asset_usdt() - total_liability_usdt()


def net_collateral_usdt() -> pl.Expr:
    """collateral − total_liability."""
    return pl.col("collateral_usdt") - total_liability_usdt()


# per-row value -> the account total it adds into
BALANCE_SUMS = {
    "asset_value_usdt": "total_asset_usdt",
    "debt_value_usdt": "total_liability_usdt",
    "collateral_value_usdt": "collateral_usdt",
    "debt_maintenance_margin_usdt": "maintenance_margin_usdt",
    "debt_initial_margin_usdt": "initial_margin_usdt",
    # the stable-asset parts of total_asset / total_liability (distances to thresholds)
    "asset_value_stable_usdt": "stable_asset_value_usdt",
    "debt_value_stable_usdt": "stable_debt_value_usdt",
}
ORDER_SUMS = {"order_loss_usdt": "open_order_loss_usdt"}


# ------------------------------------------------------------------ per row, compiled
# One row at a time, called by the kernels of account_sums.py (the row pass, the scenarios) and
# distances.py: each function is named after the per-row value it returns (BALANCE_SUMS, ORDER_SUMS).
# A NaN (a null input, or a missing price) flows through; the kernels add it as 0.

N_BALANCE_VALUES = len(BALANCE_SUMS)


@njit(inline=True)
def asset_value_usdt(holding: float, price: float) -> float:
    """holding · price (holding = free + locked, added once per row as the rows are read: `holding()`)."""
    return holding * price


@njit(inline=True)
def debt_value_usdt(debt: float, price: float) -> float:
    """debt · price (debt = borrowed + interest, added once per row as the rows are read: `debt()`)."""
    return debt * price


@njit(inline=True)
def collateral_value_usdt(asset_value: float, asset_idx: int, coll: tuple) -> float:
    """tiered(holding·price, the asset's collateral tiers): the haircut value of one holding.
    `coll` = (K, lower, collateral_ratio, below) of tiers.Slices."""
    k_max, lower, rate, below = coll
    return tiered_at(asset_value, slice_at(asset_value, asset_idx, lower, k_max), lower, rate, below)


@njit(inline=True)
def debt_margins_usdt(debt_value: float, asset_idx: int, liab: tuple) -> tuple[float, float]:
    """(maintenance, initial) margin of one debt: tiered(debt·price, the asset's liability brackets,
    maintenance_margin_rate / initial_margin_rate), one bracket lookup for both; exactly 0 without
    debt. `liab` = (K, lower, mm rate, mm below, im rate, im below) of tiers.Slices."""
    if debt_value == 0.0:  # what the tiers give for 0 (every table starts at 0), without the lookup
        return 0.0, 0.0
    k_max, lower, mm, below_mm, im, below_im = liab
    at = slice_at(debt_value, asset_idx, lower, k_max)
    return tiered_at(debt_value, at, lower, mm, below_mm), tiered_at(debt_value, at, lower, im, below_im)


@njit(inline=True)
def balance_row_values(
    asset_idx: int,
    holding: float,
    debt: float,
    n_assets: int,
    price: np.ndarray,
    stable: np.ndarray,
    coll: tuple,
    liab: tuple,
    out: np.ndarray,
    at: int,
) -> None:
    """out[k, at] = the k-th per-row value of BALANCE_SUMS for one balance row (NaN where a value is
    undefined: an asset no price or table names, a missing price). The stable-asset parts are the
    row's values when its asset is a stable asset, else 0: what a uniform price move leaves alone
    (docs/rules.md §8)."""
    if asset_idx >= n_assets:
        for k in range(N_BALANCE_VALUES):
            out[k, at] = np.nan
        return
    asset_value = asset_value_usdt(holding, price[asset_idx])
    debt_value = debt_value_usdt(debt, price[asset_idx])
    maintenance, initial = debt_margins_usdt(debt_value, asset_idx, liab)
    out[0, at] = asset_value
    out[1, at] = debt_value
    out[2, at] = collateral_value_usdt(asset_value, asset_idx, coll)
    out[3, at] = maintenance
    out[4, at] = initial
    out[5, at] = asset_value if stable[asset_idx] else 0.0
    out[6, at] = debt_value if stable[asset_idx] else 0.0


@njit(inline=True)
def order_loss_usdt(
    is_buy: bool,
    qty: float,
    limit: float,
    price_base: float,
    ratio_base: float,
    price_quote: float,
    ratio_quote: float,
) -> float:
    """max(0, given − received) for one order (orders are not netted). The quote leg is at the limit
    price, the base leg at the index price, each haircut (order_legs_usdt); a BUY gives the quote leg
    and receives the base leg, a SELL the reverse (docs/rules.md §1.3)."""
    quote_leg, base_leg = order_legs_usdt(qty, limit, price_base, ratio_base, price_quote, ratio_quote)
    loss = (quote_leg - base_leg) if is_buy else (base_leg - quote_leg)
    return loss if loss > 0.0 else 0.0


@njit(inline=True)
def order_legs_usdt(
    qty: float, limit: float, price_base: float, ratio_base: float, price_quote: float, ratio_quote: float
) -> tuple[float, float]:
    """(quote leg, base leg) of one order: qty·limit·P_quote·r_quote and qty·P_base·r_base."""
    return qty * limit * price_quote * ratio_quote, qty * price_base * ratio_base
