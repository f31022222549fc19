"""Quantities (docs/rules.md §1), one small named function each; all money in USDT, float64.

Per row: a balance row's value, debt value, collateral value and margins, and an open order's legs and
loss, as compiled functions of one row (`jitable`): the valuation (kernels/valuation.py) calls them for
every row, at any prices. `holding` and `debt`, a balance row's two amounts, are polars expressions:
added once as the rows are read, and read by the data-quality rules too.

Per account: `Quantities`, the account's sums, and the quantities made of them (`net_equity_usdt`,
`net_collateral_usdt`). Each of those is written once, as a function of `q`, and serves two ways: over
every account at once with `q = COLUMNS` (polars columns: the account pass), and compiled, for one
account, with `q` a `Quantities` of floats (the kernels that move an account along a path).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import polars as pl

from crossmargin.kernels.compiled import jitable
from crossmargin.rules.tiers import slice_at, tiered_at

# ------------------------------------------------------------------ the account's mode and sides


def is_pro() -> pl.Expr:
    return pl.col("margin_mode") == "pro"


def is_classic() -> pl.Expr:
    return pl.col("margin_mode") == "classic"


def is_buy() -> pl.Expr:
    return pl.col("side") == "BUY"


# ------------------------------------------------------------------ a balance row's amounts


def holding() -> pl.Expr:
    """free + locked, asset units."""
    return pl.col("free") + pl.col("locked")


def debt() -> pl.Expr:
    """borrowed + interest, asset units."""
    return pl.col("borrowed") + pl.col("interest")


# ------------------------------------------------------------------ per row, compiled
# A NaN (a null input, or a missing price) flows through; the valuation adds it as 0.


@jitable
def asset_value_usdt(holding: float, price: float) -> float:
    """holding · price."""
    return holding * price


@jitable
def debt_value_usdt(debt: float, price: float) -> float:
    """debt · price."""
    return debt * price


@jitable
def collateral_value_usdt(asset_value: float, asset_idx: int, coll: tuple) -> float:
    """tiered(holding·price, the asset's collateral tiers): the haircut value of one holding.
    `coll` = (K, lower, collateral_ratio, below) of tiers.Slices."""
    k_max, lower, rate, below = coll
    return tiered_at(asset_value, slice_at(asset_value, asset_idx, lower, k_max), lower, rate, below)


@jitable
def debt_margins_usdt(debt_value: float, asset_idx: int, liab: tuple) -> tuple[float, float]:
    """(maintenance, initial) margin of one debt: tiered(debt·price, the asset's liability brackets,
    maintenance_margin_rate / initial_margin_rate), one bracket lookup for both; exactly 0 without
    debt. `liab` = (K, lower, mm rate, mm below, im rate, im below) of tiers.Slices."""
    if debt_value == 0.0:  # what the tiers give for 0 (every table starts at 0), without the lookup
        return 0.0, 0.0
    k_max, lower, mm, below_mm, im, below_im = liab
    at = slice_at(debt_value, asset_idx, lower, k_max)
    return tiered_at(debt_value, at, lower, mm, below_mm), tiered_at(debt_value, at, lower, im, below_im)


@jitable
def order_legs_usdt(
    qty: float, limit: float, price_base: float, ratio_base: float, price_quote: float, ratio_quote: float
) -> tuple[float, float]:
    """(quote leg, base leg) of one order: qty·limit·P_quote·r_quote and qty·P_base·r_base."""
    return qty * limit * price_quote * ratio_quote, qty * price_base * ratio_base


@jitable
def order_given_received_usdt(
    is_buy: bool,
    qty: float,
    limit: float,
    price_base: float,
    ratio_base: float,
    price_quote: float,
    ratio_quote: float,
) -> tuple[float, float]:
    """(given, received) of one order: a BUY gives the quote leg and receives the base leg, a SELL the
    reverse (docs/rules.md §1.3)."""
    quote_leg, base_leg = order_legs_usdt(qty, limit, price_base, ratio_base, price_quote, ratio_quote)
    return (quote_leg, base_leg) if is_buy else (base_leg, quote_leg)


@jitable
def order_given_minus_received_usdt(
    is_buy: bool,
    qty: float,
    limit: float,
    price_base: float,
    ratio_base: float,
    price_quote: float,
    ratio_quote: float,
) -> float:
    """given − received of one order."""
    given, received = order_given_received_usdt(
        is_buy, qty, limit, price_base, ratio_base, price_quote, ratio_quote
    )
    return given - received


@jitable
def order_loss_usdt(
    is_buy: bool,
    qty: float,
    limit: float,
    price_base: float,
    ratio_base: float,
    price_quote: float,
    ratio_quote: float,
) -> float:
    """max(0, given − received) of one order (orders are not netted)."""
    loss = order_given_minus_received_usdt(
        is_buy, qty, limit, price_base, ratio_base, price_quote, ratio_quote
    )
    return loss if loss > 0.0 else 0.0


@jitable
def nan_as_zero(x: float) -> float:
    """A per-row value that is NaN (a null input, or 0 × a missing price) adds 0 to its account."""
    return 0.0 if np.isnan(x) else x


# ------------------------------------------------------------------ per account


class Quantities(NamedTuple):
    """An account's sums (docs/rules.md §1.1), in the order the valuation returns them."""

    total_asset_usdt: Any
    total_liability_usdt: Any
    collateral_usdt: Any
    maintenance_margin_usdt: Any
    initial_margin_usdt: Any
    open_order_loss_usdt: Any


SUMS = list(Quantities._fields)
BALANCE_SUMS = SUMS[:5]  # summed over the balance rows
ORDER_SUMS = SUMS[5:]  # summed over the open orders
COLUMNS = Quantities(*(pl.col(name) for name in SUMS))  # every account's sums, as polars columns


@jitable
def net_equity_usdt(q: Quantities) -> Any:
    """total_asset − total_liability."""
    return q.total_asset_usdt - q.total_liability_usdt


@jitable
def net_collateral_usdt(q: Quantities) -> Any:
    """collateral − total_liability."""
    return q.collateral_usdt - q.total_liability_usdt
