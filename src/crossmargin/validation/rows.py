"""Per-row rules of each input table: a bad row never stops the run, it becomes a data issue.

Each table has an ordered list of named rules; a row reports the first rule it breaks (one issue row
per bad input row). A row also needs reference data: a price in effect for every asset it holds,
owes or trades (a balance row that is all zeros needs nothing), collateral tiers for every asset it
holds or trades, liability brackets for every asset it owes.
"""

from __future__ import annotations

import polars as pl

from crossmargin.policy import Policy
from crossmargin.quantities import debt, holding
from crossmargin.reference_data import BASE, COLLATERAL, LIABILITY, QUOTE
from crossmargin.schemas import MARGIN_MODES, SIDES
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
    """repeated_ids: the account_ids that appear more than once (account_sums.repeated)."""
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


def balance_rules() -> list[Rule]:
    holds, owes = holding() > 0, debt() > 0
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
        *_price_rules(asset, "", holds | owes, "held or owed"),
        *_table_rules(asset, "", holds, "held or owed", COLLATERAL),
        *_table_rules(asset, "", owes, "owed", LIABILITY),
    ]


def order_rules() -> list[Rule]:
    fields = ["order_id", "base_asset", "quote_asset", "side", *ORDER_NUMBERS]
    base, quote = pl.col("base_asset"), pl.col("quote_asset")
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
        *_price_rules(base, BASE, pl.lit(True), "order base"),
        *_table_rules(base, BASE, pl.lit(True), "order base", COLLATERAL),
        *_price_rules(quote, QUOTE, pl.lit(True), "order quote"),
        *_table_rules(quote, QUOTE, pl.lit(True), "order quote", COLLATERAL),
    ]


def switch_rules() -> list[Rule]:
    return [
        _null_account("mode_switches"),
        Rule("bad_value", "mode_switches", pl.col("switched_at").is_null(), pl.lit("switched_at is null")),
    ]
