"""Per-row checks of SPEC.md §4: a bad row never stops the run, it becomes a data issue.

Each table has an ordered list of named rules; a row reports the first rule it breaks (one issue row
per bad input row, in the order below). Group-level checks (duplicates, unknown accounts, overflow of
an account's sums) are in `engine.py`, next to the aggregates they read.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from crossmargin.policy import Policy
from crossmargin.quantities import debt, holding
from crossmargin.reference_data import COLLATERAL, LIABILITY
from crossmargin.schemas import DATA_ISSUES, MARGIN_MODES, SIDES, IssueCode

QUANTITIES = ["free", "locked", "borrowed", "interest"]
ORDER_NUMBERS = ["price", "remaining_qty"]


@dataclass(frozen=True)
class Rule:
    code: str
    table: str
    broken: pl.Expr
    detail: pl.Expr


def fmt(template: str, *args: pl.Expr) -> pl.Expr:
    """pl.format("..{}..", *args) as concat_str: polars 2.1's str_format panics ("assertion failed:
    i < self.len()") under the streaming engine on a filtered multi-chunk frame (e.g. a parquet
    input with several row groups), which crashed the run; concat_str does not."""
    parts = template.split("{}")
    assert len(parts) == len(args) + 1, template
    exprs: list[pl.Expr] = []
    for text, arg in zip(parts, [*args, None], strict=True):
        if text:
            exprs.append(pl.lit(text))
        if arg is not None:
            exprs.append(arg.cast(pl.String))
    return pl.concat_str(exprs)


def _s(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.String).fill_null("null")


def _any(cols: list[str], test) -> pl.Expr:
    return pl.any_horizontal([test(pl.col(c)) for c in cols])


def _values(cols: list[str]) -> pl.Expr:
    parts: list[pl.Expr] = []
    for i, c in enumerate(cols):
        parts += [pl.lit(("" if i == 0 else " ") + f"{c}="), _s(pl.col(c))]
    return pl.concat_str(parts)


def first_broken(rules: list[Rule]) -> pl.Expr:
    """UInt8 index of the first rule a row breaks, null for a good row."""
    chain = pl.when(rules[0].broken).then(pl.lit(0, pl.UInt8))
    for i, rule in enumerate(rules[1:], start=1):
        chain = chain.when(rule.broken).then(pl.lit(i, pl.UInt8))
    return chain


def _pick(rules: list[Rule], field: str) -> pl.Expr:
    idx = pl.col("_rule")
    chain = pl.when(idx == 0).then(getattr(rules[0], field))
    for i, rule in enumerate(rules[1:], start=1):
        chain = chain.when(idx == i).then(getattr(rule, field))
    return chain


def issue_rows(frame: pl.LazyFrame, rules: list[Rule]) -> pl.LazyFrame:
    """The first rule each row breaks, as data-issue rows (account_id, table, code, detail)."""
    return (
        frame.with_columns(first_broken(rules).alias("_rule"))
        .filter(pl.col("_rule").is_not_null())
        .select(
            "account_id",
            pl.col("_rule")
            .replace_strict({i: r.table for i, r in enumerate(rules)}, return_dtype=pl.String)
            .alias("table"),
            pl.col("_rule")
            .replace_strict({i: r.code for i, r in enumerate(rules)}, return_dtype=IssueCode)
            .alias("code"),
            _pick(rules, "detail").alias("detail"),
        )
    )


def empty_issues() -> pl.LazyFrame:
    return pl.LazyFrame(schema=DATA_ISSUES)


def grouped_issue(
    frame: pl.LazyFrame, broken: pl.Expr, table: str, code: str, detail: pl.Expr
) -> pl.LazyFrame:
    """Issue rows for a per-account (group-level) condition."""
    return frame.filter(broken).select(
        "account_id",
        pl.lit(table).alias("table"),
        pl.lit(code).cast(IssueCode).alias("code"),
        detail.alias("detail"),
    )


# ------------------------------------------------------------------ reference data an asset needs


def _asset_rules(
    asset: pl.Expr, suffix: str, need_price: pl.Expr, need_tiers: pl.Expr, role: str, prefix: str
) -> list[Rule]:
    """Price and tier-table rules for one asset a row touches (suffix: column suffix of its terms)."""
    price = pl.col(f"price_usdt{suffix}")
    tiers_table = "collateral_tiers" if prefix == COLLATERAL else "liability_brackets"
    missing_tiers = "missing_collateral_tiers" if prefix == COLLATERAL else "missing_liability_brackets"
    return [
        Rule(
            "missing_price",
            "prices",
            need_price & ~pl.col(f"price_present{suffix}").fill_null(False),
            fmt("no price for {} ({}) priced at or before as_of", asset, pl.lit(role)),
        ),
        Rule(
            "non_finite_value",
            "prices",
            need_price & ~price.is_finite(),
            fmt("price_usdt of {} is {}", asset, _s(price)),
        ),
        Rule(
            "negative_quantity",
            "prices",
            need_price & (price < 0),
            fmt("price_usdt of {} is {}", asset, _s(price)),
        ),
        Rule(
            missing_tiers,
            tiers_table,
            need_tiers & ~pl.col(f"{prefix}present{suffix}").fill_null(False),
            fmt("no {} for {} ({}) effective at as_of", pl.lit(tiers_table), asset, pl.lit(role)),
        ),
        Rule(
            "bad_tier_table",
            tiers_table,
            need_tiers & pl.col(f"{prefix}bad{suffix}").fill_null(False),
            fmt("{} of {}: {}", pl.lit(tiers_table), asset, pl.col(f"{prefix}problem{suffix}")),
        ),
    ]


# ------------------------------------------------------------------ per table


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
            fmt("margin_mode {} is not one of {}", _s(pl.col("margin_mode")), pl.lit("/".join(MARGIN_MODES))),
        ),
        Rule(
            "bad_value",
            "accounts",
            ~pl.col("classic_leverage").is_in(leverages).fill_null(False),
            fmt(
                "classic_leverage {} is not one of {}",
                _s(pl.col("classic_leverage")),
                pl.lit("/".join(map(str, leverages))),
            ),
        ),
        Rule(
            "bad_value",
            "accounts",
            pl.col("cross_margin_activated").is_null() | pl.col("pro_quiz_passed").is_null(),
            _values(["cross_margin_activated", "pro_quiz_passed"]),
        ),
        Rule(
            "bad_value",
            "accounts",
            ~pl.col("country").str.contains(r"^[A-Z]{2}$").fill_null(False),
            fmt("country {} is not an ISO 3166 alpha-2 code", _s(pl.col("country"))),
        ),
    ]


def balance_rules() -> list[Rule]:
    holds, owes = holding() > 0, debt() > 0
    return [
        _null_account("balances"),
        Rule("bad_value", "balances", pl.col("asset").is_null(), pl.lit("asset is null")),
        Rule(
            "bad_value", "balances", _any(QUANTITIES, lambda c: c.is_null()), _values(["asset", *QUANTITIES])
        ),
        Rule(
            "non_finite_value",
            "balances",
            _any(QUANTITIES, lambda c: ~c.is_finite()),
            _values(["asset", *QUANTITIES]),
        ),
        Rule(
            "negative_quantity",
            "balances",
            _any(QUANTITIES, lambda c: c < 0),
            _values(["asset", *QUANTITIES]),
        ),
        *_asset_rules(pl.col("asset"), "", holds | owes, holds, "held or owed", COLLATERAL),
        *_asset_rules(pl.col("asset"), "", pl.lit(False), owes, "owed", LIABILITY)[3:],
    ]


def order_rules() -> list[Rule]:
    fields = ["order_id", "base_asset", "quote_asset", "side", *ORDER_NUMBERS]
    return [
        _null_account("open_orders"),
        Rule("bad_value", "open_orders", _any(fields, lambda c: c.is_null()), _values(fields)),
        Rule(
            "bad_value",
            "open_orders",
            ~pl.col("side").is_in(SIDES),
            fmt("order {}: side {} is not BUY/SELL", pl.col("order_id"), pl.col("side")),
        ),
        Rule(
            "non_finite_value",
            "open_orders",
            _any(ORDER_NUMBERS, lambda c: ~c.is_finite()),
            _values(["order_id", *ORDER_NUMBERS]),
        ),
        Rule(
            "negative_quantity",
            "open_orders",
            _any(ORDER_NUMBERS, lambda c: c < 0),
            _values(["order_id", *ORDER_NUMBERS]),
        ),
        *_asset_rules(pl.col("base_asset"), "_base", pl.lit(True), pl.lit(True), "order base", COLLATERAL),
        *_asset_rules(pl.col("quote_asset"), "_quote", pl.lit(True), pl.lit(True), "order quote", COLLATERAL),
    ]


def switch_rules() -> list[Rule]:
    return [
        _null_account("mode_switches"),
        Rule("bad_value", "mode_switches", pl.col("switched_at").is_null(), pl.lit("switched_at is null")),
    ]
