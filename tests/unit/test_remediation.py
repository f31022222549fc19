"""What it would take (docs/rules.md §9): margin_call_topup_usdt, pro_topup_usdt,
classic_switch_topup_usdt and pro_orders_to_cancel.

Hand-worked boundaries first (literal frames: a level exactly at its threshold, a deposit across USDT
tier boundaries, a USDT slice with ratio 0, USDT with a stale price or a price of 0, accounts without
liabilities, ties between order losses, both policies); then hypothesis properties on random books
and random policies (a policy file), against the scalar reference (tests/support/reference.py: deposit,
score again, search): engine and reference agree; at a reported top-up the level is at its threshold
(relative 1e-9) and a hair below it the condition fails; cancelling the reported k orders lifts the
level and k − 1 do not.

Frame defaults (tests/support/inputs.py): USDT at 1 with one collateral slice of ratio 1 and maintenance
rate 0.125, so a USDT-only account owing L has maintenance margin L/8.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crossmargin.policy import Policy, resolve
from support import reference as ref
from support.inputs import (
    NEW,
    OLD,
    account,
    actions_of,
    balance,
    brackets,
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
from support.ref_compare import compare

H = dt.timedelta(hours=1)
COLUMNS = ref.REMEDIATION_COLUMNS


def fresh(as_of: dt.datetime, **assets: float) -> list[dict]:
    return [price(a, p, as_of - H) for a, p in {"USDT": 1.0, **assets}.items()]


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
        prices=fresh(NEW, BTC=100.0),
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
        prices=fresh(NEW, BTC=100.0),
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


# ----------------------------------------------------------------------------- properties

ASSET_UNITS = {"USDT": 20_000.0, "BTC": 2.0, "ETH": 20.0}
PAIRS = [("BTC", "USDT"), ("ETH", "USDT"), ("ETH", "BTC")]
USDT_BOUNDS = [100.0, 1000.0, 5000.0, 20_000.0]
USDT_RATIOS = [1.0, 0.9, 0.5, 0.25, 0.0]
NOTIONALS = [100.0, 1000.0, 5000.0, 20_000.0]  # an order's size in USDT at index prices


def _amount(scale: float) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(0.0, scale, allow_nan=False, allow_subnormal=False))


@st.composite
def usdt_tiers(draw) -> list[dict]:
    """USDT's collateral tiers: one to four slices, a ratio of 0 among them sometimes."""
    bounds = sorted(draw(st.lists(st.sampled_from(USDT_BOUNDS), max_size=3, unique=True)))
    ratios = [draw(st.sampled_from(USDT_RATIOS)) for _ in range(len(bounds) + 1)]
    return tiers("USDT", list(zip([0.0, *bounds], [*bounds, None], ratios, strict=True)))


@st.composite
def books(draw) -> tuple[dt.datetime, dict[str, pl.DataFrame]]:
    as_of = draw(st.sampled_from([NEW, OLD]))
    btc, eth = draw(st.floats(50, 200)), draw(st.floats(5, 20))
    usdt_at = draw(st.sampled_from(["fresh"] * 8 + ["off"] + ["stale"]))
    usdt_price = {"fresh": 1.0, "off": draw(st.floats(0.9, 1.1)), "stale": 1.0}[usdt_at]
    usdt_row = price("USDT", usdt_price, as_of - (25 if usdt_at == "stale" else 1) * H)
    accounts, balances, orders = [], [], []
    oid = 0
    for aid in range(1, draw(st.integers(1, 4)) + 1):
        accounts.append(
            account(aid, draw(st.sampled_from(["classic", "pro"])), draw(st.sampled_from([3, 5])))
        )
        assets = draw(st.lists(st.sampled_from(list(ASSET_UNITS)), min_size=1, max_size=3, unique=True))
        for asset in assets:  # USDT absent sometimes: a deposit is then a USDT row of its own
            scale = ASSET_UNITS[asset]
            balances.append(balance(aid, asset, free=draw(_amount(scale)), borrowed=draw(_amount(scale))))
        for _ in range(draw(st.integers(0, 3))):
            base, quote = draw(st.sampled_from(PAIRS))
            index = {"BTC": btc, "ETH": eth, "USDT": 1.0}
            limit = index[base] / index[quote] * draw(st.sampled_from([0.5, 0.9, 1.0, 1.2, 2.0]))
            oid += 1
            side = draw(st.sampled_from(["BUY", "SELL"]))
            qty = draw(st.sampled_from(NOTIONALS)) / index[base]
            orders.append(order(aid, 100 - oid, base, quote, side, limit, qty))
    t = tables(
        accounts=accounts,
        balances=balances,
        open_orders=orders,
        prices=[usdt_row, price("BTC", btc, as_of - H), price("ETH", eth, as_of - H)],
        collateral_tiers=[
            draw(usdt_tiers()),
            tiers("BTC", [(0, 50, 1.0), (50, 200, 0.8), (200, None, 0.5)]),
            one_slice("ETH", 0.9),
        ],
        liability_brackets=[
            brackets("USDT", [(0, 5000, 0.05, 0.1), (5000, None, 0.1, 0.2)]),
            brackets("BTC", [(0, 100, 0.1, 0.2), (100, None, 0.2, 0.4)]),
            one_bracket("ETH", 0.1, 0.2),
        ],
    )
    return as_of, t


THRESHOLDS = [1.3, 1.1, 1.15, 1.5, 1.0, 1.05, 1.25, 2.0]


@st.composite
def policies(draw) -> str:
    """A `--policy` file: margin call and liquidation of Classic 3x, 5x and Pro, the IRRs and the
    activation values, each drawn on its own."""
    pair = st.tuples(st.sampled_from(THRESHOLDS), st.sampled_from(THRESHOLDS))
    activation = {
        "new_min_pro_margin_level": draw(st.sampled_from([2.0, 1.5, 3.0])),
        "new_min_net_equity_usdt": draw(st.sampled_from([5000.0, 100.0, 20_000.0])),
        "old_min_classic_collateral_margin_level": draw(st.sampled_from([1.25, 1.5, 1.1])),
    }
    irr = {3: draw(st.sampled_from([1.5, 2.0, 1.2])), 5: draw(st.sampled_from([1.25, 1.1, 1.5]))}
    return threshold_policy(
        classic={3: draw(pair), 5: draw(pair)}, pro=draw(pair), initial_risk_ratio=irr, activation=activation
    )


def conditions(policy: Policy, row: dict[str, Any], column: str) -> list[tuple[str, float]]:
    """The (measure, threshold) pairs a top-up column lifts above, for one account: its condition is
    that every measure is above its threshold."""
    new = policy.new_formula
    if column == "margin_call_topup_usdt":
        if row["margin_mode"] == "pro":
            return [("margin_level", max(policy.pro_margin_call, policy.pro_liquidation))]
        tier = policy.classic[row["classic_leverage"]]
        return [("margin_level", max(tier.margin_call, tier.liquidation))]
    if column == "pro_topup_usdt":
        if new:
            return [
                ("pro_margin_level_new", policy.new_min_pro_margin_level),
                ("net_equity_usdt", policy.new_min_net_equity_usdt),
            ]
        return [("classic_collateral_margin_level", policy.old_min_classic_collateral_margin_level)]
    irr = policy.classic[row["classic_leverage"]].initial_risk_ratio
    return [("classic_collateral_margin_level" if new else "classic_margin_level", irr)]


def near(value: float, threshold: float) -> bool:
    return math.isfinite(value) and abs(value - threshold) <= 1e-9 * abs(threshold)


def after_deposit(lists, policy: Policy, aid: int, d: float) -> dict[str, Any]:
    """The account's row in the reference after a deposit of d (it must still be scored)."""
    scored = ref.rescored(ref.with_deposit(lists, policy, aid, d), policy, aid)
    assert scored is not None, (aid, d)
    return scored


def holds(row: dict[str, Any], pairs: list[tuple[str, float]]) -> bool:
    return all(row[m] > t for m, t in pairs)


def check_topup(lists, policy: Policy, row: dict[str, Any], column: str) -> None:
    """At the reported top-up d the binding measure is at its threshold (relative 1e-9) and every other
    one above its own, or (a level ill-conditioned there: a numerator that cancels) the condition holds
    a hair above d, at d · (1 + 1e-9); and a hair below, at d · (1 − 1e-9), it fails. A top-up of 0:
    the condition holds now, or the binding measure sits at its threshold (any deposit lifts it)."""
    d, aid = row[column], row["account_id"]
    if d is None:
        return
    pairs = conditions(policy, row, column)
    if d == 0 and holds(row, pairs):
        return
    where = f"account {aid} {column}={d}"
    at = after_deposit(lists, policy, aid, d) if d > 0 else row
    at_threshold = all(at[m] > t or near(at[m], t) for m, t in pairs)
    hair = 1e-9 * (d if d > 0 else max(1.0, row["total_asset_usdt"], row["total_liability_usdt"]))
    above = holds(after_deposit(lists, policy, aid, d + hair), pairs)
    assert at_threshold or above, f"{where}: {[(m, at[m], t) for m, t in pairs]} and not above it"
    if d > 0:
        below = after_deposit(lists, policy, aid, d - hair)
        assert not holds(below, pairs), f"{where}: holds a hair below"


def check_orders(lists, policy: Policy, row: dict[str, Any]) -> None:
    """Cancelling the reported k orders (largest loss first) lifts the Pro level, k − 1 do not; null:
    cancelling all of them does not."""
    k, aid = row["pro_orders_to_cancel"], row["account_id"]
    if row["margin_mode"] != "classic" or not policy.new_formula:
        assert k is None
        return
    ranked = ref.cancelling_order(lists, policy, aid)
    threshold = policy.new_min_pro_margin_level

    def level_after(n: int) -> float:
        gone = {o["order_id"] for o in ranked[:n]}
        kept = [o for o in lists["open_orders"] if not (o["account_id"] == aid and o["order_id"] in gone)]
        return ref.rescored({**lists, "open_orders": kept}, policy, aid)["pro_margin_level_new"]

    if k is None:
        assert not level_after(len(ranked)) > threshold, f"account {aid}: cancelling all lifts it"
        return
    assert level_after(k) > threshold, f"account {aid}: {k} orders do not lift it"
    if k > 0:
        assert not level_after(k - 1) > threshold, f"account {aid}: {k - 1} orders lift it"


@settings(
    max_examples=int(os.environ.get("CROSSMARGIN_PROPERTY_EXAMPLES", "180")) // 3 or 1,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(books(), policies())
def test_what_it_would_take_against_the_reference(book, policy_text: str) -> None:
    as_of, t = book
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.toml"
        path.write_text(policy_text)
        policy = resolve(as_of, path)
        engine = run(t, as_of, path)
    lists = {name: frame.to_dicts() for name, frame in t.items()}
    reference = ref.compute(lists, policy)
    errs = compare(engine, reference, policy, {a["account_id"] for a in lists["accounts"]})
    assert not errs, "\n".join(errs)
    for row in engine.account_risk.to_dicts():
        for column in ("margin_call_topup_usdt", "pro_topup_usdt", "classic_switch_topup_usdt"):
            check_topup(lists, policy, row, column)
            value = row[column]
            event(f"{column}: {'null' if value is None else '0' if value == 0 else '> 0'}")
        check_orders(lists, policy, row)
        event(f"pro_orders_to_cancel: {row['pro_orders_to_cancel']}")
