"""What it would take (docs/rules.md §9) against the scalar reference (tests/support/reference.py:
deposit, score again, search), on random books and random policies (a policy file): engine and
reference agree; at a reported top-up the level is at its threshold (relative 1e-9) and a hair below it
the condition fails; cancelling the reported k orders lifts the level and k − 1 do not.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import Any

import polars as pl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crossmargin.policy import Policy, resolve
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
    one_bracket,
    one_slice,
    order,
    price,
    run,
    tables,
    threshold_policies,
    tiers,
    written_policy,
)
from support.ref_compare import compare

H = dt.timedelta(hours=1)


# ----------------------------------------------------------------------------- random books

ASSET_UNITS = {"USDT": 20_000.0, "BTC": 2.0, "ETH": 20.0}
PAIRS = [("BTC", "USDT"), ("ETH", "USDT"), ("ETH", "BTC")]
USDT_BOUNDS = [100.0, 1000.0, 5000.0, 20_000.0]
USDT_RATIOS = [1.0, 0.9, 0.5, 0.25, 0.0]
NOTIONALS = [100.0, 1000.0, 5000.0, 20_000.0]  # an order's size in USDT at index prices


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
        accounts.append(account(aid, draw(MODES), draw(LEVERAGES)))
        assets = draw(st.lists(st.sampled_from(list(ASSET_UNITS)), min_size=1, max_size=3, unique=True))
        for asset in assets:  # USDT absent sometimes: a deposit is then a USDT row of its own
            scale = ASSET_UNITS[asset]
            balances.append(balance(aid, asset, free=draw(amounts(scale)), borrowed=draw(amounts(scale))))
        for _ in range(draw(st.integers(0, 3))):
            base, quote = draw(st.sampled_from(PAIRS))
            index = {"BTC": btc, "ETH": eth, "USDT": 1.0}
            limit = index[base] / index[quote] * draw(st.sampled_from([0.5, 0.9, 1.0, 1.2, 2.0]))
            oid += 1
            side = draw(SIDES)
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
@given(books(), threshold_policies(with_irr_and_activation=True))
def test_what_it_would_take_against_the_reference(book, policy_text: str) -> None:
    as_of, t = book
    with written_policy(policy_text) as path:
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
