"""One schema per boundary table: the seven input tables (docs/rules.md §6) and the three outputs (§7).

Input schemas say what each column must be after loading; `inputs.py` checks files against them.
Output schemas are the exact column order and dtypes written by `outputs.py`.
"""

from __future__ import annotations

import polars as pl

from crossmargin.validation.countries import ISO_COUNTRIES

UTC_TS = pl.Datetime("us", "UTC")

MARGIN_MODES = ["classic", "pro"]
SIDES = ["BUY", "SELL"]

# ---------------------------------------------------------------- inputs (docs/rules.md §6)
INPUT_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "accounts": {
        "account_id": pl.Int64(),
        "margin_mode": pl.String(),
        "classic_leverage": pl.Int64(),
        "cross_margin_activated": pl.Boolean(),
        "pro_quiz_passed": pl.Boolean(),
        "questionnaire_completed_at": UTC_TS,
        "terms_agreed_at": UTC_TS,
        "country": pl.String(),
    },
    "balances": {
        "account_id": pl.Int64(),
        "asset": pl.String(),
        "free": pl.Float64(),
        "locked": pl.Float64(),
        "borrowed": pl.Float64(),
        "interest": pl.Float64(),
    },
    "prices": {
        "asset": pl.String(),
        "price_usdt": pl.Float64(),
        "priced_at": UTC_TS,
    },
    "open_orders": {
        "account_id": pl.Int64(),
        "order_id": pl.Int64(),
        "base_asset": pl.String(),
        "quote_asset": pl.String(),
        "side": pl.String(),
        "price": pl.Float64(),
        "remaining_qty": pl.Float64(),
    },
    "mode_switches": {
        "account_id": pl.Int64(),
        "switched_at": UTC_TS,
    },
    "collateral_tiers": {
        "asset": pl.String(),
        "effective_from": UTC_TS,
        "lower_usdt": pl.Float64(),
        "upper_usdt": pl.Float64(),
        "collateral_ratio": pl.Float64(),
    },
    "liability_brackets": {
        "asset": pl.String(),
        "effective_from": UTC_TS,
        "lower_usdt": pl.Float64(),
        "upper_usdt": pl.Float64(),
        "leverage": pl.Float64(),
        "maintenance_margin_rate": pl.Float64(),
        "initial_margin_rate": pl.Float64(),
    },
}
TABLES = list(INPUT_SCHEMAS)

# ---------------------------------------------------------------- outputs (docs/rules.md §7)
ACTIONS = [
    "LIQUIDATION",
    "MARGIN_CALL",
    "BORROW_BLOCKED",
    "MIGRATE_TO_CLASSIC",
    "PARTIAL_REPAYMENT",
    "ELIGIBLE_FOR_PRO",
]
BORROW_BLOCKED_REASONS = ["collateral_below_initial_risk_ratio", "pro_not_compliant", "no_available_margin"]
ISSUE_CODES = [
    "missing_price",
    "negative_quantity",
    "duplicate_row",
    "unknown_account",
    "unknown_mode",
    "bad_value",
    "missing_collateral_tiers",
    "missing_liability_brackets",
    "bad_tier_table",
    "non_finite_value",
    "ambiguous_price",
    "stale_price",
]
# Names of the Pro activation conditions (docs/rules.md §4 eligible_for_pro), in the order they are listed.
PRO_CONDITIONS_NEW = [
    "cross_margin_activated",
    "pro_quiz_passed",
    "terms_agreed",
    "pro_margin_level_after_switch",
    "net_equity",
    "country_not_restricted",
    "switches_left_today",
]
PRO_CONDITIONS_OLD = [
    "cross_margin_activated",
    "pro_quiz_passed",
    "country_not_restricted",
    "classic_collateral_margin_level",
    "switches_left_today",
]
NOT_CLASSIC = "already_pro"  # the one reason listed for a Pro account (eligible_for_pro is false for Pro)

MarginMode = pl.Enum(MARGIN_MODES)
Action = pl.Enum(ACTIONS)
BorrowBlockedReason = pl.Enum(BORROW_BLOCKED_REASONS)
IssueCode = pl.Enum(ISSUE_CODES)
# Closed sets written as enums (dictionary-encoded in parquet: read as plain strings by DuckDB; 0.5 s
# less to write than strings at 10M accounts): a validated country is an officially assigned
# ISO 3166-1 alpha-2 code, and a reason is a condition name.
Country = pl.Enum(ISO_COUNTRIES)
ProCondition = pl.Enum(list(dict.fromkeys([*PRO_CONDITIONS_NEW, *PRO_CONDITIONS_OLD, NOT_CLASSIC])))

QUANTITY_COLUMNS = [
    "total_asset_usdt",
    "total_liability_usdt",
    "collateral_usdt",
    "net_equity_usdt",
    "net_collateral_usdt",
    "maintenance_margin_usdt",
    "initial_margin_usdt",
    "open_order_loss_usdt",
]
LEVEL_COLUMNS = [
    "classic_margin_level",
    "classic_collateral_margin_level",
    "pro_margin_level_old",
    "pro_margin_level_new",
    "pro_margin_level",
    "margin_level",
]

# the denominator of each level (a level is +inf exactly when its denominator is 0)
LEVEL_DENOMINATORS = {
    "classic_margin_level": "total_liability_usdt",
    "classic_collateral_margin_level": "total_liability_usdt",
    "pro_margin_level_old": "maintenance_margin_usdt",
    "pro_margin_level_new": "maintenance_margin_usdt",
}
# every float of account_risk that must be a finite number (levels: unless +inf by the rule above);
# pro_margin_level and margin_level are copies of the levels above
FLOAT_OUTPUTS = [
    *QUANTITY_COLUMNS,
    *LEVEL_DENOMINATORS,
    "pro_available_margin_usdt",
    "partial_repayment_usdt",
    "bad_debt_usdt",
]

ACCOUNT_RISK: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "margin_mode": MarginMode,
    "classic_leverage": pl.Int64(),
    "country": Country,
    **{c: pl.Float64() for c in QUANTITY_COLUMNS},
    **{c: pl.Float64() for c in LEVEL_COLUMNS},
    "pro_available_margin_usdt": pl.Float64(),
    "pro_compliant": pl.Boolean(),
    "margin_call": pl.Boolean(),
    "liquidation": pl.Boolean(),
    "borrow_blocked": pl.Boolean(),
    "borrow_blocked_reason": BorrowBlockedReason,
    "due_for_migration": pl.Boolean(),
    "migrate_now": pl.Boolean(),
    "partial_repayment_usdt": pl.Float64(),
    "bad_debt_usdt": pl.Float64(),
    "switches_left_today": pl.Int64(),
    "eligible_for_pro": pl.Boolean(),
    "pro_ineligible_reasons": pl.List(ProCondition),
    "can_switch_to_classic": pl.Boolean(),
    # distances to thresholds under a uniform move of the non-stable prices (docs/rules.md §8)
    "liquidation_drop": pl.Float64(),
    "liquidation_rise": pl.Float64(),
    "margin_call_drop": pl.Float64(),
    "margin_call_rise": pl.Float64(),
    # what it would take (docs/rules.md §9): the least USDT deposit, or the fewest orders to cancel
    "margin_call_topup_usdt": pl.Float64(),
    "pro_topup_usdt": pl.Float64(),
    "classic_switch_topup_usdt": pl.Float64(),
    "pro_orders_to_cancel": pl.Int64(),
    "as_of": UTC_TS,
    "policy_version": pl.String(),
}

ACTIONS_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "action": Action,
    "reason": pl.String(),
    "amount_usdt": pl.Float64(),
    "policy_version": pl.String(),
}

# issue rows inside the engine: `asset` names the reference-data asset a price / tier issue is about
ISSUE_COLUMNS: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "table": pl.String(),
    "code": IssueCode,
    "detail": pl.String(),
    "asset": pl.String(),
}

DATA_ISSUES: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "table": pl.String(),
    "code": IssueCode,
    "detail": pl.String(),
    "policy_version": pl.String(),
}

# per asset: a price problem and how many accounts it took out of the outputs (summary, manifest)
PRICE_PROBLEMS: dict[str, pl.DataType] = {
    "asset": pl.String(),
    "code": IssueCode,
    "detail": pl.String(),
    "accounts": pl.Int64(),
}
