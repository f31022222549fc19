"""Per-row rules of each input table: a bad row never stops the run, it becomes a data issue.

Each table has an ordered list of named rules; a row reports the first rule it breaks (one issue row
per bad input row). A row also needs reference data: a price in effect for every asset it holds,
owes or trades (a balance row that is all zeros needs nothing), collateral tiers for every asset it
holds or trades, liability brackets for every asset it owes.

The row pass asks only whether a row breaks some rule (`balance_breaks`, `order_breaks`: the rules
on an asset's reference data evaluated once per asset, `asset_flags`); the issue rows themselves
come from the rule lists (`balance_rules`, `order_rules`, ...) in a second pass when one does.
"""

from __future__ import annotations

import polars as pl

from crossmargin.io.schemas import MARGIN_MODES, SIDES
from crossmargin.market import BASE, COLLATERAL, LIABILITY, QUOTE, AssetTerms
from crossmargin.policy import Policy
from crossmargin.rules.quantities import debt, holding
from crossmargin.validation import prices
from crossmargin.validation.countries import ISO_COUNTRIES
from crossmargin.validation.rules import Rule, any_of, fmt, text, values

QUANTITIES = ["free", "locked", "borrowed", "interest"]
ORDER_NUMBERS = ["price", "remaining_qty"]


def _price_rules(asset: pl.Expr, suffix: str, need: pl.Expr, role: str) -> list[Rule]:
    """The price in effect of an asset a row needs: it exists, is unambiguous, fresh, finite, >= 0."""
    problem = pl.col(f"price_problem{suffix}")
    price = pl.col(f"price_usdt{suffix}")
    detail = pl.col(f"price_detail{suffix}")

    def rule(code: str, broken: pl.Expr, why: pl.Expr) -> Rule:
        return Rule(code, "prices", need & broken, why, asset)

    return [
        rule(
            "missing_price",
            problem.is_null(),
            fmt("no price for {} ({}) priced at or before as_of", asset, pl.lit(role)),
        ),
        rule("ambiguous_price", problem == prices.AMBIGUOUS, detail),
        rule("missing_price", problem == prices.MISSING, detail),
        rule("stale_price", problem == prices.STALE, detail),
        rule("non_finite_value", ~price.is_finite(), fmt("price_usdt of {} is {}", asset, text(price))),
        rule("negative_quantity", price < 0, fmt("price_usdt of {} is {}", asset, text(price))),
    ]


def _table_rules(asset: pl.Expr, suffix: str, need: pl.Expr, role: str, prefix: str) -> list[Rule]:
    """The tier table in effect of an asset a row needs (collateral tiers or liability brackets)."""
    table = "collateral_tiers" if prefix == COLLATERAL else "liability_brackets"
    missing = "missing_collateral_tiers" if prefix == COLLATERAL else "missing_liability_brackets"
    return [
        Rule(
            missing,
            table,
            need & ~pl.col(f"{prefix}present{suffix}").fill_null(False),
            fmt("no {} for {} ({}) effective at as_of", pl.lit(table), asset, pl.lit(role)),
            asset,
        ),
        Rule(
            "bad_tier_table",
            table,
            need & pl.col(f"{prefix}bad{suffix}").fill_null(False),
            fmt("{} of {}: {}", pl.lit(table), asset, pl.col(f"{prefix}problem{suffix}")),
            asset,
        ),
    ]


def _null_account(table: str) -> Rule:
    return Rule("bad_value", table, pl.col("account_id").is_null(), pl.lit("account_id is null"))


def account_rules(policy: Policy, repeated_ids: pl.Series) -> list[Rule]:
    """repeated_ids: the account_ids that appear more than once (kernels/runs.repeated)."""
    leverages = policy.leverages
    return [
        _null_account("accounts"),
        Rule(
            "duplicate_row",
            "accounts",
            pl.col("account_id").is_in(repeated_ids.implode()),
            fmt("account_id appears {} times in accounts", pl.len().over("account_id")),
        ),
        Rule(
            "unknown_mode",
            "accounts",
            ~pl.col("margin_mode").is_in(MARGIN_MODES).fill_null(False),
            fmt(
                "margin_mode {} is not one of {}", text(pl.col("margin_mode")), pl.lit("/".join(MARGIN_MODES))
            ),
        ),
        Rule(
            "bad_value",
            "accounts",
            ~pl.col("classic_leverage").is_in(leverages).fill_null(False),
            fmt(
                "classic_leverage {} is not one of {}",
                text(pl.col("classic_leverage")),
                pl.lit("/".join(map(str, leverages))),
            ),
        ),
        Rule(
            "bad_value",
            "accounts",
            pl.col("cross_margin_activated").is_null() | pl.col("pro_quiz_passed").is_null(),
            values(["cross_margin_activated", "pro_quiz_passed"]),
        ),
        Rule(
            "bad_value",
            "accounts",
            ~pl.col("country").is_in(ISO_COUNTRIES).fill_null(False),
            fmt("country {} is not an officially assigned ISO 3166-1 alpha-2 code", text(pl.col("country"))),
        ),
    ]


def _balance_needs() -> tuple[pl.Expr, pl.Expr, pl.Expr | None]:
    """(priced, collateral, liability) of `_asset_rules` for a balance row: its asset's price if it
    holds or owes it, its collateral tiers if it holds it, its liability brackets if it owes it."""
    holds, owes = holding() > 0, debt() > 0
    return holds | owes, holds, owes


def _order_needs() -> tuple[pl.Expr, pl.Expr, pl.Expr | None]:
    """(priced, collateral, liability) of `_asset_rules` for an order's base or quote asset: its
    price and collateral tiers, always; no liability brackets."""
    return pl.lit(True), pl.lit(True), None


def balance_rules() -> list[Rule]:
    return _balance_row_rules() + _asset_rules(pl.col("asset"), "", *_balance_needs(), "held or owed")


def _asset_rules(
    asset: pl.Expr, suffix: str, priced: pl.Expr, collateral: pl.Expr, liability: pl.Expr | None, role: str
) -> list[Rule]:
    """The rules on the reference data of an asset a row names: its price when `priced`, its
    collateral tiers when `collateral`, its liability brackets when `liability` (each a condition
    on the row; None: never): `_balance_needs`, `_order_needs`."""
    return [
        *_price_rules(asset, suffix, priced, role),
        *_table_rules(asset, suffix, collateral, role, COLLATERAL),
        *([] if liability is None else _table_rules(asset, suffix, liability, "owed", LIABILITY)),
    ]


def _balance_row_rules() -> list[Rule]:
    asset = pl.col("asset")
    return [
        _null_account("balances"),
        Rule("bad_value", "balances", asset.is_null(), pl.lit("asset is null")),
        Rule(
            "bad_value", "balances", any_of(QUANTITIES, lambda c: c.is_null()), values(["asset", *QUANTITIES])
        ),
        Rule(
            "non_finite_value",
            "balances",
            any_of(QUANTITIES, lambda c: ~c.is_finite()),
            values(["asset", *QUANTITIES]),
        ),
        Rule(
            "negative_quantity",
            "balances",
            any_of(QUANTITIES, lambda c: c < 0),
            values(["asset", *QUANTITIES]),
        ),
    ]


def order_rules() -> list[Rule]:
    return [
        *_order_row_rules(),
        *_asset_rules(pl.col("base_asset"), BASE, *_order_needs(), "order base"),
        *_asset_rules(pl.col("quote_asset"), QUOTE, *_order_needs(), "order quote"),
    ]


def _order_row_rules() -> list[Rule]:
    fields = ["order_id", "base_asset", "quote_asset", "side", *ORDER_NUMBERS]
    return [
        _null_account("open_orders"),
        Rule("bad_value", "open_orders", any_of(fields, lambda c: c.is_null()), values(fields)),
        Rule(
            "bad_value",
            "open_orders",
            ~pl.col("side").is_in(SIDES),
            fmt("order {}: side {} is not BUY/SELL", pl.col("order_id"), pl.col("side")),
        ),
        Rule(
            "non_finite_value",
            "open_orders",
            any_of(ORDER_NUMBERS, lambda c: ~c.is_finite()),
            values(["order_id", *ORDER_NUMBERS]),
        ),
        Rule(
            "negative_quantity",
            "open_orders",
            any_of(ORDER_NUMBERS, lambda c: c < 0),
            values(["order_id", *ORDER_NUMBERS]),
        ),
    ]


# ------------------------------------------------------------------ does a row break any rule?
# The row pass only needs to know whether some row breaks a rule (then a second pass lists the
# issues with their details, issue_rows over the rules above). The rules on an asset's reference
# data depend on the row only through which of them apply: they are evaluated once per asset
# (`asset_flags`) and a row reads its asset's flags (one small gather instead of the terms).

PRICE, TIERS, BRACKETS = 1, 2, 4  # asset_flags bits: its price / collateral tiers / brackets break a rule


def asset_flags(terms: AssetTerms) -> pl.Series:
    """UInt8 per asset_idx, and one more for an asset no price or table names (index n_assets): bit
    PRICE if a row that needs its price breaks a rule, TIERS its collateral tiers, BRACKETS its
    liability brackets."""
    unknown = pl.DataFrame({"asset": [None]}, schema={"asset": terms.frame.schema["asset"]})
    frame = pl.concat([terms.frame, unknown], how="diagonal_relaxed")
    always = pl.lit(True)

    def bit(rules: list[Rule], value: int) -> pl.Expr:
        return pl.when(pl.any_horizontal(r.broken for r in rules).fill_null(False)).then(value).otherwise(0)

    asset = pl.col("asset")
    flags = (
        bit(_price_rules(asset, "", always, ""), PRICE)
        + bit(_table_rules(asset, "", always, "", COLLATERAL), TIERS)
        + bit(_table_rules(asset, "", always, "", LIABILITY), BRACKETS)
    )
    return frame.select(flags.cast(pl.UInt8).alias("asset_flags")).to_series()


def _wanted(priced: pl.Expr, collateral: pl.Expr, liability: pl.Expr | None) -> pl.Expr:
    """The asset_flags bits of the rules a row needs (`_balance_needs`, `_order_needs`)."""
    bits = pl.when(priced).then(PRICE).otherwise(0) + pl.when(collateral).then(TIERS).otherwise(0)
    if liability is not None:
        bits = bits + pl.when(liability).then(BRACKETS).otherwise(0)
    return bits.cast(pl.UInt8)


def _needs(flags: pl.Series, asset_idx: str, bits: pl.Expr) -> pl.Expr:
    """True if the row's asset (`asset_idx`; null: an asset no price or table names) has one of `bits`
    set: a rule it needs breaks."""
    return (pl.lit(flags).gather(pl.col(asset_idx).fill_null(flags.len() - 1)) & bits) != 0


def balance_breaks(terms: AssetTerms) -> pl.Expr:
    """True for a balance row that breaks some rule of balance_rules (a frame with its asset_idx)."""
    wanted = _wanted(*_balance_needs())
    return (
        pl.any_horizontal(r.broken for r in _balance_row_rules())
        | _needs(asset_flags(terms), "asset_idx", wanted)
    ).fill_null(True)


def order_breaks(terms: AssetTerms) -> pl.Expr:
    """True for an open order that breaks some rule of order_rules (a frame with its asset indices)."""
    flags, wanted = asset_flags(terms), _wanted(*_order_needs())
    return (
        pl.any_horizontal(r.broken for r in _order_row_rules())
        | _needs(flags, f"asset_idx{BASE}", wanted)
        | _needs(flags, f"asset_idx{QUOTE}", wanted)
    ).fill_null(True)


def switch_rules() -> list[Rule]:
    return [
        _null_account("mode_switches"),
        Rule("bad_value", "mode_switches", pl.col("switched_at").is_null(), pl.lit("switched_at is null")),
    ]
