"""Distances to thresholds (docs/rules.md §8.2): liquidation_drop/_rise, margin_call_drop/_rise.

Hand-worked Classic and Pro accounts; then a hypothesis property against the scalar reference
(tests/support/reference.py valued at moved prices): at each reported distance the level is at the
threshold (relative 1e-9), no point of a dense grid between 0 and it crosses, and where nothing is
reported no grid point crosses either. The property draws its thresholds too (a `--policy` file):
a margin call below, at or above the liquidation threshold, for Classic 3x, 5x and Pro each, so the
margin-call distances are checked against the larger of the two under any policy. Every price is
fresh: priced one hour before as_of.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossmargin.kernels.search import MAX_DROP, MAX_RISE
from crossmargin.policy import resolve
from crossmargin.rules.distances import DISTANCE_COLUMNS
from support import reference as ref
from support.inputs import (
    NEW,
    OLD,
    account,
    balance,
    brackets,
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
COLUMNS = DISTANCE_COLUMNS


def fresh_prices(as_of: dt.datetime, **assets: float) -> list[dict]:
    return [price(a, p, as_of - H) for a, p in {"USDT": 1.0, **assets}.items()]


def distances_of(
    t: dict[str, pl.DataFrame], as_of: dt.datetime, account_id: int, policy_file: Path | None = None
) -> dict[str, float | None]:
    row = run(t, as_of, policy_file).account_risk.filter(pl.col("account_id") == account_id)
    assert row.height == 1, run(t, as_of, policy_file).data_issues
    return {c: row[c][0] for c in COLUMNS}


# ----------------------------------------------------------------------------- hand-worked


def test_classic_long_hand_worked() -> None:
    """1 BTC at 100 against 50 USDT, 3x: level 100·m/50 hits 1.1 at m = 0.55 and 1.3 at m = 0.65;
    a rise only lifts the level (null)."""
    t = tables(
        accounts=[account(1, "classic", 3)],
        balances=[balance(1, "BTC", free=1.0), balance(1, "USDT", borrowed=50.0)],
        prices=fresh_prices(NEW, BTC=100.0),
        collateral_tiers=[one_slice("BTC", 0.9)],
    )
    d = distances_of(t, NEW, 1)
    assert d["liquidation_drop"] == pytest.approx(0.45, rel=1e-12)
    assert d["margin_call_drop"] == pytest.approx(0.35, rel=1e-12)
    assert d["liquidation_rise"] is None
    assert d["margin_call_rise"] is None


def test_classic_short_hand_worked() -> None:
    """1000 USDT against 5 ETH at 100, 5x: level 1000/(500·m) hits 1.1 at m = 20/11 and the
    margin call 1.15 at m = 40/23; a drop only lifts the level, and at r = -1 there is no liability."""
    t = tables(
        accounts=[account(1, "classic", 5)],
        balances=[balance(1, "USDT", free=1000.0), balance(1, "ETH", borrowed=5.0)],
        prices=fresh_prices(NEW, ETH=100.0),
        liability_brackets=[one_bracket("ETH")],
    )
    d = distances_of(t, NEW, 1)
    assert d["liquidation_rise"] == pytest.approx(20 / 11 - 1, rel=1e-12)
    assert d["margin_call_rise"] == pytest.approx(40 / 23 - 1, rel=1e-12)
    assert d["liquidation_drop"] is None
    assert d["margin_call_drop"] is None


def test_pro_hand_worked_across_a_collateral_tier() -> None:
    """Pro, new formula: 1 BTC at 100 with tiers [0, 50) × 1.0, [50, ∞) × 0.5, 40 USDT owed (MM 5).
    Level (collateral − 40)/5 = 7 at r = 0. Liquidation (≤ 1.0) needs collateral 45 and margin call
    (≤ 1.5) 47.5: both below the tier boundary, reached when 100·m = 45 and 47.5 (d = 0.55, 0.525),
    while the upper tier (0.5 per USDT) is left at m = 0.5."""
    t = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "BTC", free=1.0), balance(1, "USDT", borrowed=40.0)],
        prices=fresh_prices(NEW, BTC=100.0),
        collateral_tiers=[tiers("BTC", [(0, 50, 1.0), (50, None, 0.5)])],
    )
    d = distances_of(t, NEW, 1)
    assert d["liquidation_drop"] == pytest.approx(0.55, rel=1e-12)
    assert d["margin_call_drop"] == pytest.approx(0.525, rel=1e-12)
    assert d["liquidation_rise"] is None


def test_pro_short_with_a_bracket_and_an_open_order() -> None:
    """Pro, new formula: 1000 USDT held, 2 ETH owed at 100 (brackets [0, 150) 10 %, [150, ∞) 20 %),
    and a SELL of 1 ETH at limit 150 — an order that loses once ETH is above 150.
    At m: MM = 15 + 0.2·(200m − 150) past m = 0.75; OOL = max(0, 100m − 150) past m = 1.5.
    Level (1000 − 200m − OOL)/MM = 1 (liquidation): below 1.5, 1000 − 200m = 40m − 15 -> m = 1015/240
    > 1.5, so with the loss: 1150 − 300m = 40m − 15 -> m = 1165/340 (u = 825/340)."""
    t = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "USDT", free=1000.0), balance(1, "ETH", borrowed=2.0)],
        open_orders=[order(1, 1, "ETH", "USDT", "SELL", 150.0, 1.0)],
        prices=fresh_prices(NEW, ETH=100.0),
        collateral_tiers=[one_slice("ETH", 1.0)],
        liability_brackets=[brackets("ETH", [(0, 150, 0.1, 0.2), (150, None, 0.2, 0.4)])],
    )
    d = distances_of(t, NEW, 1)
    assert d["liquidation_rise"] == pytest.approx(1165 / 340 - 1, rel=1e-12)
    # margin call (1.5): 1150 − 300m = 60m − 22.5 -> m = 1172.5/360
    assert d["margin_call_rise"] == pytest.approx(1172.5 / 360 - 1, rel=1e-12)
    assert d["liquidation_drop"] is None


def test_a_margin_call_below_liquidation_is_measured_at_liquidation(tmp_path: Path) -> None:
    """A policy whose margin call (1.05 Classic 3x, 1.1 Pro) is below its liquidation threshold (1.1,
    1.25): a liquidated account is at margin call too, so the margin call is first reached where
    liquidation is. The Classic long of test_classic_long_hand_worked (level 2m) reaches 1.1 at
    m = 0.55; the Pro account of test_pro_hand_worked_across_a_collateral_tier (level
    (100m − 40)/5) reaches 1.25 at m = 0.4625."""
    policy = tmp_path / "policy.toml"
    policy.write_text(threshold_policy(classic={3: (1.05, 1.1)}, pro=(1.1, 1.25)))
    classic = tables(
        accounts=[account(1, "classic", 3)],
        balances=[balance(1, "BTC", free=1.0), balance(1, "USDT", borrowed=50.0)],
        prices=fresh_prices(NEW, BTC=100.0),
        collateral_tiers=[one_slice("BTC", 0.9)],
    )
    d = distances_of(classic, NEW, 1, policy)
    assert d["liquidation_drop"] == pytest.approx(0.45, rel=1e-12)
    assert d["margin_call_drop"] == pytest.approx(0.45, rel=1e-12)
    pro = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "BTC", free=1.0), balance(1, "USDT", borrowed=40.0)],
        prices=fresh_prices(NEW, BTC=100.0),
        collateral_tiers=[tiers("BTC", [(0, 50, 1.0), (50, None, 0.5)])],
    )
    d = distances_of(pro, NEW, 1, policy)
    assert d["liquidation_drop"] == pytest.approx(0.5375, rel=1e-12)
    assert d["margin_call_drop"] == pytest.approx(0.5375, rel=1e-12)


def test_already_at_or_below_gives_zero() -> None:
    """Level 1.05 (Classic 3x): at or below both thresholds now, so every distance is 0 — whether or
    not a move could change it (account 2 holds and owes only stable assets)."""
    t = tables(
        accounts=[account(1), account(2)],
        balances=[
            balance(1, "BTC", free=1.05),
            balance(1, "USDT", borrowed=100.0),
            balance(2, "USDT", free=105.0, borrowed=100.0),
        ],
        prices=fresh_prices(NEW, BTC=100.0),
        collateral_tiers=[one_slice("BTC", 0.9)],
    )
    for aid in (1, 2):
        assert distances_of(t, NEW, aid) == dict.fromkeys(COLUMNS, 0.0)


def test_only_margin_call_now_gives_zero_margin_call_distances() -> None:
    """Level 1.2 (Classic 3x): at margin call (≤ 1.3) now, not at liquidation (1.1 at m = 11/12)."""
    t = tables(
        accounts=[account(1)],
        balances=[balance(1, "BTC", free=1.2), balance(1, "USDT", borrowed=100.0)],
        prices=fresh_prices(NEW, BTC=100.0),
        collateral_tiers=[one_slice("BTC", 0.9)],
    )
    d = distances_of(t, NEW, 1)
    assert d["margin_call_drop"] == 0.0
    assert d["margin_call_rise"] == 0.0
    assert d["liquidation_drop"] == pytest.approx(1 - 11 / 12, rel=1e-12)
    assert d["liquidation_rise"] is None


def test_no_exposure_to_moving_assets_is_null() -> None:
    """Only stable assets (level 2 in USDT and USDC), and no liability at all: no move changes the
    level, nothing is reported."""
    t = tables(
        accounts=[account(1), account(2, "pro"), account(3)],
        balances=[
            balance(1, "USDC", free=200.0),
            balance(1, "USDT", borrowed=100.0),
            balance(2, "USDC", free=200.0),
            balance(2, "USDT", borrowed=100.0),
            balance(3, "BTC", free=1.0),
        ],
        prices=fresh_prices(NEW, USDC=1.0, BTC=100.0),
        collateral_tiers=[one_slice("USDC", 1.0), one_slice("BTC", 0.9)],
    )
    for aid in (1, 2, 3):
        assert distances_of(t, NEW, aid) == dict.fromkeys(COLUMNS)


# ----------------------------------------------------------------------------- property vs the reference

ASSET_UNITS = {"USDT": 1000.0, "USDC": 1000.0, "BTC": 5.0, "ETH": 50.0}
PAIRS = [("BTC", "USDT"), ("ETH", "USDT"), ("ETH", "BTC"), ("BTC", "USDC")]
DROP_GRID = [i / 200 for i in range(1, 201)]
RISE_GRID = [10 * i / 200 for i in range(1, 201)]


def _amount(scale: float) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(0.0, scale, allow_nan=False, allow_subnormal=False))


@st.composite
def books(draw):
    as_of = draw(st.sampled_from([NEW, OLD]))
    btc, eth, usdc = draw(st.floats(50, 200)), draw(st.floats(5, 20)), draw(st.floats(0.9, 1.1))
    accounts, balances, orders = [], [], []
    oid = 0
    for aid in range(1, draw(st.integers(1, 4)) + 1):
        mode = draw(st.sampled_from(["classic", "pro"]))
        accounts.append(account(aid, mode, draw(st.sampled_from([3, 5]))))
        for asset in draw(st.lists(st.sampled_from(list(ASSET_UNITS)), min_size=1, max_size=4, unique=True)):
            scale = ASSET_UNITS[asset]
            balances.append(balance(aid, asset, free=draw(_amount(scale)), borrowed=draw(_amount(scale / 2))))
        for _ in range(draw(st.integers(0, 2))):
            base, quote = draw(st.sampled_from(PAIRS))
            index = {"BTC": btc, "ETH": eth, "USDT": 1.0, "USDC": usdc}
            limit = index[base] / index[quote] * draw(st.floats(0.5, 1.5))
            oid += 1
            side = draw(st.sampled_from(["BUY", "SELL"]))
            orders.append(order(aid, oid, base, quote, side, limit, draw(st.floats(0.0, 2.0))))
    t = tables(
        accounts=accounts,
        balances=balances,
        open_orders=orders,
        prices=fresh_prices(as_of, BTC=btc, ETH=eth, USDC=usdc),
        collateral_tiers=[
            tiers("BTC", [(0, 50, 1.0), (50, 200, 0.8), (200, None, 0.5)]),
            one_slice("ETH", 0.9),
            tiers("USDC", [(0, 100, 1.0), (100, None, 0.9)]),
        ],
        liability_brackets=[
            brackets("BTC", [(0, 100, 0.1, 0.2), (100, None, 0.2, 0.4)]),
            one_bracket("ETH", 0.1, 0.2),
            brackets("USDC", [(0, 300, 0.125, 0.25), (300, None, 0.25, 0.5)]),
        ],
    )
    return as_of, t


# thresholds a policy may set; the shipped ones first, so that a failing example shrinks to them
THRESHOLD_VALUES = [1.3, 1.1, 1.15, 1.5, 1.0, 1.05, 1.25, 2.0]


@st.composite
def threshold_policies(draw) -> str:
    """A `--policy` file setting the margin-call and liquidation thresholds of Classic 3x, 5x and Pro,
    each drawn on its own: a margin call below, at or above its liquidation threshold."""
    pair = st.tuples(st.sampled_from(THRESHOLD_VALUES), st.sampled_from(THRESHOLD_VALUES))
    return threshold_policy(classic={3: draw(pair), 5: draw(pair)}, pro=draw(pair))


def threshold(policy, row: dict, column: str) -> float:
    liq = (
        policy.pro_liquidation
        if row["margin_mode"] == "pro"
        else policy.classic[row["classic_leverage"]].liquidation
    )
    if column.startswith("liquidation"):
        return liq
    mc = (
        policy.pro_margin_call
        if row["margin_mode"] == "pro"
        else policy.classic[row["classic_leverage"]].margin_call
    )
    return max(mc, liq)


def crosses(level: float, t: float) -> bool:
    return level <= t


def near(level: float, t: float) -> bool:
    return math.isfinite(level) and abs(level / t - 1.0) <= 1e-9


@settings(
    max_examples=int(os.environ.get("CROSSMARGIN_PROPERTY_EXAMPLES", "150")) // 3 or 1,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(books(), threshold_policies())
def test_distances_against_the_reference(book, policy_text: str) -> None:
    as_of, t = book
    with tempfile.TemporaryDirectory() as folder:
        policy_file = Path(folder) / "policy.toml"
        policy_file.write_text(policy_text)
        check_against_the_reference(as_of, t, policy_file)


def breakpoints(lists: dict[str, list[dict]], policy, as_of: dt.datetime, side: str) -> list[float]:
    """The moves |r| of `side` at which some row's USDT value crosses a bound of its asset's tiers or
    brackets, or an order's given − received changes sign: where the level's pieces meet (worked out
    here from the tables, independently of the engine). Only the tables in effect are read."""
    prices = {p["asset"]: p["price_usdt"] for p in lists["prices"] if p["priced_at"] <= as_of}
    moving = {a for a in prices if a not in policy.stable_assets}
    bounds = {}
    for name in ("collateral_tiers", "liability_brackets"):
        for row in lists[name]:
            if row["effective_from"] <= as_of and row["lower_usdt"] > 0:
                bounds.setdefault(row["asset"], []).append(row["lower_usdt"])
    ms = []
    for b in lists["balances"]:
        if b["asset"] in moving:
            for amount in (b["free"] + b["locked"], b["borrowed"] + b["interest"]):
                value = amount * prices[b["asset"]]
                ms += [bound / value for bound in bounds.get(b["asset"], []) if value > 0]
    ratios = {r["asset"]: r["collateral_ratio"] for r in lists["collateral_tiers"] if r["lower_usdt"] == 0}
    for o in lists["open_orders"]:

        def leg(m: float, o=o) -> float:
            pb = prices[o["base_asset"]] * (m if o["base_asset"] in moving else 1.0)
            pq = prices[o["quote_asset"]] * (m if o["quote_asset"] in moving else 1.0)
            quote = o["remaining_qty"] * o["price"] * pq * ratios[o["quote_asset"]]
            base = o["remaining_qty"] * pb * ratios[o["base_asset"]]
            return quote - base if o["side"] == "BUY" else base - quote

        if leg(0.0) != leg(1.0):
            ms.append(leg(0.0) / (leg(0.0) - leg(1.0)))
    if side == "drop":
        return sorted(1.0 - m for m in ms if 0.0 < m < 1.0)
    return sorted(m - 1.0 for m in ms if 1.0 < m <= 1.0 + MAX_RISE)


def check_against_the_reference(
    as_of: dt.datetime, t: dict[str, pl.DataFrame], policy_file: Path | None = None
) -> None:
    """At each reported distance the level is at the threshold (relative 1e-9) or crosses just past it,
    no point before it crosses (a dense grid and every breakpoint), and where nothing is reported no such
    point crosses; margin call comes no later than liquidation."""
    policy = resolve(as_of, policy_file)
    risk = run(t, as_of, policy_file).account_risk
    if policy_file is not None:
        assert (risk["policy_version"] == "test-thresholds").all()
    lists = {name: frame.to_dicts() for name, frame in t.items()}
    grid = {
        side: {g: ref.level_at_move(lists, policy, g * (-1.0 if side == "drop" else 1.0)) for g in points}
        for side, points in (("drop", DROP_GRID), ("rise", RISE_GRID))
    }
    for side in ("drop", "rise"):  # and every breakpoint, where a dip between grid points would begin
        sign = -1.0 if side == "drop" else 1.0
        for g in breakpoints(lists, policy, as_of, side):
            grid[side][g] = ref.level_at_move(lists, policy, sign * g)
    at_zero = ref.level_at_move(lists, policy, 0.0)
    for row in risk.to_dicts():
        aid = row["account_id"]
        for column in COLUMNS:
            side = column.rsplit("_", 1)[1]
            sign = -1.0 if side == "drop" else 1.0
            t_ = threshold(policy, row, column)
            value = row[column]
            where = f"account {aid} {column}={value} ({row['margin_mode']}, as_of {as_of})"
            if value == 0.0:
                assert crosses(at_zero[aid], t_), where
                continue
            assert not crosses(at_zero[aid], t_), where
            before = [g for g in grid[side] if value is None or g < value - 1e-9]
            for g in before:
                level = grid[side][g][aid]
                assert not crosses(level, t_) or near(level, t_), f"{where}: crosses at {sign * g} ({level})"
            if value is not None:
                level = ref.level_at_move(lists, policy, sign * value)[aid]
                limit = MAX_DROP if side == "drop" else MAX_RISE
                past = ref.level_at_move(lists, policy, sign * min(value + 1e-9, limit))[aid]
                assert (
                    near(level, t_) or (crosses(past, t_) and not crosses(level, t_)) or crosses(level, t_)
                ), f"{where}: level {level} at the reported move, threshold {t_}"
                assert near(level, t_) or crosses(past, t_), f"{where}: level {level}, just past {past}"
        for side in ("drop", "rise"):
            mc, liq = row[f"margin_call_{side}"], row[f"liquidation_{side}"]
            if mc is not None and liq is not None:
                assert mc <= liq


# ----------------------------------------------------------------------------- hand-worked edges


TIED = [f"A{i:02d}" for i in range(20)]


def tied_book(as_of: dt.datetime) -> dict[str, pl.DataFrame]:
    """Breakpoints that tie. Every A.. asset is at 10 with tiers [0, 50) × 0.9, [50, 150) × 0.7,
    [150, ∞) × 0.3 and brackets [0, 50) 10 %, [50, ∞) 20 %.
    Account 1 (14 rows): A00..A09 at 200 each (ten rows whose two breakpoints tie, m = 0.75 and 0.25),
    A10 at 100 (m = 0.5, slice 1) and A11 at 300 (m = 0.5, slice 2: a tie across slices), A12 owed
    100 (a bracket at m = 0.5) and a BUY of A13 whose loss turns on at m = 0.5 — four kinds of event
    at one m — against 1600 USDT owed. Account 2: A00..A19 at 200 each (40 drop events, so the merge
    sort of long lists) against 2200 USDT owed. 36 moving rows: polars lists the (row, slice) grid
    row by row, as the kernel does."""
    a1 = [balance(1, a, free=20.0) for a in TIED[:10]]
    a1 += [balance(1, "A10", free=10.0), balance(1, "A11", free=30.0), balance(1, "A12", borrowed=10.0)]
    a1 += [balance(1, "USDT", borrowed=1600.0, free=0.3)]
    a2 = [balance(2, a, free=20.0) for a in TIED] + [balance(2, "USDT", borrowed=2200.0)]
    return tables(
        accounts=[account(1, "pro"), account(2, "pro")],
        balances=a1 + a2,
        open_orders=[order(1, 1, "A13", "USDT", "BUY", 4.5, 1.0)],
        prices=fresh_prices(as_of, **dict.fromkeys(TIED, 10.0)),
        collateral_tiers=[tiers(a, [(0, 50, 0.9), (50, 150, 0.7), (150, None, 0.3)]) for a in TIED],
        liability_brackets=[brackets(a, [(0, 50, 0.1, 0.2), (50, None, 0.2, 0.4)]) for a in TIED],
    )


@pytest.mark.parametrize("as_of", [NEW, OLD], ids=["new formula", "old formula"])
def test_tied_breakpoints_against_the_reference(as_of: dt.datetime) -> None:
    """Breakpoints that tie (four kinds at one m) and long event lists: the distances meet the
    reference's definition as on the random books."""
    check_against_the_reference(as_of, tied_book(as_of))
    assert run(tied_book(as_of), as_of).account_risk["margin_call_drop"].null_count() == 0


def test_the_last_asset_in_its_top_tier() -> None:
    """ZZZ (the last asset by name) held in its top collateral tier: 1 at 1000 with tiers [0, 100) × 1.0,
    [100, ∞) × 0.5 gives collateral 550; 100 USDT owed (MM 12.5). Liquidation (level 1) needs collateral
    112.5: 100 + 0.5·(1000·m − 100) -> m = 0.125; the margin call (1.5) 118.75 -> m = 0.1375."""
    t = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "ZZZ", free=1.0), balance(1, "USDT", borrowed=100.0)],
        prices=fresh_prices(NEW, ZZZ=1000.0),
        collateral_tiers=[tiers("ZZZ", [(0, 100, 1.0), (100, None, 0.5)])],
    )
    d = distances_of(t, NEW, 1)
    assert d["liquidation_drop"] == pytest.approx(0.875, rel=1e-12)
    assert d["margin_call_drop"] == pytest.approx(0.8625, rel=1e-12)
    assert d["liquidation_rise"] is None


def test_a_crossing_inside_a_piece_whose_end_has_no_margin() -> None:
    """Pro: 2 BTC held at 50 (BTC tiers [0, 50) × 1, [50, 200) × 0.8), 1 BTC owed (MM 10 %), a BUY of
    1 BTC at 25 USDT. Below m = 0.5 (a tier bound and the order's loss turning on, tied) the level is
    (100m − 50m − (25 − 50m)) / 5m = 20 − 5/m: at m = 0 the margin is 0 (level +inf), yet the level
    crossed before: liquidation (1.0) at m = 5/19, margin call (1.5) at m = 5/18.5."""
    t = tables(
        accounts=[account(4, "pro")],
        balances=[balance(4, "BTC", free=2.0, borrowed=1.0), balance(4, "USDT")],
        open_orders=[order(4, 1, "BTC", "USDT", "BUY", 25.0, 1.0)],
        prices=fresh_prices(NEW, BTC=50.0),
        collateral_tiers=[tiers("BTC", [(0, 50, 1.0), (50, 200, 0.8), (200, None, 0.5)])],
        liability_brackets=[brackets("BTC", [(0, 100, 0.1, 0.2), (100, None, 0.2, 0.4)])],
    )
    d = distances_of(t, NEW, 4)
    assert d["liquidation_drop"] == pytest.approx(1 - 5 / 19, rel=1e-12)
    assert d["margin_call_drop"] == pytest.approx(1 - 5 / 18.5, rel=1e-12)


@pytest.mark.parametrize("owed", [1e-12, 1e-300])
def test_a_crossing_next_to_the_end_of_a_drop(owed: float) -> None:
    """Classic 3x: 2 BTC held at 50, 1 BTC and a tiny amount of USDC owed. The level
    100m / (50m + owed) stays near 2 until m is tiny: liquidation (1.1) at m = 1.1·owed / 45, margin call
    (1.3) at 1.3·owed / 35 — just before the end of the drop, where only the stable debt is left (for
    1e-300 owed, at the end itself in float64: a drop of 1)."""
    t = tables(
        accounts=[account(4, "classic", 3)],
        balances=[balance(4, "BTC", free=2.0, borrowed=1.0), balance(4, "USDC", borrowed=owed)],
        prices=fresh_prices(NEW, BTC=50.0, USDC=1.0),
        collateral_tiers=[
            tiers("BTC", [(0, 50, 1.0), (50, 200, 0.8), (200, None, 0.5)]),
            one_slice("USDC", 1.0),
        ],
        liability_brackets=[one_bracket("BTC", 0.1, 0.2), one_bracket("USDC", 0.1, 0.2)],
    )
    d = distances_of(t, NEW, 4)
    assert d["liquidation_drop"] == pytest.approx(1 - 1.1 * owed / 45, rel=1e-15)
    assert d["margin_call_drop"] == pytest.approx(1 - 1.3 * owed / 35, rel=1e-15)
