"""Margin levels of docs/rules.md §2: one float64 division each; a zero denominator gives +inf.

Every level is computed for every account (Classic and Pro) at every as_of; `pro_margin_level` and
`margin_level` then pick the formula in force / the account's own mode.
"""

from __future__ import annotations

import polars as pl

from crossmargin.policy import Policy
from crossmargin.quantities import is_pro, net_collateral_usdt, net_equity_usdt

INF = float("inf")


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, +inf when the denominator is 0 whatever the numerator (never NaN/-inf)."""
    return pl.when(denominator == 0).then(pl.lit(INF)).otherwise(numerator / denominator)


def classic_margin_level() -> pl.Expr:
    """total_asset / total_liability."""
    return ratio(pl.col("total_asset_usdt"), pl.col("total_liability_usdt"))


def classic_collateral_margin_level() -> pl.Expr:
    """collateral / total_liability."""
    return ratio(pl.col("collateral_usdt"), pl.col("total_liability_usdt"))


def pro_margin_level_old() -> pl.Expr:
    """net_equity / maintenance_margin (Pro before the new formula)."""
    return ratio(net_equity_usdt(), pl.col("maintenance_margin_usdt"))


def pro_margin_level_new() -> pl.Expr:
    """(net_collateral − open_order_loss) / maintenance_margin (Pro from the new formula)."""
    return ratio(net_collateral_usdt() - pl.col("open_order_loss_usdt"), pl.col("maintenance_margin_usdt"))


def pro_margin_level(policy: Policy) -> pl.Expr:
    """The Pro formula in force at as_of."""
    return pl.col("pro_margin_level_new" if policy.new_formula else "pro_margin_level_old")


def margin_level() -> pl.Expr:
    """classic_margin_level for Classic accounts, pro_margin_level for Pro."""
    return pl.when(is_pro()).then(pl.col("pro_margin_level")).otherwise(pl.col("classic_margin_level"))


def pro_available_margin_usdt(policy: Policy) -> pl.Expr:
    """new: max(net_collateral − OOL − IM, 0); old: max(net_collateral − IM, 0) (net collateral in both)."""
    free = net_collateral_usdt() - pl.col("initial_margin_usdt")
    if policy.new_formula:
        free = net_collateral_usdt() - pl.col("open_order_loss_usdt") - pl.col("initial_margin_usdt")
    return pl.max_horizontal(free, pl.lit(0.0))


def all_levels(policy: Policy) -> list[dict[str, pl.Expr]]:
    """Stages of with_columns: each stage may use the columns of the previous ones."""
    return [
        {
            "net_equity_usdt": net_equity_usdt(),
            "net_collateral_usdt": net_collateral_usdt(),
            "classic_margin_level": classic_margin_level(),
            "classic_collateral_margin_level": classic_collateral_margin_level(),
            "pro_margin_level_old": pro_margin_level_old(),
            "pro_margin_level_new": pro_margin_level_new(),
            "pro_available_margin_usdt": pro_available_margin_usdt(policy),
        },
        {"pro_margin_level": pro_margin_level(policy)},
        {"margin_level": margin_level()},
    ]
