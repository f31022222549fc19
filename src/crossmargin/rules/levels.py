"""Margin levels (docs/rules.md §2): each one float64 division; a zero denominator gives +inf.

A level is written once, as a function of an account's quantities `q` returning its numerator and
denominator, and `ratio` makes the division. The same function serves two ways:
- over every account at once, with `q = quantities.COLUMNS`: polars expressions (`all_levels`, the
  account pass and the scenarios);
- compiled, for one account, with `q` a `Quantities` of floats: the kernels that move an account along
  a path (the distances to thresholds, the top-ups) value it at each point and read its level there.
`ratio` has a polars form and a compiled form (`_compiled_ratio`); tests pin the two to the same bits.

Every level is computed for every account (Classic and Pro) at every as_of; `pro_margin_level` and
`margin_level` then pick the formula in force / the account's own mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from numba.extending import overload

from crossmargin.kernels.compiled import jitable
from crossmargin.policy import Policy
from crossmargin.rules.quantities import COLUMNS, Quantities, is_pro, net_collateral_usdt, net_equity_usdt

INF = float("inf")


def ratio(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, +inf when the denominator is 0 whatever the numerator (never NaN/-inf):
    a polars expression of two expressions, a float of two floats."""
    if isinstance(numerator, pl.Expr) or isinstance(denominator, pl.Expr):
        return pl.when(denominator == 0).then(pl.lit(INF)).otherwise(numerator / denominator)
    return INF if denominator == 0 else float(numerator / denominator)


@overload(ratio)
def _compiled_ratio(numerator, denominator):
    """`ratio` of two floats, in a kernel."""

    def level(numerator, denominator):
        return np.inf if denominator == 0 else numerator / denominator

    return level


# ------------------------------------------------------------------ the levels: (numerator, denominator)


@jitable
def classic_margin_level(q: Quantities) -> tuple[Any, Any]:
    """total_asset / total_liability."""
    return q.total_asset_usdt, q.total_liability_usdt


@jitable
def classic_collateral_margin_level(q: Quantities) -> tuple[Any, Any]:
    """collateral / total_liability."""
    return q.collateral_usdt, q.total_liability_usdt


@jitable
def pro_margin_level_old(q: Quantities) -> tuple[Any, Any]:
    """net_equity / maintenance_margin (Pro before the new formula)."""
    return net_equity_usdt(q), q.maintenance_margin_usdt


@jitable
def pro_margin_level_new(q: Quantities) -> tuple[Any, Any]:
    """(net_collateral − open_order_loss) / maintenance_margin (Pro from the new formula)."""
    return net_collateral_usdt(q) - q.open_order_loss_usdt, q.maintenance_margin_usdt


@jitable
def net_equity_over_one(q: Quantities) -> tuple[Any, Any]:
    """net_equity / 1: net equity as a measure the kernels compare with a threshold like a level (the
    net-equity condition of Pro eligibility); the division by 1 gives net equity's own bits."""
    return net_equity_usdt(q), 1.0


# The measures a kernel can move an account along a path on, by index (`measure` in kernels): the
# four levels, then net equity. `measures(q)` gives all of them at once, in this order.
MEASURES = [
    "classic_margin_level",
    "classic_collateral_margin_level",
    "pro_margin_level_old",
    "pro_margin_level_new",
    "net_equity_usdt",
]


@jitable
def measures(q: Quantities) -> tuple:
    """(numerator, denominator) of every measure of MEASURES, in its order."""
    return (
        classic_margin_level(q),
        classic_collateral_margin_level(q),
        pro_margin_level_old(q),
        pro_margin_level_new(q),
        net_equity_over_one(q),
    )


def measure_index(name: str) -> int:
    return MEASURES.index(name)


def reads(name: str) -> set[str]:
    """The account sums a measure reads (from its polars form): which of an account's rows move it."""
    numerator, denominator = measures(COLUMNS)[measure_index(name)]
    names = set(numerator.meta.root_names())
    if isinstance(denominator, pl.Expr):
        names |= set(denominator.meta.root_names())
    return names


# ------------------------------------------------------------------ every account at once (polars)


def pro_formula(policy: Policy) -> str:
    """The Pro level in force at as_of: the new formula from its date, the old one before."""
    return "pro_margin_level_new" if policy.new_formula else "pro_margin_level_old"


def judged_by(policy: Policy) -> tuple[str, str]:
    """The level an account's margin call and liquidation are judged on: (a Classic account's, a Pro
    account's) — its own mode's level."""
    return "classic_margin_level", pro_formula(policy)


def pro_margin_level(policy: Policy) -> pl.Expr:
    return pl.col(pro_formula(policy))


def margin_level(policy: Policy) -> pl.Expr:
    """classic_margin_level for Classic accounts, pro_margin_level for Pro (`judged_by`)."""
    classic, pro = judged_by(policy)
    return pl.when(is_pro()).then(pl.col(pro)).otherwise(pl.col(classic))


def margin_level_measure(policy: Policy) -> pl.Expr:
    """`margin_level` as an index of MEASURES, per account (`judged_by`): what the kernels move."""
    classic, pro = judged_by(policy)
    return (
        pl.when(is_pro())
        .then(pl.lit(measure_index(pro), pl.Int8))
        .otherwise(pl.lit(measure_index(classic), pl.Int8))
    )


def pro_available_margin_usdt(policy: Policy) -> pl.Expr:
    """new: max(net_collateral − OOL − IM, 0); old: max(net_collateral − IM, 0) (net collateral in both)."""
    q = COLUMNS
    free = net_collateral_usdt(q) - q.initial_margin_usdt
    if policy.new_formula:
        free = net_collateral_usdt(q) - q.open_order_loss_usdt - q.initial_margin_usdt
    return pl.max_horizontal(free, pl.lit(0.0))


LEVELS = {
    "classic_margin_level": classic_margin_level,
    "classic_collateral_margin_level": classic_collateral_margin_level,
    "pro_margin_level_old": pro_margin_level_old,
    "pro_margin_level_new": pro_margin_level_new,
}


def all_levels(policy: Policy) -> list[dict[str, pl.Expr]]:
    """Stages of with_columns over the account sums: each stage may use the columns of the previous ones."""
    q = COLUMNS
    return [
        {
            "net_equity_usdt": net_equity_usdt(q),
            "net_collateral_usdt": net_collateral_usdt(q),
            **{name: ratio(*level(q)) for name, level in LEVELS.items()},
            "pro_available_margin_usdt": pro_available_margin_usdt(policy),
        },
        {"pro_margin_level": pro_margin_level(policy), "margin_level": margin_level(policy)},
    ]
