"""One account's rows, each valued by the engine's own per-row functions (rules/quantities.py).

The valuation (kernels/valuation.py: `value_balances`, `value_orders`) adds an account's rows left to
right from -0.0, in the order it reads them, each row's part through `nan_as_zero`. Here the same rows
(the row pass's, as the kernels read them) are valued one by one by the same functions at the same
prices (`moved_price` with no move), so each part is the one the kernel added, and the parts added
the same way give the account's sums bit for bit. A row whose asset no price or table names adds
nothing (as in the kernels): its parts are null. The slices a value uses (rules/tiers.py
`slice_parts`) are shown beside it: an explanation of the tiered value, not a second computation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from crossmargin.engine.rows import BALANCE_COLUMNS, ORDER_COLUMNS
from crossmargin.kernels.valuation import Market, moved_price
from crossmargin.market import BASE, QUOTE, AssetTerms
from crossmargin.rules.quantities import (
    asset_value_usdt,
    collateral_value_usdt,
    debt_margins_usdt,
    debt_value_usdt,
    order_given_received_usdt,
    order_loss_usdt,
)
from crossmargin.rules.tiers import slice_parts

BALANCE_INPUTS = ["asset", "free", "locked", "borrowed", "interest"]
ORDER_INPUTS = ["order_id", "side", "base_asset", "quote_asset", "price", "remaining_qty"]
# a balance row's parts, in the order of the account's sums (rules/quantities.BALANCE_SUMS)
BALANCE_PARTS = [
    "value_usdt",
    "liability_usdt",
    "collateral_usdt",
    "maintenance_margin_usdt",
    "initial_margin_usdt",
]
ORDER_PARTS = ["loss_usdt"]  # an order's part of open_order_loss_usdt


def _price_terms(terms: AssetTerms, a: int) -> dict[str, Any]:
    """The time of asset index a's price in effect, and what is wrong with it (null: nothing)."""
    return {"priced_at": terms.frame["priced_at"][a], "price_problem": terms.frame["price_detail"][a]}


def _priced(market: Market, a: int) -> float:
    """Asset a's price as the valuation reads it (no move)."""
    return moved_price(market.prices[0], market.moving, 1.0, a)


def balance_parts(a: int, holding: float, debt: float, market: Market) -> tuple[float, ...]:
    """(value, liability, collateral, maintenance, initial) of one balance row at the prices in effect:
    the calls `value_balances` makes for it (a NaN is what the valuation adds as 0)."""
    price = _priced(market, a)
    value = asset_value_usdt(holding, price)
    liability = debt_value_usdt(debt, price)
    collateral = collateral_value_usdt(value, a, market.coll)
    maintenance, initial = debt_margins_usdt(liability, a, market.liab)
    return value, liability, collateral, maintenance, initial


def _slices(x: float, a: int, slices, rate: str) -> list[dict[str, float]]:
    """The slices x uses (none for no amount, or an amount that is not a number)."""
    return slice_parts(x, a, slices, rate) if x > 0 and math.isfinite(x) else []


def balance_row(shown: dict[str, Any], valued: dict[str, Any], terms: AssetTerms, market: Market) -> dict:
    """One balance row: its input values, holding and debt, price, parts and the slices they use."""
    a, holding, debt = valued["asset_idx"], valued["holding"], valued["debt"]
    row = {**{c: shown[c] for c in BALANCE_INPUTS}, "holding": holding, "debt": debt}
    if a >= market.prices.shape[1]:  # no price or table names the asset: the row adds nothing
        return {**row, "price_usdt": None, "priced_at": None, "price_problem": None,
                **dict.fromkeys(BALANCE_PARTS), "slices": {}}  # fmt: skip
    parts = [float(x) for x in balance_parts(a, holding, debt, market)]
    value, liability = parts[0], parts[1]
    slices = {
        "collateral": _slices(value, a, terms.collateral, "collateral_ratio"),
        "maintenance_margin": _slices(liability, a, terms.liability, "maintenance_margin_rate"),
        "initial_margin": _slices(liability, a, terms.liability, "initial_margin_rate"),
    }
    return {**row, "price_usdt": float(_priced(market, a)), **_price_terms(terms, a),
            **dict(zip(BALANCE_PARTS, parts, strict=True)), "slices": slices}  # fmt: skip


def order_row(shown: dict[str, Any], valued: dict[str, Any], market: Market) -> dict:
    """One open order: its input values, both legs' prices and first-slice collateral ratios, what it
    gives and receives and its loss max(0, given − received): the calls `value_orders` makes for it."""
    b, q = valued[f"asset_idx{BASE}"], valued[f"asset_idx{QUOTE}"]
    row = {c: shown[c] for c in ORDER_INPUTS}
    n = market.prices.shape[1]
    if b >= n or q >= n:  # an asset no price or table names: the order adds nothing
        return {**row, "given_usdt": None, "received_usdt": None, "loss_usdt": None}
    legs = (valued["is_buy"], valued["remaining_qty"], valued["price"],
            _priced(market, b), market.ratio[b], _priced(market, q), market.ratio[q])  # fmt: skip
    given, received = order_given_received_usdt(*legs)
    return {
        **row,
        "base_price_usdt": float(legs[3]),
        "base_collateral_ratio": float(legs[4]),
        "quote_price_usdt": float(legs[5]),
        "quote_collateral_ratio": float(legs[6]),
        "given_usdt": float(given),
        "received_usdt": float(received),
        "loss_usdt": float(order_loss_usdt(*legs)),
    }


def _paired(shown: pl.DataFrame, valued: pl.DataFrame, same: pl.Series) -> list[tuple[dict, dict]]:
    """The input rows of one account beside the rows the kernels read, one to one and in order (`same`:
    what must match, from `shown`, against the first such column of `valued`)."""
    if shown.height != valued.height or not np.array_equal(same.to_numpy(), valued[same.name].to_numpy()):
        raise AssertionError(f"the input rows and the valued rows of an account differ ({same.name})")
    return list(zip(shown.iter_rows(named=True), valued.iter_rows(named=True), strict=True))


def balance_rows(shown: pl.DataFrame, valued: pl.DataFrame, terms: AssetTerms, market: Market) -> list[dict]:
    """Every balance row of one account (`shown`: its input rows; `valued`: the row pass's)."""
    index = shown.select(terms.index(pl.col("asset")).fill_null(market.prices.shape[1]).alias("asset_idx"))
    pairs = _paired(shown, valued.select(BALANCE_COLUMNS), index.to_series())
    return [balance_row(s, v, terms, market) for s, v in pairs]


def order_rows(shown: pl.DataFrame, valued: pl.DataFrame, market: Market) -> list[dict]:
    """Every open order of one account (`shown`: its input rows; `valued`: the row pass's)."""
    pairs = _paired(shown, valued.select(ORDER_COLUMNS), shown["order_id"].fill_null(0))
    return [order_row(s, v, market) for s, v in pairs]
