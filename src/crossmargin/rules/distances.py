"""Distance to thresholds (docs/rules.md §8.2): four columns of account_risk.

`liquidation_drop` is the least d in (0, 1] such that with every non-stable price times (1 − d) the
account's liquidation condition holds (margin_level at or below its liquidation threshold);
`liquidation_rise` the least u in (0, 10] for a move of (1 + u); `margin_call_drop` and
`margin_call_rise` the same for the margin-call condition. 0 when the condition holds already, null when
it holds nowhere on the way. The conditions are those of the decisions (rules/thresholds.py); the
kernels of kernels/search.py follow them along the moves, valuing the account with the one valuation.
"""

from __future__ import annotations

import polars as pl

from crossmargin.policy import Policy
from crossmargin.rules import thresholds
from crossmargin.rules.thresholds import Slot

DISTANCE_COLUMNS = ["liquidation_drop", "liquidation_rise", "margin_call_drop", "margin_call_rise"]


def slots(policy: Policy) -> list[Slot]:
    """The four distances as conditions followed along a drop or a rise of the non-stable prices."""
    liquidation, margin_call = thresholds.liquidation(policy), thresholds.margin_call(policy)
    return [
        Slot("liquidation_drop", liquidation, "drop"),
        Slot("liquidation_rise", liquidation, "rise"),
        Slot("margin_call_drop", margin_call, "drop"),
        Slot("margin_call_rise", margin_call, "rise"),
    ]


def columns(policy: Policy) -> list[pl.Expr]:
    """The four columns from the found slots (NaN: the condition holds nowhere on the way: null)."""
    return [pl.col(s.name).fill_nan(None).alias(s.name) for s in slots(policy)]
