"""Property tests: the vectorized engine (crossmargin.pipeline.compute) against the independent scalar
reference (tests/reference.py) on small, adversarial, hypothesis-generated inputs.

Generated: a handful of assets with prices (incl. 0, several priced_at around as_of), multi-slice
collateral tiers and liability brackets with several effective_from versions (sometimes corrupted:
gap, overlap, rate outside [0, 1], bounded last slice, not starting at 0), accounts of both modes
and leverages with compliance timestamps around 2024-12-17, balances (mostly exact "nice" numbers
so that levels hit thresholds exactly, sometimes random floats), open orders on several pairs incl.
non-USDT quotes, mode switches around the start of the UTC day, and as_of drawn around every policy
date. Rarely: bad rows of every data-issue kind.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

try:
    import reference as ref
    from ref_compare import STATS, compare, consistency, run_both
except ImportError:  # tests/ imported as a package
    from tests import reference as ref  # type: ignore[no-redef]
    from tests.ref_compare import STATS, compare, consistency, run_both  # type: ignore[no-redef]

pytest.importorskip("crossmargin.pipeline")

UTC = dt.UTC
US = dt.timedelta(microseconds=1)
SEC = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)
EPOCH = dt.datetime(2020, 1, 1, tzinfo=UTC)
CUT = dt.datetime(2024, 12, 17, tzinfo=UTC)
POLICY_DATES = [
    CUT,
    dt.datetime(2024, 12, 19, tzinfo=UTC),
    dt.datetime(2025, 1, 15, tzinfo=UTC),
    dt.datetime(2025, 1, 21, 10, tzinfo=UTC),
]
ASSETS = ["USDT", "BTC", "ETH", "BNB", "DOGE"]
COUNTRIES = ["FR", "DE", "SG", "US", "CA", "NL"]


def weighted(*pairs):
    """st.one_of with integer weights: weighted((3, a), (1, b))."""
    return st.integers(0, sum(w for w, _ in pairs) - 1).flatmap(lambda i: _pick(pairs, i))


def _pick(pairs, i):
    for w, s in pairs:
        if i < w:
            return s
        i -= w
    raise AssertionError


# ----------------------------------------------------------------------------- scalar strategies
as_ofs = st.one_of(
    st.builds(
        lambda d, o: d + o,
        st.sampled_from(POLICY_DATES),
        st.sampled_from([-DAY, -SEC, -US, dt.timedelta(0), US, SEC, DAY, dt.timedelta(hours=13, minutes=7)]),
    ),
    st.just(dt.datetime(2025, 1, 21, 9, 59, 59, tzinfo=UTC)),
    st.just(dt.datetime(2025, 1, 21, 10, 0, 0, tzinfo=UTC)),
    st.integers(0, 60 * 24 * 90).map(lambda m: dt.datetime(2024, 12, 1, tzinfo=UTC) + dt.timedelta(minutes=m)),
)

nice = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 10.0, 11.0, 13.0, 15.0, 20.0, 23.0, 100.0, 1250.0, 5000.0, 0.125])
money = weighted(
    (5, st.just(0.0)),
    (4, nice),
    (3, st.integers(1, 20_000).map(float)),
    (2, st.floats(min_value=1e-6, max_value=1e5, allow_nan=False, allow_infinity=False)),
)
bad_number = st.sampled_from([-1.0, -1e-9, math.nan, math.inf, -math.inf])
quantity = weighted((60, money), (1, bad_number))
price_value = weighted(
    (2, st.just(0.0)),
    (6, st.sampled_from([1.0, 0.5, 2.0, 3000.0, 30000.0, 0.1, 600.0])),
    (3, st.floats(min_value=1e-4, max_value=1e5, allow_nan=False, allow_infinity=False)),
)
ratio = weighted(
    (4, st.sampled_from([0.0, 0.5, 0.9, 0.95, 1.0, 0.125, 0.25])),
    (2, st.floats(min_value=0.0, max_value=1.0, allow_nan=False)),
)
mm_rate = weighted(
    (4, st.sampled_from([0.0, 0.05, 0.07, 0.08, 0.1, 0.125, 0.25, 0.5, 1.0])),
    (1, st.floats(min_value=0.0, max_value=1.0, allow_nan=False)),
)
boundaries = st.lists(
    weighted((3, st.sampled_from([10.0, 50.0, 100.0, 1000.0, 5000.0, 50_000.0])), (1, st.floats(1e-3, 1e6))),
    max_size=3,
    unique=True,
).map(sorted)


# ----------------------------------------------------------------------------- tables
@st.composite
def tier_versions(draw, asset, as_of, kind):
    """Rows of 0–3 effective_from versions of one asset's collateral tiers ('c') or brackets ('l')."""
    offsets = draw(
        st.lists(
            st.sampled_from([None, -DAY, -US, dt.timedelta(0), US, DAY]),
            min_size=0,
            max_size=2,
            unique=True,
        )
    )
    rows = []
    for off in offsets:
        eff = EPOCH if off is None else as_of + off
        cuts = draw(boundaries)
        los = [0.0] + cuts
        ups = cuts + [None]
        slices = []
        for lo, up in zip(los, ups):
            s = {"asset": asset, "effective_from": eff, "lower_usdt": lo, "upper_usdt": up}
            if kind == "c":
                s["collateral_ratio"] = draw(ratio)
            else:
                s["maintenance_margin_rate"] = draw(mm_rate)
                s["initial_margin_rate"] = draw(mm_rate)
                s["leverage"] = draw(st.sampled_from([3.0, 5.0, 10.0, 20.0, math.nan, -1.0]))  # not validated
            slices.append(s)
        corruption = draw(weighted((25, st.just(None)), (1, st.sampled_from(["gap", "overlap", "rate", "bounded", "start", "dup"]))))
        if corruption == "gap" and len(slices) > 1:
            slices[1]["lower_usdt"] = slices[0]["upper_usdt"] + 1.0
        elif corruption == "overlap" and len(slices) > 1:
            slices[1]["lower_usdt"] = slices[0]["upper_usdt"] / 2
        elif corruption == "rate":
            key = "collateral_ratio" if kind == "c" else draw(st.sampled_from(["maintenance_margin_rate", "initial_margin_rate"]))
            slices[draw(st.integers(0, len(slices) - 1))][key] = draw(st.sampled_from([1.5, -0.1, 1.0000001]))
        elif corruption == "bounded":
            slices[-1]["upper_usdt"] = slices[-1]["lower_usdt"] + 100.0
        elif corruption == "start":
            slices[0]["lower_usdt"] = min(1.0, (slices[0]["upper_usdt"] or 2.0) / 2)
        elif corruption == "dup":
            slices.append(dict(slices[-1]))
        rows += draw(st.permutations(slices))
    return rows


@st.composite
def scenarios(draw):
    as_of = draw(as_ofs)
    day = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    assets = ASSETS

    # ---- reference data (each asset lacks a usable price / tiers / brackets only rarely)
    rarely_missing = weighted((24, st.just(False)), (1, st.just(True)))
    prices = []
    for a in assets:
        offs = draw(
            st.lists(st.sampled_from([-DAY, -SEC, -US, dt.timedelta(0), US, DAY]), min_size=1, max_size=3, unique=True)
        )
        missing = draw(rarely_missing)
        if missing:
            offs = [o for o in offs if o > dt.timedelta(0)]
        elif all(o > dt.timedelta(0) for o in offs):
            offs.append(-2 * DAY)
        for o in offs:
            p = 1.0 if a == "USDT" and draw(weighted((6, st.just(True)), (1, st.just(False)))) else draw(price_value)
            prices.append({"asset": a, "price_usdt": p, "priced_at": as_of + o})
    ctiers, lbrackets = [], []
    for a in assets:
        c = draw(tier_versions(a, as_of, "c"))
        if not draw(rarely_missing):
            c.append({"asset": a, "effective_from": EPOCH - DAY, "lower_usdt": 0.0, "upper_usdt": None,
                      "collateral_ratio": draw(ratio)})
        ctiers += c
        lb = draw(tier_versions(a, as_of, "l"))
        if not draw(rarely_missing):
            lb.append({"asset": a, "effective_from": EPOCH - DAY, "lower_usdt": 0.0, "upper_usdt": None, "leverage": 4.0,
                       "maintenance_margin_rate": draw(mm_rate), "initial_margin_rate": draw(mm_rate)})
        lbrackets += lb

    # ---- accounts
    stamp = weighted(
        (3, st.just(CUT)),
        (2, st.sampled_from([None, CUT - US, CUT + US, as_of, as_of + US, as_of - DAY])),
        (1, st.integers(-30 * 24, 30 * 24).map(lambda h: CUT + dt.timedelta(hours=h))),
    )
    n = draw(st.integers(1, 6))
    ids = draw(st.lists(st.integers(1, 10**12), min_size=n, max_size=n, unique=True))
    accounts = []
    for aid in ids:
        accounts.append(
            {
                "account_id": aid,
                "margin_mode": draw(weighted((30, st.sampled_from(["classic", "pro"])), (1, st.sampled_from(["Pro", "margin", ""])))),
                "classic_leverage": draw(weighted((30, st.sampled_from([3, 5])), (1, st.sampled_from([4, 10, 0])))),
                "cross_margin_activated": draw(weighted((4, st.just(True)), (1, st.just(False)))),
                "pro_quiz_passed": draw(weighted((4, st.just(True)), (1, st.just(False)))),
                "questionnaire_completed_at": draw(stamp),
                "terms_agreed_at": draw(stamp),
                "country": draw(st.sampled_from(COUNTRIES)),
            }
        )
    if draw(weighted((20, st.just(False)), (1, st.just(True)))):
        dup = dict(draw(st.sampled_from(accounts)))
        dup["margin_mode"] = draw(st.sampled_from(["classic", "pro"]))
        accounts.insert(draw(st.integers(0, len(accounts))), dup)

    # ---- balances, orders, switches
    balances, orders, switches = [], [], []
    oid = 0
    for aid in ids:
        shape = draw(weighted((3, st.just("random")), (1, st.just("knife"))))
        if shape == "knife":  # USDT-only account whose levels land exactly on a threshold
            free, borrowed = draw(
                st.sampled_from([(13, 10), (11, 10), (15, 10), (23, 20), (5, 4), (3, 2), (2, 1), (1, 1), (12, 10),
                                 (5000, 0), (10000, 5000), (5001, 1), (0, 0), (10, 0)])
            )
            balances.append({"account_id": aid, "asset": "USDT", "free": float(free), "locked": 0.0,
                             "borrowed": float(borrowed), "interest": 0.0})
        else:
            for a in draw(st.lists(st.sampled_from(assets), max_size=4, unique=True)):
                balances.append({"account_id": aid, "asset": a, "free": draw(quantity), "locked": draw(quantity),
                                 "borrowed": draw(weighted((2, st.just(0.0)), (1, quantity))),
                                 "interest": draw(weighted((3, st.just(0.0)), (1, quantity)))})
            if balances and balances[-1]["account_id"] == aid and draw(weighted((30, st.just(False)), (1, st.just(True)))):
                balances.append(dict(balances[-1]))  # duplicate (account_id, asset)
        for _ in range(draw(st.integers(0, 3))):
            base, quote = draw(st.lists(st.sampled_from(assets), min_size=2, max_size=2, unique=True))
            oid += 1
            orders.append({"account_id": aid, "order_id": oid, "base_asset": base, "quote_asset": quote,
                           "side": draw(weighted((40, st.sampled_from(["BUY", "SELL"])), (1, st.sampled_from(["buy", "HOLD"])))),
                           "price": draw(weighted((30, price_value), (1, bad_number))), "remaining_qty": draw(quantity)})
        for _ in range(draw(weighted((2, st.just(0)), (2, st.integers(1, 7))))):
            at = draw(
                st.sampled_from([day - US, day, day + SEC, as_of - US, as_of, as_of + US, day - DAY,
                                 day + (as_of - day) / 2])
            )
            switches.append({"account_id": aid, "switched_at": at})

    # ---- rows of unknown accounts (rare)
    if draw(weighted((15, st.just(False)), (1, st.just(True)))):
        ghost = max(ids) + 1
        table = draw(st.sampled_from(["balances", "open_orders", "mode_switches"]))
        if table == "balances":
            balances.append({"account_id": ghost, "asset": "USDT", "free": 1.0, "locked": 0.0, "borrowed": 0.0, "interest": 0.0})
        elif table == "open_orders":
            orders.append({"account_id": ghost, "order_id": 10**6, "base_asset": "BTC", "quote_asset": "USDT",
                           "side": "BUY", "price": 1.0, "remaining_qty": 1.0})
        else:
            switches.append({"account_id": ghost, "switched_at": as_of})

    balances = draw(st.permutations(balances))
    orders = draw(st.permutations(orders))
    tables = {
        "accounts": accounts,
        "balances": balances,
        "prices": draw(st.permutations(prices)),
        "open_orders": orders,
        "mode_switches": switches,
        "collateral_tiers": ctiers,
        "liability_brackets": lbrackets,
    }
    return as_of, tables


def _describe(tables, as_of):
    lines = [f"as_of = {as_of.isoformat()}"]
    for name, rows in tables.items():
        lines.append(f"{name}:")
        lines += [f"  {r}" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- properties
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@SETTINGS
@given(scenarios())
def test_engine_matches_reference(scenario):
    as_of, tables = scenario
    engine, reference, policy = run_both(tables, as_of)
    ids = {a["account_id"] for a in tables["accounts"]}
    errs = compare(engine, reference, policy, ids)
    event(f"valid accounts: {min(len(reference.account_risk), 3)}+")
    event("new policy" if policy.new_formula else "old policy")
    assert not errs, "\n".join(errs) + "\n" + _describe(tables, as_of)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_outputs_partition_accounts_and_actions_follow_flags(scenario):
    as_of, tables = scenario
    from crossmargin.pipeline import compute
    from crossmargin.policy import resolve

    try:
        from ref_compare import to_frames
    except ImportError:
        from tests.ref_compare import to_frames  # type: ignore[no-redef]

    engine = compute(to_frames(tables), resolve(as_of))
    ids = {a["account_id"] for a in tables["accounts"]}
    errs = consistency(engine, ids)
    assert not errs, "\n".join(errs) + "\n" + _describe(tables, as_of)


def test_zz_knife_edge_skips_are_rare():
    """Booleans skipped at knife edges (levels not bit-identical near a threshold) must stay rare."""
    if STATS.accounts_compared == 0:
        pytest.skip("no comparison ran in this session")
    assert STATS.knife_edge_skips <= max(2, 0.02 * STATS.accounts_compared), (STATS.knife_edge_skips, STATS.skipped)
