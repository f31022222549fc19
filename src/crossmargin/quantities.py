"""Quantities, one small named expression each (all money in USDT, float64).

Row level (a balance row with its asset's terms, or an open order with both of its assets' terms,
as gathered by `AssetTerms.gather`), then account level (sums over the account's rows). A per-row
value has its own name (`asset_value_usdt`); the account total it adds into has the account name
(`total_asset_usdt`): `ACCOUNT_SUMS` maps one to the other.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crossmargin.compiled import njit
from crossmargin.tiers import Slices, slice_at, slice_index, tiered, tiered_at

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


def asset_value_usdt() -> pl.Expr:
    return holding() * pl.col("price_usdt")


def debt_value_usdt() -> pl.Expr:
    return debt() * pl.col("price_usdt")


def stable_part(value: str, stable: pl.Series) -> pl.Expr:
    """The row's USDT value when its asset is a stable asset (`stable`: per asset_idx), else 0: the part
    of the account total that a uniform price move leaves alone (docs/rules.md §8)."""
    return pl.when(pl.lit(stable).gather(pl.col("asset_idx"))).then(pl.col(value)).otherwise(pl.lit(0.0))


def collateral_value_usdt(slices: Slices) -> pl.Expr:
    """tiered(holding·price, collateral_tiers[asset]): the haircut value of one holding."""
    return tiered(pl.col("asset_value_usdt"), pl.col("collateral_slice"), slices, "collateral_ratio")


def maintenance_margin_of_debt(slices: Slices) -> pl.Expr:
    """tiered(debt·price, liability_brackets[asset], maintenance_margin_rate); exactly 0 without debt."""
    return tiered(pl.col("debt_value_usdt"), pl.col("debt_slice"), slices, "maintenance_margin_rate")


def initial_margin_of_debt(slices: Slices) -> pl.Expr:
    """Same as maintenance_margin_of_debt with initial_margin_rate."""
    return tiered(pl.col("debt_value_usdt"), pl.col("debt_slice"), slices, "initial_margin_rate")


# ------------------------------------------------------------------ per open order
# An order with its base-asset terms (suffix _base) and quote-asset terms (suffix _quote).


def order_quote_leg_usdt() -> pl.Expr:
    """qty·price·P_quote·r_quote: the quote side of an order at its limit price, haircut."""
    r_quote = pl.col("first_collateral_ratio_quote")
    return pl.col("remaining_qty") * pl.col("price") * pl.col("price_usdt_quote") * r_quote


def order_base_leg_usdt() -> pl.Expr:
    """qty·P_base·r_base: the base side of an order at index price, haircut."""
    return pl.col("remaining_qty") * pl.col("price_usdt_base") * pl.col("first_collateral_ratio_base")


def is_buy() -> pl.Expr:
    return pl.col("side") == "BUY"


def order_given_usdt() -> pl.Expr:
    """BUY gives the quote leg, SELL the base leg (docs/rules.md §1 [convention])."""
    return pl.when(is_buy()).then(order_quote_leg_usdt()).otherwise(order_base_leg_usdt())


def order_received_usdt() -> pl.Expr:
    """BUY receives the base leg, SELL the quote leg."""
    return pl.when(is_buy()).then(order_base_leg_usdt()).otherwise(order_quote_leg_usdt())


def order_loss_usdt() -> pl.Expr:
    """max(0, given − received) for one order (orders are not netted)."""
    return pl.max_horizontal(order_given_usdt() - order_received_usdt(), pl.lit(0.0))


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
# The same per-row quantities for one row at a time, called by the kernels of account_sums.py (the
# row pass and the scenarios). Each operation is the one the expressions above write, in the same
# order, so the bits are the same (tests/test_quantities_compiled.py).

N_BALANCE_VALUES = len(BALANCE_SUMS)


@njit(inline=True)
def balance_row_values(
    asset_idx: int,
    free: float,
    locked: float,
    borrowed: float,
    interest: float,
    n_assets: int,
    price: np.ndarray,
    stable: np.ndarray,
    coll: tuple,
    liab: tuple,
    out: np.ndarray,
    at: int,
) -> None:
    """out[k, at] = the k-th per-row value of BALANCE_SUMS for one balance row (NaN where a value is
    undefined: an asset no price or table names, a missing price)."""
    if asset_idx >= n_assets:
        for k in range(N_BALANCE_VALUES):
            out[k, at] = np.nan
        return
    c_k, c_lower, c_rate, c_below = coll
    l_k, l_lower, l_mm, l_below_mm, l_im, l_below_im = liab
    asset_value = (free + locked) * price[asset_idx]  # holding · price
    debt_value = (borrowed + interest) * price[asset_idx]  # debt · price
    c_at = slice_at(asset_value, asset_idx, c_lower, c_k)
    l_at = slice_at(debt_value, asset_idx, l_lower, l_k)
    out[0, at] = asset_value
    out[1, at] = debt_value
    out[2, at] = tiered_at(asset_value, c_at, c_lower, c_rate, c_below)
    out[3, at] = tiered_at(debt_value, l_at, l_lower, l_mm, l_below_mm)
    out[4, at] = tiered_at(debt_value, l_at, l_lower, l_im, l_below_im)
    out[5, at] = asset_value if stable[asset_idx] else 0.0
    out[6, at] = debt_value if stable[asset_idx] else 0.0


@njit(inline=True)
def order_loss(
    is_buy: bool,
    qty: float,
    limit: float,
    price_base: float,
    ratio_base: float,
    price_quote: float,
    ratio_quote: float,
) -> float:
    """order_loss_usdt for one order: max(0, given − received) of its two haircut legs."""
    quote_leg = qty * limit * price_quote * ratio_quote
    base_leg = qty * price_base * ratio_base
    loss = (quote_leg - base_leg) if is_buy else (base_leg - quote_leg)
    return loss if loss > 0.0 else 0.0


def balance_values(collateral: Slices, liability: Slices, stable: pl.Series) -> list[dict[str, pl.Expr]]:
    """Per balance row, the values the account totals add up, in steps: the USDT values, then the
    slice each falls in (and their stable-asset parts; `stable`: per asset_idx), then the tiered
    values (each step reads the last)."""
    return [
        {"asset_value_usdt": asset_value_usdt(), "debt_value_usdt": debt_value_usdt()},
        {
            "collateral_slice": slice_index(pl.col("asset_value_usdt"), pl.col("asset_idx"), collateral),
            "debt_slice": slice_index(pl.col("debt_value_usdt"), pl.col("asset_idx"), liability),
            "asset_value_stable_usdt": stable_part("asset_value_usdt", stable),
            "debt_value_stable_usdt": stable_part("debt_value_usdt", stable),
        },
        {
            "collateral_value_usdt": collateral_value_usdt(collateral),
            "debt_maintenance_margin_usdt": maintenance_margin_of_debt(liability),
            "debt_initial_margin_usdt": initial_margin_of_debt(liability),
        },
    ]
