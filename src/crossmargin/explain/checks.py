"""What each output of account_risk is made of, for one account: its formula, its comparisons, its rule.

An `Item` explains one output column: a formula (a template over columns, filled in with the account's
numbers; for a level, beside the numerator and denominator the engine's own level function gives), and
the `Check`s it is decided by (a measure compared with a threshold, or a fact the rule reads). Every
comparison is the engine's own expression (rules/thresholds.py `Condition`, rules/decisions.py):
nothing here decides anything; the explanation reads, per account, the measure, the threshold and
whether each check holds, from one polars select over the accounts explained. The docs/rules.md
section of each is named by its anchor.

Sections: `quantity_items` (net equity and net collateral; the sums come from the rows, explain/rows.py),
`level_items`, `decision_items`, `distance_items`, `topup_items`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from crossmargin.policy import Policy
from crossmargin.rules import decisions, distances, levels, remediation, thresholds
from crossmargin.rules.quantities import COLUMNS, is_pro
from crossmargin.rules.thresholds import Condition, classic_threshold, initial_risk_ratio

RULES = "docs/rules.md"
TOPUPS_SECTION = "remediation"  # docs/rules.md's section on the top-ups


@dataclass(frozen=True)
class Check:
    """One comparison (or fact) an output is decided by: `holds` is the engine's expression."""

    name: str
    holds: pl.Expr
    measure: str | None = None  # the column compared (or read)
    comparison: str = ""  # as docs/rules.md writes it
    threshold: Any = None  # a polars expression (per account) or a constant
    note: str = ""  # which accounts it applies to, when not all
    followed: pl.Expr | None = None  # for a path: whether the engine follows it for this account

    @classmethod
    def of(cls, name: str, condition: Condition, followed: pl.Expr | None = None) -> Check:
        comparison = ">" if condition.above else "≤"
        return cls(
            name, condition.holds(), condition.column, comparison, condition.threshold, followed=followed
        )


@dataclass(frozen=True)
class Item:
    """One output explained: its formula, its checks, its rule and its docs/rules.md section."""

    output: str
    rule: str
    section: str
    formula: str | dict[str, str] | None = None  # template over columns; by margin_mode if a dict
    parts: tuple[pl.Expr, pl.Expr] | None = None  # (numerator, denominator) of a level, the engine's
    checks: list[Check] = field(default_factory=list)
    headline: int | None = None  # the check whose threshold is the output's (default: a lone check's)


def section(anchor: str) -> str:
    return f"{RULES}#{anchor}"


# ------------------------------------------------------------------ quantities and levels

LEVEL_FORMULAS = {
    "classic_margin_level": "{total_asset_usdt} / {total_liability_usdt}",
    "classic_collateral_margin_level": "{collateral_usdt} / {total_liability_usdt}",
    "pro_margin_level_old": "{net_equity_usdt} / {maintenance_margin_usdt}",
    "pro_margin_level_new": "({net_collateral_usdt} − {open_order_loss_usdt}) / {maintenance_margin_usdt}",
}


def quantity_items() -> list[Item]:
    """The account's quantities made of its sums."""
    return [
        Item("net_equity_usdt", "total_asset − total_liability", section("row-quantities"),
             "{total_asset_usdt} − {total_liability_usdt}"),
        Item("net_collateral_usdt", "collateral − total_liability", section("row-quantities"),
             "{collateral_usdt} − {total_liability_usdt}"),
    ]  # fmt: skip


def level_items(policy: Policy) -> list[Item]:
    """The levels, each one division (a zero denominator gives +inf), and the Pro available margin."""
    items = [
        Item(name, "one float64 division; +inf when the denominator is 0", section("levels"),
             LEVEL_FORMULAS[name], level(COLUMNS))
        for name, level in levels.LEVELS.items()
    ]  # fmt: skip
    classic, pro = levels.judged_by(policy)
    free = "{net_collateral_usdt} − {open_order_loss_usdt} − {initial_margin_usdt}"
    if not policy.new_formula:
        free = "{net_collateral_usdt} − {initial_margin_usdt}"
    return [
        *items,
        Item("pro_margin_level", "the Pro formula in force at as_of", section("levels"),
             "{" + levels.pro_formula(policy) + "}"),
        Item("margin_level", "classic_margin_level for Classic accounts, pro_margin_level for Pro",
             section("levels"), {"classic": "{" + classic + "}", "pro": "{" + pro + "}"}),
        Item("pro_available_margin_usdt", "what a Pro account could still borrow against",
             section("pro-available-margin"), f"max({free}, 0)"),
    ]  # fmt: skip


# ------------------------------------------------------------------ decisions


def _compliance(policy: Policy) -> Item:
    span = f"[{_iso(policy.compliance_required_from)}, as_of]"
    stamps = decisions.compliance_stamps(policy).items()
    checks = [Check(c.split("_")[0], holds, c, "in", span) for c, holds in stamps]  # questionnaire, terms
    rule = "questionnaire_completed_at and terms_agreed_at both set, ≥ the compliance date and ≤ as_of"
    return Item("pro_compliant", rule, section("compliance"), checks=checks)


def _borrow_checks(policy: Policy) -> list[Check]:
    """The reasons, in the order they are tried (the first that applies is the reason)."""
    collateral = thresholds.borrow_collateral_level(policy)
    date = policy.noncompliant_borrow_disabled_from
    shown = {
        "collateral_below_initial_risk_ratio": (collateral.column, "≤", collateral.threshold, "Classic"),
        "pro_not_compliant": ("pro_compliant", "is", False, f"Pro, from {_iso(date)}"),
        "no_available_margin": ("pro_available_margin_usdt", "≤", 0.0, "Pro"),
    }
    return [Check(r, applies, *shown[r]) for r, applies in decisions.borrow_block_reasons(policy).items()]


def _pro_checks(policy: Policy) -> list[Check]:
    """The conditions of Pro eligibility in force, with the engine's expression of each."""
    level = {
        "pro_margin_level_after_switch": thresholds.pro_level_after_switch(policy),
        "net_equity": thresholds.pro_net_equity(policy),
        "classic_collateral_margin_level": thresholds.pro_classic_collateral_level(policy),
    }
    shown = {
        "cross_margin_activated": ("cross_margin_activated", "is", True),
        "pro_quiz_passed": ("pro_quiz_passed", "is", True),
        "terms_agreed": ("terms_agreed_at", "set and ≤", _iso(policy.as_of)),
        "country_not_restricted": ("country", "not in", list(policy.restricted_jurisdictions)),
        "switches_left_today": ("switches_left_today", ">", 0),
    }
    checks = []
    for name, holds in decisions.pro_conditions(policy).items():
        base = Check.of(name, level[name]) if name in level else Check(name, holds, *shown[name])
        checks.append(Check(name, holds, base.measure, base.comparison, base.threshold))
    return checks


def _flag(name: str, column: str, value: bool = True) -> Check:
    """A boolean column the rule reads as it is (or negated)."""
    return Check(name, pl.col(column) if value else ~pl.col(column), column, "is", value)


def _mode(mode: str) -> Check:
    return Check(mode, is_pro() if mode == "pro" else ~is_pro(), "margin_mode", "is", mode)


def _date_check(date: dt.datetime, holds: bool) -> Check:
    return Check(f"as_of ≥ {_iso(date)}", pl.lit(holds), "as_of", "≥", _iso(date))


def _margin_items(policy: Policy) -> list[Item]:
    liquidation = Check.of("liquidation threshold", thresholds.liquidation(policy))
    margin_call = Check.of("margin-call threshold", thresholds.margin_call(policy))
    return [
        Item("liquidation", "margin_level ≤ the liquidation threshold of the account's mode",
             section("margin-call"), checks=[liquidation]),
        Item("margin_call", "margin_level ≤ the margin-call threshold of its mode (true when liquidated)",
             section("margin-call"), checks=[margin_call]),
    ]  # fmt: skip


def _borrow_items(policy: Policy) -> list[Item]:
    reason = "the first reason that applies, in this order (null: none)"
    return [
        Item("borrow_blocked_reason", reason, section("borrow-blocked"), checks=_borrow_checks(policy)),
        Item("borrow_blocked", "borrow_blocked_reason is not null", section("borrow-blocked")),
    ]


def _migration_items(policy: Policy) -> list[Item]:
    required = _date_check(policy.compliance_required_from, policy.compliance_required)
    switched = _date_check(policy.noncompliant_switched_to_classic_from, policy.noncompliant_switched)
    due = [_mode("pro"), _flag("not compliant", "pro_compliant", False), required]
    return [
        Item("due_for_migration", "Pro, not compliant, as_of ≥ the compliance date", section("migration"),
             checks=due),
        Item("migrate_now", "due_for_migration and as_of ≥ the switch date", section("migration"),
             checks=[_flag("due_for_migration", "due_for_migration"), switched]),
    ]  # fmt: skip


def _repayment_item(policy: Policy) -> Item:
    at_risk = Check("classic_margin_level < Classic margin call", decisions.repayment_at_risk(policy),
                    "classic_margin_level", "<", classic_threshold(policy, "margin_call"))  # fmt: skip
    rule = "when both checks hold: x clipped to [0, min(A, L)], T the IRR of classic_leverage; else 0"
    formula = "({repayment_target}·{total_liability_usdt} − {total_asset_usdt}) / ({repayment_target} − 1)"
    checks = [_flag("due_for_migration", "due_for_migration"), at_risk]
    return Item(
        "partial_repayment_usdt", rule, section("partial-repayment"), formula, checks=checks, headline=1
    )


def _count_items() -> list[Item]:
    switches = "switches allowed per UTC day − switches in [start of as_of's UTC day, as_of], at least 0"
    return [
        Item("bad_debt_usdt", "max(L − A, 0)", section("bad-debt"),
             "max({total_liability_usdt} − {total_asset_usdt}, 0)"),
        Item("switches_left_today", switches, section("switches"),
             "max({max_switches_per_utc_day} − {switches_today}, 0)"),
    ]  # fmt: skip


def _switch_items(policy: Policy) -> list[Item]:
    eligible = [_mode("classic"), *_pro_checks(policy)]
    level = Check.of("switch level", thresholds.switch_level(policy))
    left = Check("switches_left_today", pl.col("switches_left_today") > 0, "switches_left_today", ">", 0)
    return [
        Item("eligible_for_pro", "a Classic account meeting every condition in force (false for Pro)",
             section("eligible-for-pro"), checks=eligible),
        Item("pro_ineligible_reasons", "the conditions that fail (Pro: already_pro)", section("eligible-for-pro")),
        Item("can_switch_to_classic", "Pro, its level above the IRR of its classic_leverage, a switch left",
             section("can-switch-to-classic"), checks=[_mode("pro"), level, left], headline=1),
    ]  # fmt: skip


def decision_items(policy: Policy) -> list[Item]:
    """Every decision of docs/rules.md §4, in its order, with its checks."""
    return [
        _compliance(policy),
        *_margin_items(policy),
        *_borrow_items(policy),
        *_migration_items(policy),
        _repayment_item(policy),
        *_count_items(),
        *_switch_items(policy),
    ]


# ------------------------------------------------------------------ distances and top-ups

PATH_RULES = {
    "drop": "the least d in (0, 1] at which, with every non-stable price × (1 − d), {check}",
    "rise": "the least u in (0, 10] at which, with every non-stable price × (1 + u), {check}",
    "deposit": "the least USDT deposit d after which {check} (an infimum: if it fails at d, more than d)",
    "cancel": "the fewest open orders to cancel, largest loss first, after which {check}",
}
PATH_ENDS = {
    "drop": "0 when it holds already; null when no drop does it",
    "rise": "0 when it holds already; null when no rise does it",
    "deposit": "0 when it holds already; null when no deposit is enough (or not for this account)",
    "cancel": "0 when it holds already; null when cancelling every order is not enough (or not followed)",
}


def _path_rule(slots: list[thresholds.Slot]) -> str:
    said = " and ".join(
        f"{s.condition.column} {'>' if s.condition.above else '≤'} its threshold" for s in slots
    )
    return f"{PATH_RULES[slots[0].path].format(check=said)}; {PATH_ENDS[slots[0].path]}"


NOW = "now"  # a path's condition at its start: the prices in effect, no deposit, no cancellation


def _followed(slot: thresholds.Slot) -> pl.Expr:
    return slot.measure() >= 0


def distance_items(policy: Policy) -> list[Item]:
    """The four distances to thresholds: a condition followed along a uniform price move."""
    return [
        Item(
            s.name,
            _path_rule([s]),
            section("distances"),
            checks=[Check.of(s.name, s.condition, _followed(s))],
        )
        for s in distances.slots(policy)
    ]


def topup_items(policy: Policy) -> list[Item]:
    """What it would take: each top-up's conditions followed along a deposit or a cancellation."""
    return [
        Item(column, _path_rule(slots), section(TOPUPS_SECTION),
             checks=[Check.of(NOW, s.condition, _followed(s)) for s in slots])
        for column, slots in remediation.column_slots(policy).items()
    ]  # fmt: skip


# ------------------------------------------------------------------ per account


def constants(policy: Policy) -> dict[str, pl.Expr]:
    """Named values the formulas read besides the output columns: the policy's, and the account's
    count of switches today (a column of the account pass)."""
    return {
        "repayment_target": initial_risk_ratio(policy),
        "max_switches_per_utc_day": pl.lit(policy.max_switches_per_utc_day),
        "switches_today": pl.col("switches_today"),
    }


def evaluate(frame: pl.DataFrame, items: list[Item], policy: Policy) -> pl.DataFrame:
    """Per account of `frame` (the engine's computed accounts), in its row order: every check's
    `holds`, measure and threshold, every level's numerator and denominator, and the constants."""
    frame = frame.with_columns(pl.lit(policy.as_of).alias("as_of"))
    exprs = [pl.col("account_id"), *(e.alias(name) for name, e in constants(policy).items())]
    for item in items:
        if item.parts is not None:
            exprs += [
                item.parts[0].alias(f"{item.output}/numerator"),
                item.parts[1].alias(f"{item.output}/denominator"),
            ]
        for j, check in enumerate(item.checks):
            key = f"{item.output}/{j}"
            exprs.append(check.holds.alias(f"{key}/holds"))
            if check.measure is not None and check.measure in frame.columns:
                exprs.append(pl.col(check.measure).alias(f"{key}/measured"))
            if isinstance(check.threshold, pl.Expr):
                exprs.append(check.threshold.alias(f"{key}/threshold"))
            if check.followed is not None:
                exprs.append(check.followed.alias(f"{key}/followed"))
    return frame.select(exprs)


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")
