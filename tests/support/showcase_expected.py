"""The showcase's expected results at 2025-01-21T10:00:00Z (the golden test's oracle), keyed by
account id; the showcase itself (input rows only) is crossmargin.synthetic.showcase.

`expected(s)` merges an account's EXPECT entry with the defaults (every flag false / null / 0, 5
switches left, Pro accounts `["already_pro"]`); `expected_actions(s)` derives its actions rows;
`showcase_markdown()` renders the table of data/sample/README.md from both.
"""

from __future__ import annotations

from typing import Any

from crossmargin.synthetic.showcase import SHOWCASE, Showcase

CIRR = "collateral_below_initial_risk_ratio"
PNC = "pro_not_compliant"
NAM = "no_available_margin"
NE = "net_equity"
PML = "pro_margin_level_after_switch"
NONCOMPLIANT = {"due_for_migration": True, "migrate_now": True, "borrow_blocked_reason": PNC}

# account_id -> expected outputs that differ from the defaults of `expected`
EXPECT: dict[int, dict[str, Any]] = {
    1: {
        "margin_call": True,
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [NE],
        "margin_level": 1.3,
        "margin_call_topup_usdt": 0.0,  # exactly at 1.3: any deposit lifts it
    },
    2: {"borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE]},
    3: {
        "liquidation": True,
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [PML, NE],
        "margin_level": 1.1,
        "pro_margin_level_new": 2.0,
    },
    4: {
        "margin_call": True,
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [NE],
        "margin_call_topup_usdt": 199.0,  # 1.3 · 1000 − 1101
    },
    5: {
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [NE],
        "classic_collateral_margin_level": 1.5,
    },
    6: {"pro_ineligible_reasons": [NE]},
    7: {
        "margin_call": True,
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [NE],
        "margin_level": 1.15,
        "margin_call_topup_usdt": 0.0,
    },
    8: {"borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE]},
    9: {
        "liquidation": True,
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [PML, NE],
        "margin_level": 1.1,
    },
    10: {
        "margin_call": True,
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [NE],
        "margin_call_topup_usdt": 49.0,  # 1.15 · 1000 − 1101
    },
    11: {
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [NE],
        "classic_collateral_margin_level": 1.25,
    },
    12: {"pro_ineligible_reasons": [NE]},
    13: {
        "liquidation": True,
        "borrow_blocked_reason": CIRR,
        "bad_debt_usdt": 100.0,
        "pro_ineligible_reasons": [PML, NE],
    },
    14: {
        "margin_call": True,
        "borrow_blocked_reason": NAM,
        "margin_level": 1.5,
        "margin_call_topup_usdt": 0.0,
    },
    15: {"borrow_blocked_reason": NAM},
    16: {"liquidation": True, "borrow_blocked_reason": NAM, "margin_level": 1.0},
    17: {"margin_call": True, "borrow_blocked_reason": NAM, "margin_call_topup_usdt": 24.0},  # 1.5 · 50 − 51
    18: {"borrow_blocked_reason": NAM, "pro_available_margin_usdt": 0.0},
    20: {"classic_collateral_margin_level": 1.5},
    21: {"can_switch_to_classic": True},
    22: {"classic_collateral_margin_level": 1.25},
    23: {"can_switch_to_classic": True},
    24: {"can_switch_to_classic": True, "margin_level": float("inf")},
    25: {"switches_left_today": 0},
    26: {**NONCOMPLIANT, "can_switch_to_classic": True},
    27: {**NONCOMPLIANT, "partial_repayment_usdt": 600.0},
    28: {**NONCOMPLIANT, "partial_repayment_usdt": 600.0},
    29: NONCOMPLIANT,
    30: {**NONCOMPLIANT, "partial_repayment_usdt": 402.0},
    31: {**NONCOMPLIANT, "liquidation": True, "partial_repayment_usdt": 500.0, "bad_debt_usdt": 500.0},
    32: {"can_switch_to_classic": True},
    33: {**NONCOMPLIANT, "can_switch_to_classic": True},
    34: {"eligible_for_pro": True},
    35: {"pro_ineligible_reasons": [NE], "net_equity_usdt": 5000.0},
    36: {"eligible_for_pro": True},
    37: {
        "borrow_blocked_reason": CIRR,
        "pro_ineligible_reasons": [PML],
        "pro_margin_level_new": 2.0,
        "collateral_usdt": 33000.0,
    },
    38: {"borrow_blocked_reason": CIRR, "eligible_for_pro": True},
    39: {"pro_ineligible_reasons": ["cross_margin_activated"]},
    40: {"pro_ineligible_reasons": ["pro_quiz_passed"]},
    41: {"pro_ineligible_reasons": ["terms_agreed"]},
    42: {"pro_ineligible_reasons": ["terms_agreed"]},
    43: {"eligible_for_pro": True},
    44: {"pro_ineligible_reasons": ["country_not_restricted"]},
    45: {"pro_ineligible_reasons": ["country_not_restricted"]},
    46: {"pro_ineligible_reasons": ["country_not_restricted"]},
    47: {"switches_left_today": 0, "pro_ineligible_reasons": ["switches_left_today"]},
    48: {"switches_left_today": 1, "eligible_for_pro": True},
    49: {"switches_left_today": 0, "pro_ineligible_reasons": ["switches_left_today"]},
    50: {
        "switches_left_today": 0,
        "pro_ineligible_reasons": [
            "cross_margin_activated",
            "pro_quiz_passed",
            "terms_agreed",
            NE,
            "country_not_restricted",
            "switches_left_today",
        ],
    },
    51: {"eligible_for_pro": True, "total_liability_usdt": 1.0, "margin_level": 10000.0},
    52: {
        "pro_ineligible_reasons": [NE],
        "open_order_loss_usdt": 52.0,
        "pro_margin_level_new": float("inf"),
        "margin_level": float("inf"),
    },
    53: {"pro_ineligible_reasons": [NE], "total_asset_usdt": 0.0, "margin_level": float("inf")},
    54: {
        "margin_call": True,
        "borrow_blocked_reason": NAM,
        "open_order_loss_usdt": 26.0,
        "pro_margin_level_old": 2.0,
        "margin_call_topup_usdt": 1.0,  # 1.5 · 50 − (1100 − 1000 − 26)
    },
    55: {"eligible_for_pro": True, "open_order_loss_usdt": 135.6},
    56: {"eligible_for_pro": True, "total_asset_usdt": 104000.0, "collateral_usdt": 98800.0},
    57: {"eligible_for_pro": True, "collateral_usdt": 19_550_000.0},
    58: {
        "can_switch_to_classic": True,
        "maintenance_margin_usdt": 120_600.0,
        "initial_margin_usdt": 250_907.0,
    },
    59: {"eligible_for_pro": True},
    60: {"can_switch_to_classic": True},
    61: {
        "pro_ineligible_reasons": [PML, NE],
        "open_order_loss_usdt": 702.0,  # 52 + 260 + 130 + 260: BUYs at index, 5 % of each notional
        "pro_margin_level_new": -3.24,  # (1540 − 1000 − 702) / 50
        "pro_orders_to_cancel": 2,  # the two 260s: (540 − 182) / 50 = 7.16 > 2; one alone: 1.96
        "pro_topup_usdt": 4460.0,  # net equity binds: 5000 − 540 (the level alone: 1000 + 702 + 2 · 50 − 1540)
    },
}
# asserted numbers besides the flags (compared with a relative tolerance of 1e-9)
NUMERIC_EXPECTATIONS = [
    "margin_level",
    "margin_call_topup_usdt",
    "classic_collateral_margin_level",
    "net_equity_usdt",
    "pro_available_margin_usdt",
    "total_asset_usdt",
    "total_liability_usdt",
    "collateral_usdt",
    "open_order_loss_usdt",
    "maintenance_margin_usdt",
    "initial_margin_usdt",
    "pro_margin_level_old",
    "pro_margin_level_new",
    "pro_topup_usdt",
    "classic_switch_topup_usdt",
    "pro_orders_to_cancel",
]


def expected(s: Showcase) -> dict[str, Any]:
    """Every asserted output for this account (defaults merged with EXPECT[account_id])."""
    pro = s.mode == "pro"
    out: dict[str, Any] = {
        "margin_call": False,
        "liquidation": False,
        "borrow_blocked_reason": None,
        "due_for_migration": False,
        "migrate_now": False,
        "partial_repayment_usdt": 0.0,
        "bad_debt_usdt": 0.0,
        "switches_left_today": 5,
        "eligible_for_pro": False,
        "pro_ineligible_reasons": ["already_pro"] if pro else [],
        "can_switch_to_classic": False,
    }
    out.update(EXPECT.get(s.account_id, {}))
    if out["liquidation"]:
        out["margin_call"] = True
    return out


def expected_actions(s: Showcase) -> list[tuple[str, str | None, float | None]]:
    """(action, reason, amount_usdt) rows of actions.parquet implied by `expected(s)`."""
    e = expected(s)
    level_reason = "pro" if s.mode == "pro" else f"classic_{s.leverage}x"
    rows: list[tuple[str, str | None, float | None]] = []
    if e["liquidation"]:
        rows.append(("LIQUIDATION", level_reason, None))
    elif e["margin_call"]:
        rows.append(("MARGIN_CALL", level_reason, e["margin_call_topup_usdt"]))
    if e["borrow_blocked_reason"] is not None:
        rows.append(("BORROW_BLOCKED", e["borrow_blocked_reason"], None))
    if e["due_for_migration"]:
        rows.append(("MIGRATE_TO_CLASSIC", "due" if e["migrate_now"] else "pending", None))
    if e["partial_repayment_usdt"] > 0:
        rows.append(("PARTIAL_REPAYMENT", None, e["partial_repayment_usdt"]))
    if e["eligible_for_pro"]:
        rows.append(("ELIGIBLE_FOR_PRO", None, None))
    return rows


def _flags_text(s: Showcase) -> str:
    e = expected(s)
    bits = [k for k in ("liquidation", "margin_call") if e[k]][:1]
    if e["borrow_blocked_reason"]:
        bits.append(f"blocked: {e['borrow_blocked_reason']}")
    if e["due_for_migration"]:
        bits.append("migrate_now" if e["migrate_now"] else "due_for_migration")
    if e["partial_repayment_usdt"]:
        bits.append(f"repay {e['partial_repayment_usdt']:g}")
    if e["bad_debt_usdt"]:
        bits.append(f"bad debt {e['bad_debt_usdt']:g}")
    if e["switches_left_today"] != 5:
        bits.append(f"switches left {e['switches_left_today']}")
    if e["eligible_for_pro"]:
        bits.append("eligible_for_pro")
    elif s.mode == "classic":
        bits.append("not eligible: " + ", ".join(e["pro_ineligible_reasons"]))
    if e["can_switch_to_classic"]:
        bits.append("can_switch_to_classic")
    elif s.mode == "pro":
        bits.append("cannot switch to classic")
    bits += [f"{k} {e[k]:g}" for k in NUMERIC_EXPECTATIONS if k in e]
    return "; ".join(bits)


def showcase_markdown() -> str:
    """The showcase table of data/sample/README.md (account_id, mode, what it shows, expected flags)."""
    lines = ["| account_id | mode | what it shows | expected at 2025-01-21T10:00:00Z |", "|---|---|---|---|"]
    lines += [f"| {s.account_id} | {s.mode} {s.leverage}x | {s.shows} | {_flags_text(s)} |" for s in SHOWCASE]
    return "\n".join(lines) + "\n"
