"""What it would take (docs/rules.md §9): margin_call_topup_usdt, pro_topup_usdt,
classic_switch_topup_usdt and pro_orders_to_cancel.

Hand-worked boundaries (literal frames: a level exactly at its threshold, a deposit across USDT tier
boundaries, a USDT slice with ratio 0, USDT with a stale price or a price of 0, accounts without
liabilities, ties between order losses, both policies); tests/property/test_remediation.py checks
random books against the scalar reference.

Frame defaults (tests/support/inputs.py): USDT at 1 with one collateral slice of ratio 1 and maintenance
rate 0.125, so a USDT-only account owing L has maintenance margin L/8.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from crossmargin.policy import resolve
from support import reference as ref
from support.inputs import (
    NEW,
    OLD,
    account,
    actions_of,
    balance,
    fresh_prices,
    one,
    one_bracket,
    one_slice,
    order,
    price,
    run,
    tables,
    threshold_policy,
    tiers,
)

H = dt.timedelta(hours=1)
COLUMNS = ref.REMEDIATION_COLUMNS


def taken(result: Any, account_id: int) -> dict[str, Any]:
    """The four columns of one account."""
    row = one(result, account_id)
    return {c: row[c] for c in COLUMNS}


def policy_file(tmp_path: Path, **activation: float) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(threshold_policy(activation=activation))
    return path


# ----------------------------------------------------------------------------- at the threshold


def test_a_level_exactly_at_its_threshold_needs_any_deposit_so_zero(tmp_path: Path) -> None:
    """Classic 3x 1300 / 1000 = 1.3 is at margin call (≤ 1.3), and any deposit lifts it: 0. Classic
    1250 − 1000 over MM 125 = 2 exactly fails Pro's level (> 2): with net equity required above 100
    only, nothing but the level binds, so the Pro top-up is 0 too; no order to cancel can lift it
    (null). Pro 1500 / 1000 = 1.5 exactly the 3x IRR: switching needs any deposit, 0."""
    t = tables(
        accounts=[account(1), account(2), account(3, "pro")],
        balances=[
            balance(1, "USDT", free=1300.0, borrowed=1000.0),
            balance(2, "USDT", free=1250.0, borrowed=1000.0),
            balance(3, "USDT", free=1500.0, borrowed=1000.0),
        ],
    )
    r = run(t, NEW, policy_file(tmp_path, new_min_net_equity_usdt=100.0))
    assert one(r, 1)["margin_call"] and taken(r, 1)["margin_call_topup_usdt"] == 0.0
    assert ("MARGIN_CALL", "classic_3x", 0.0) in actions_of(r, 1)
    assert one(r, 2)["pro_margin_level_new"] == 2.0 and not one(r, 2)["eligible_for_pro"]
    assert taken(r, 2)["pro_topup_usdt"] == 0.0
    assert taken(r, 2)["pro_orders_to_cancel"] is None
    assert one(r, 3)["classic_collateral_margin_level"] == 1.5 and not one(r, 3)["can_switch_to_classic"]
    assert taken(r, 3)["classic_switch_topup_usdt"] == 0.0


def test_columns_of_the_other_mode_are_null_and_a_margin_call_carries_its_amount() -> None:
    """Classic 3x 1200 / 1000 = 1.2: margin call, not liquidation; 1.3 · 1000 − 1200 = 100 lifts it,
    and the MARGIN_CALL action carries it. No switch top-up for a Classic account; no Pro top-up and
    no orders to cancel for a Pro one (Pro 1250 − 1000 over 125 = 2 > 1.5: no margin call)."""
    t = tables(
        accounts=[account(1), account(2, "pro")],
        balances=[
            balance(1, "USDT", free=1200.0, borrowed=1000.0),
            balance(2, "USDT", free=1250.0, borrowed=1000.0),
        ],
    )
    r = run(t, NEW)
    assert taken(r, 1)["margin_call_topup_usdt"] == pytest.approx(100.0, rel=1e-12)
    assert taken(r, 1)["classic_switch_topup_usdt"] is None
    assert ("MARGIN_CALL", "classic_3x", taken(r, 1)["margin_call_topup_usdt"]) in actions_of(r, 1)
    assert taken(r, 2)["margin_call_topup_usdt"] == 0.0
    assert taken(r, 2)["pro_topup_usdt"] is None and taken(r, 2)["pro_orders_to_cancel"] is None
    assert taken(r, 2)["classic_switch_topup_usdt"] == pytest.approx(250.0, rel=1e-12)  # 1.5 · 1000 − 1250


def test_an_account_without_liabilities() -> None:
    """No liability: every level is +inf, so no margin call (0), the Pro level holds (0 orders) and
    so does switching (0); but the Pro net-equity condition (> 5,000) still needs 5,000 − 1,000."""
    t = tables(
        accounts=[account(1), account(2, "pro")],
        balances=[balance(1, "USDT", free=1000.0), balance(2, "USDT", free=1000.0)],
    )
    r = run(t, NEW)
    assert taken(r, 1) == {
        "margin_call_topup_usdt": 0.0,
        "pro_topup_usdt": 4000.0,
        "classic_switch_topup_usdt": None,
        "pro_orders_to_cancel": 0,
    }
    assert taken(r, 2) == {
        "margin_call_topup_usdt": 0.0,
        "pro_topup_usdt": None,
        "classic_switch_topup_usdt": 0.0,
        "pro_orders_to_cancel": None,
    }


# ----------------------------------------------------------------------------- USDT tiers

USDT_TIERS = [(0, 1000, 1.0), (1000, 5000, 0.5), (5000, None, 0.25)]


def test_deposits_across_usdt_tier_boundaries() -> None:
    """USDT tiers [0, 1k) × 1, [1k, 5k) × 0.5, [5k, ∞) × 0.25: collateral C(v) = v, 1000 + (v − 1000)/2,
    3000 + (v − 5000)/4 of the USDT value v held.

    Account 1 (Classic 3x) and 2 (Pro 3x): 800 held, 8,000 owed, MM 1,000.
    * Classic margin call: (800 + d)/8000 > 1.3 → d = 9,600 (total asset counts a deposit in full).
    * Pro top-up: C − 8000 > 2 · 1000 → C = 10,000 → v = 33,000 → d = 32,200 (two boundaries crossed),
      net equity then 25,000 > 5,000: the level binds.
    * Pro margin call: C − 8000 > 1.5 · 1000 → C = 9,500 → v = 31,000 → d = 30,200.
    * switching back: C / 8000 > 1.5 → C = 12,000 → v = 41,000 → d = 40,200.
    Account 3 (Pro): 800 held, 1,000 owed, MM 125: margin call C − 1000 > 187.5 → v = 1,375 (the second
    slice) → d = 575; switching C > 1,500 → v = 2,000 → d = 1,200. Account 4 (Classic) has no USDT row
    at all (a deposit is a USDT row of its own): 10 BTC held at 100 (ratio 0.95: 950) and 9 owed (900,
    MM 112.5): Pro level (950 + C − 900)/112.5 > 2 → C = 175 → d = 175, binding under net equity
    5,000 − 100 → d = 4,900."""
    t = tables(
        accounts=[account(1), account(2, "pro"), account(3, "pro"), account(4)],
        balances=[
            balance(1, "USDT", free=800.0, borrowed=8000.0),
            balance(2, "USDT", free=800.0, borrowed=8000.0),
            balance(3, "USDT", free=800.0, borrowed=1000.0),
            balance(4, "BTC", free=10.0, borrowed=9.0),
        ],
        prices=fresh_prices(NEW, BTC=100.0),
        collateral_tiers=[tiers("USDT", USDT_TIERS), one_slice("BTC", 0.95)],
        liability_brackets=[one_bracket("USDT"), one_bracket("BTC")],
    )
    r = run(t, NEW)
    a1, a2, a3, a4 = (taken(r, i) for i in (1, 2, 3, 4))
    assert a1["margin_call_topup_usdt"] == pytest.approx(9600.0, rel=1e-12)
    assert a1["pro_topup_usdt"] == pytest.approx(32200.0, rel=1e-12)
    assert a1["pro_orders_to_cancel"] is None  # no order to cancel
    assert a2["margin_call_topup_usdt"] == pytest.approx(30200.0, rel=1e-12)
    assert a2["classic_switch_topup_usdt"] == pytest.approx(40200.0, rel=1e-12)
    assert a3["margin_call_topup_usdt"] == pytest.approx(575.0, rel=1e-12)
    assert a3["classic_switch_topup_usdt"] == pytest.approx(1200.0, rel=1e-12)
    assert a4["pro_topup_usdt"] == pytest.approx(4900.0, rel=1e-12)
    # the level alone (net equity required above 0 only): the deposit is a USDT row of its own
    with tempfile.TemporaryDirectory() as folder:
        loose = run(t, NEW, policy_file(Path(folder), new_min_net_equity_usdt=0.0))
    assert taken(loose, 4)["pro_topup_usdt"] == pytest.approx(175.0, rel=1e-12)


def test_a_usdt_slice_with_ratio_zero() -> None:
    """USDT tiers [0, 1k) × 1, [1k, ∞) × 0: collateral stops at 1,000. Account 1 (Pro, 800 held,
    1,000 owed, MM 125): its Pro level never exceeds 0 and its collateral level 1, so no deposit lifts
    the margin call or lets it switch (null). Account 2 (Classic, same book): the Classic margin level
    counts total asset (1,300 − 800 = 500), but the Pro level is out of reach (null). Account 3
    (Classic, 800 held, 100 owed: level (800 − 100)/12.5 = 56): only net equity binds, and a deposit
    counts in full there: 5,000 − 700 = 4,300. With a middle slice of ratio 0 ([1k, 2k) × 0, [2k, ∞) ×
    0.5) account 1's margin call needs C = 1,187.5 → v = 2,375 → d = 1,575."""
    book = dict(
        accounts=[account(1, "pro"), account(2), account(3)],
        balances=[
            balance(1, "USDT", free=800.0, borrowed=1000.0),
            balance(2, "USDT", free=800.0, borrowed=1000.0),
            balance(3, "USDT", free=800.0, borrowed=100.0),
        ],
    )
    capped = run(tables(**book, collateral_tiers=[tiers("USDT", [(0, 1000, 1.0), (1000, None, 0.0)])]), NEW)
    assert taken(capped, 1)["margin_call_topup_usdt"] is None
    assert taken(capped, 1)["classic_switch_topup_usdt"] is None
    assert taken(capped, 2)["margin_call_topup_usdt"] == pytest.approx(500.0, rel=1e-12)
    assert taken(capped, 2)["pro_topup_usdt"] is None
    assert taken(capped, 3)["pro_topup_usdt"] == pytest.approx(4300.0, rel=1e-12)
    flat = [(0, 1000, 1.0), (1000, 2000, 0.0), (2000, None, 0.5)]
    middle = run(tables(**book, collateral_tiers=[tiers("USDT", flat)]), NEW)
    assert taken(middle, 1)["margin_call_topup_usdt"] == pytest.approx(1575.0, rel=1e-12)


@pytest.mark.parametrize("usdt_price", ["stale", "zero"])
def test_usdt_without_a_usable_price(usdt_price: str) -> None:
    """USDT priced only 25 hours before as_of (stale) or at 0: no deposit can be valued. Account 1
    holds and owes only BTC (Classic, level 100/90 ≤ 1.3): its margin call and Pro top-ups are null;
    account 2 has no liability (0 for the margin call). Account 3 holds USDT: with a stale price it is
    a data issue; at a price of 0 its USDT is worth nothing and it is scored, with null top-ups."""
    usdt = price("USDT", 1.0, NEW - 25 * H) if usdt_price == "stale" else price("USDT", 0.0, NEW - H)
    t = tables(
        accounts=[account(1), account(2), account(3)],
        balances=[
            balance(1, "BTC", free=1.0, borrowed=0.9),
            balance(2, "BTC", free=1.0),
            balance(3, "USDT", free=1000.0),
            balance(3, "BTC", borrowed=0.5),
        ],
        prices=[usdt, price("BTC", 100.0, NEW - H)],
        collateral_tiers=[one_slice("BTC", 0.9)],
        liability_brackets=[one_bracket("BTC")],
    )
    r = run(t, NEW)
    assert one(r, 1)["margin_call"]
    assert taken(r, 1)["margin_call_topup_usdt"] is None and taken(r, 1)["pro_topup_usdt"] is None
    assert taken(r, 2)["margin_call_topup_usdt"] == 0.0 and taken(r, 2)["pro_topup_usdt"] is None
    issues = r.data_issues.filter(pl.col("account_id") == 3)
    if usdt_price == "stale":
        assert issues["code"].cast(pl.String).to_list() == ["stale_price"]
    else:
        assert issues.height == 0 and taken(r, 3)["margin_call_topup_usdt"] is None


def test_a_usdt_price_other_than_one() -> None:
    """USDT at 0.5: 2,000 USDT held are worth 1,000; 0.01 BTC owed at 100,000 is 1,000. The Classic
    margin call needs total asset 1,300: a deposit of 300 USDT of value (600 USDT units)."""
    t = tables(
        accounts=[account(1)],
        balances=[balance(1, "USDT", free=2000.0), balance(1, "BTC", borrowed=0.01)],
        prices=[price("USDT", 0.5, NEW - H), price("BTC", 100_000.0, NEW - H)],
        liability_brackets=[one_bracket("BTC")],
    )
    assert taken(run(t, NEW), 1)["margin_call_topup_usdt"] == pytest.approx(300.0, rel=1e-12)


def test_the_old_policy() -> None:
    """Before the new formula: Pro eligibility needs the Classic collateral level > 1.25 (1,000 held,
    1,000 owed → 250) and no orders are counted; switching back needs the Classic margin level > the
    IRR (Pro 3x, 1,200 / 1,000 → 1.5 · 1,000 − 1,200 = 300); the old Pro level 200 / 125 = 1.6 is above
    the margin call (0)."""
    t = tables(
        accounts=[account(1), account(2, "pro")],
        balances=[
            balance(1, "USDT", free=1000.0, borrowed=1000.0),
            balance(2, "USDT", free=1200.0, borrowed=1000.0),
        ],
    )
    r = run(t, OLD)
    assert taken(r, 1)["pro_topup_usdt"] == pytest.approx(250.0, rel=1e-12)
    assert taken(r, 1)["pro_orders_to_cancel"] is None
    assert taken(r, 2)["classic_switch_topup_usdt"] == pytest.approx(300.0, rel=1e-12)
    assert taken(r, 2)["margin_call_topup_usdt"] == 0.0


# ----------------------------------------------------------------------------- orders to cancel


def _order_book(free: float) -> dict[str, pl.DataFrame]:
    """A Classic 3x account holding `free` USDT and owing 500 (MM 62.5), BTC at 100 with ratio 0.5.
    Three BUYs of 1 BTC at 200 (given 200, received 50: a loss of 150 each, ids 9, 4, 6) and two SELLs
    of 1 BTC at 1,000 (given 50, received 1,000: no loss, ids 1, 2). OOL = 450."""
    buy = [order(1, i, "BTC", "USDT", "BUY", 200.0, 1.0) for i in (9, 4, 6)]
    sell = [order(1, i, "BTC", "USDT", "SELL", 1000.0, 1.0) for i in (1, 2)]
    return tables(
        accounts=[account(1)],
        balances=[balance(1, "USDT", free=free, borrowed=500.0)],
        open_orders=[*buy, *sell],
        prices=fresh_prices(NEW, BTC=100.0),
        collateral_tiers=[one_slice("BTC", 0.5)],
        liability_brackets=[one_bracket("BTC")],
    )


@pytest.mark.parametrize(
    ("free", "count"),
    [
        (1000.0, 1),  # (500 − 450 + 150k)/62.5 > 2 ⇔ 150k > 75: k = 1
        (900.0, 2),  # (400 − 450 + 150k)/62.5 > 2 ⇔ 150k > 175: k = 2 (k = 1 gives 1.6)
        (700.0, 3),  # 150k > 375: all three losses; the two loss-free orders never help
        (600.0, None),  # (100 − 0)/62.5 = 1.6: cancelling every order is not enough
        (1500.0, 0),  # (1000 − 450)/62.5 = 8.8 > 2 already
    ],
)
def test_orders_to_cancel_with_tied_losses(free: float, count: int | None) -> None:
    t = _order_book(free)
    assert taken(run(t, NEW), 1)["pro_orders_to_cancel"] == count
    lists = {name: frame.to_dicts() for name, frame in t.items()}
    # ties broken by the smaller order_id: which orders go first (what `explain` lists)
    assert [o["order_id"] for o in ref.cancelling_order(lists, resolve(NEW), 1)] == [4, 6, 9, 1, 2]
