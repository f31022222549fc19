"""What it would take (docs/rules.md §9): the least USDT deposit, or the fewest open orders to cancel,
after which a condition that blocks an account holds.

- `margin_call_topup_usdt`: out of margin call (every account);
- `pro_topup_usdt`: the conditions of Pro eligibility that money changes (Classic accounts): under the
  new policy pro_margin_level_new > 2 and net equity > 5,000 (the larger of the two top-ups: both only
  grow with a deposit), under the old one the Classic collateral level > 1.25;
- `classic_switch_topup_usdt`: the level condition of switching back to Classic (Pro accounts);
- `pro_orders_to_cancel`: Classic accounts under the new policy, pro_margin_level_new > 2 by cancelling
  open orders, largest loss first.
Each is a condition of rules/thresholds.py followed along a deposit or a cancellation
(kernels/search.py): 0 when it holds already; null when no deposit (no count) is enough.
"""

from __future__ import annotations

import polars as pl

from crossmargin.policy import Policy
from crossmargin.rules import thresholds
from crossmargin.rules.quantities import is_classic, is_pro
from crossmargin.rules.thresholds import Slot

REMEDIATION_COLUMNS = [
    "margin_call_topup_usdt",
    "pro_topup_usdt",
    "classic_switch_topup_usdt",
    "pro_orders_to_cancel",
]
_PRO_LEVEL, _PRO_EQUITY = "_pro_topup_level", "_pro_topup_net_equity"


def slots(policy: Policy) -> list[Slot]:
    """The conditions followed along a deposit or a cancellation, for the accounts they apply to."""
    classic, pro = is_classic(), is_pro()
    if policy.new_formula:
        level = thresholds.pro_level_after_switch(policy).where(classic)
        equity = thresholds.pro_net_equity(policy).where(classic)
        cancel = level
    else:
        level = thresholds.pro_classic_collateral_level(policy).where(classic)
        equity = cancel = level.where(pl.lit(False))  # not followed under the old policy
    return [
        Slot("margin_call_topup_usdt", thresholds.margin_call(policy).negated(), "deposit"),
        Slot(_PRO_LEVEL, level, "deposit"),
        Slot(_PRO_EQUITY, equity, "deposit"),
        Slot("classic_switch_topup_usdt", thresholds.switch_level(policy).where(pro), "deposit"),
        Slot("pro_orders_to_cancel", cancel, "cancel"),
    ]


def column_slots(policy: Policy) -> dict[str, list[Slot]]:
    """The slots each column of REMEDIATION_COLUMNS is read off, in `slots` order (pro_topup_usdt: the
    two conditions of Pro eligibility that money changes)."""
    found: dict[str, list[Slot]] = {}
    for s in slots(policy):
        found.setdefault("pro_topup_usdt" if s.name in (_PRO_LEVEL, _PRO_EQUITY) else s.name, []).append(s)
    return found


def columns(policy: Policy) -> list[pl.Expr]:
    """The four columns from the found slots (NaN: no deposit / count is enough, or not followed)."""

    def found(name: str) -> pl.Expr:
        return pl.col(name).fill_nan(None)

    pro_topup = found(_PRO_LEVEL)
    if policy.new_formula:  # both conditions must hold: the binding one; null if either cannot
        both = found(_PRO_LEVEL).is_not_null() & found(_PRO_EQUITY).is_not_null()
        pro_topup = pl.when(both).then(pl.max_horizontal(found(_PRO_LEVEL), found(_PRO_EQUITY)))
    return [
        found("margin_call_topup_usdt").alias("margin_call_topup_usdt"),
        pro_topup.alias("pro_topup_usdt"),
        found("classic_switch_topup_usdt").alias("classic_switch_topup_usdt"),
        found("pro_orders_to_cancel").cast(pl.Int64).alias("pro_orders_to_cancel"),
    ]
