"""Distances to thresholds (docs/rules.md §8.2) against the scalar reference (tests/support/reference.py
valued at moved prices): at each reported distance the level is at the threshold (relative 1e-9), no
point of a dense grid between 0 and it crosses, and where nothing is reported no grid point crosses
either. The property draws its thresholds too (a `--policy` file): a margin call below, at or above the
liquidation threshold, for Classic 3x, 5x and Pro each, so the margin-call distances are checked
against the larger of the two under any policy. A book of breakpoints that tie is checked the same
way. Every price is fresh: priced one hour before as_of.
"""

from __future__ import annotations

import datetime as dt
import math
import os
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
    LEVERAGES,
    MODES,
    NEW,
    OLD,
    SIDES,
    account,
    amounts,
    balance,
    brackets,
    fresh_prices,
    one_bracket,
    one_slice,
    order,
    run,
    tables,
    threshold_policies,
    tiers,
    written_policy,
)

COLUMNS = DISTANCE_COLUMNS


# ----------------------------------------------------------------------------- random books

ASSET_UNITS = {"USDT": 1000.0, "USDC": 1000.0, "BTC": 5.0, "ETH": 50.0}
PAIRS = [("BTC", "USDT"), ("ETH", "USDT"), ("ETH", "BTC"), ("BTC", "USDC")]
DROP_GRID = [i / 200 for i in range(1, 201)]
RISE_GRID = [10 * i / 200 for i in range(1, 201)]


@st.composite
def books(draw):
    as_of = draw(st.sampled_from([NEW, OLD]))
    btc, eth, usdc = draw(st.floats(50, 200)), draw(st.floats(5, 20)), draw(st.floats(0.9, 1.1))
    accounts, balances, orders = [], [], []
    oid = 0
    for aid in range(1, draw(st.integers(1, 4)) + 1):
        accounts.append(account(aid, draw(MODES), draw(LEVERAGES)))
        for asset in draw(st.lists(st.sampled_from(list(ASSET_UNITS)), min_size=1, max_size=4, unique=True)):
            scale = ASSET_UNITS[asset]
            balances.append(balance(aid, asset, free=draw(amounts(scale)), borrowed=draw(amounts(scale / 2))))
        for _ in range(draw(st.integers(0, 2))):
            base, quote = draw(st.sampled_from(PAIRS))
            index = {"BTC": btc, "ETH": eth, "USDT": 1.0, "USDC": usdc}
            limit = index[base] / index[quote] * draw(st.floats(0.5, 1.5))
            oid += 1
            side = draw(SIDES)
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
    with written_policy(policy_text) as policy_file:
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


# ----------------------------------------------------------------------------- breakpoints that tie


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
