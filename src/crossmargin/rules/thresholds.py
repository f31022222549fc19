"""Every comparison of a level with a threshold (docs/rules.md §4), in one place: `Condition`.

A condition is a measure (a level, or net equity: levels.MEASURES), a threshold per account (from
the policy in force, by the account's mode and `classic_leverage`), and a direction: it holds when the
measure is at or below the threshold (margin call, liquidation), or above it (the activation and
switching conditions). Each comparison is the level as output (one float64 division) against the
threshold's float64 value, in the direction written; nothing is rearranged.

The same conditions serve the decisions (`holds`, rules/decisions.py), the distances to thresholds
(the first price move at which a condition starts to hold, rules/distances.py) and the top-ups (the
least deposit after which it holds, rules/remediation.py): the kernels read each condition's measure
index, threshold and direction per account (`as_slot`).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from crossmargin.policy import Policy
from crossmargin.rules import levels
from crossmargin.rules.quantities import is_pro


def classic_threshold(policy: Policy, field: str) -> pl.Expr:
    """A Classic threshold of the account's own `classic_leverage` (initial_risk_ratio, margin_call,
    liquidation): a chain over the policy's few leverages (null for any other: such accounts are data
    issues)."""
    (first, value), *others = policy.classic_column(field).items()
    chain = pl.when(pl.col("classic_leverage") == first).then(pl.lit(value, pl.Float64))
    for leverage, value in others:
        chain = chain.when(pl.col("classic_leverage") == leverage).then(pl.lit(value, pl.Float64))
    return chain


def initial_risk_ratio(policy: Policy) -> pl.Expr:
    """The IRR of the account's classic_leverage: borrowing, switching back from Pro, repayment target."""
    return classic_threshold(policy, "initial_risk_ratio")


def _of_mode(policy: Policy, pro: float, classic_field: str) -> pl.Expr:
    return pl.when(is_pro()).then(pl.lit(pro, pl.Float64)).otherwise(classic_threshold(policy, classic_field))


def liquidation_threshold(policy: Policy) -> pl.Expr:
    """The liquidation threshold of the account's mode (Classic: of its leverage)."""
    return _of_mode(policy, policy.pro_liquidation, "liquidation")


def margin_call_threshold(policy: Policy) -> pl.Expr:
    """The margin-call threshold of the account's mode, at least its liquidation threshold: a liquidated
    account is in margin call too, whatever the policy's values (level <= max(mc, liq) is exactly
    level <= mc or level <= liq)."""
    return pl.max_horizontal(
        _of_mode(policy, policy.pro_margin_call, "margin_call"), liquidation_threshold(policy)
    )


@dataclass(frozen=True)
class Condition:
    """`measure` (a column of account_risk) at or below (`above=False`) / above `threshold`."""

    column: str  # the measure's column in account_risk
    measure: pl.Expr  # its index in levels.MEASURES, per account
    threshold: pl.Expr  # per account
    above: bool

    def holds(self) -> pl.Expr:
        value = pl.col(self.column)
        return value > self.threshold if self.above else value <= self.threshold

    def negated(self) -> Condition:
        """The condition that holds exactly when this one does not (for a non-NaN measure)."""
        return Condition(self.column, self.measure, self.threshold, not self.above)

    def where(self, accounts: pl.Expr) -> Condition:
        """The condition for the accounts `accounts` selects only (no measure for the others)."""
        return Condition(self.column, pl.when(accounts).then(self.measure), self.threshold, self.above)


@dataclass(frozen=True)
class Slot:
    """A condition followed along a path (kernels/search.py: "drop", "rise", "deposit", "cancel"): the
    result is the least point of the path at which it holds, per account."""

    name: str
    condition: Condition
    path: str

    def measure(self) -> pl.Expr:
        """The measure's index per account (-1: not followed for this account)."""
        return self.condition.measure.cast(pl.Int8).fill_null(-1).alias(f"{self.name}_measure")

    def threshold(self) -> pl.Expr:
        return (
            self.condition.threshold.cast(pl.Float64).fill_null(float("nan")).alias(f"{self.name}_threshold")
        )


def _measure(name: str) -> pl.Expr:
    return pl.lit(levels.measure_index(name), pl.Int8)


def liquidation(policy: Policy) -> Condition:
    """margin_level <= the liquidation threshold of the account's mode."""
    return Condition(
        "margin_level", levels.margin_level_measure(policy), liquidation_threshold(policy), False
    )


def margin_call(policy: Policy) -> Condition:
    """margin_level <= the margin-call threshold of the account's mode (true when liquidated)."""
    return Condition(
        "margin_level", levels.margin_level_measure(policy), margin_call_threshold(policy), False
    )


def pro_level_after_switch(policy: Policy) -> Condition:
    """New policy, Pro eligibility: pro_margin_level_new > 2."""
    name = "pro_margin_level_new"
    return Condition(name, _measure(name), pl.lit(policy.new_min_pro_margin_level), True)


def pro_net_equity(policy: Policy) -> Condition:
    """New policy, Pro eligibility: net_equity_usdt > 5,000 (the "wallet balance")."""
    name = "net_equity_usdt"
    return Condition(name, _measure(name), pl.lit(policy.new_min_net_equity_usdt), True)


def pro_classic_collateral_level(policy: Policy) -> Condition:
    """Old policy, Pro eligibility: classic_collateral_margin_level > 1.25."""
    name = "classic_collateral_margin_level"
    return Condition(name, _measure(name), pl.lit(policy.old_min_classic_collateral_margin_level), True)


def borrow_collateral_level(policy: Policy) -> Condition:
    """A Classic account's borrowing is blocked when classic_collateral_margin_level <= the IRR of its
    classic_leverage."""
    name = "classic_collateral_margin_level"
    return Condition(name, _measure(name), initial_risk_ratio(policy), False)


def switch_level(policy: Policy) -> Condition:
    """Switching back to Classic: (new) classic_collateral_margin_level, (old) classic_margin_level, > the
    IRR of the account's classic_leverage."""
    name = "classic_collateral_margin_level" if policy.new_formula else "classic_margin_level"
    return Condition(name, _measure(name), initial_risk_ratio(policy), True)
