"""The scalar reference (tests/support/reference.py) against hand arithmetic from the rules, and the engine
against the reference on the same hand-built scenarios."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from crossmargin.policy import resolve
from support import reference as ref
from support.inputs import (
    COMPLIANT_AT,
    EPOCH,
    NEW,
    US,
    account,
    balance,
    brackets,
    one_bracket,
    one_slice,
    order,
    price,
    rows,
    switch,
    tiers,
)
from support.ref_compare import compare, consistency, run_both

JUST_OLD = NEW - dt.timedelta(seconds=1)
CUT = COMPLIANT_AT


def base_tables(**kw):
    """The reference's lists of rows: USDT, BTC at 30,000 and ETH at 3,000 (ticking prices), their
    collateral tiers and the brackets of docs/rules.md §1's worked example; `kw` replaces tables."""
    t = rows(
        prices={"USDT": 1.0, "BTC": 30_000.0, "ETH": 3_000.0},
        collateral_tiers=[one_slice("USDT", 1.0), one_slice("BTC", 0.95), one_slice("ETH", 0.9)],
        liability_brackets=[
            brackets(
                "BTC",
                [(0, 50_000, 0.05, 0.1112), (50_000, 100_000, 0.07, 0.1429), (100_000, None, 0.08, 0.20)],
            ),
            brackets("ETH", [(0, 30_000, 0.05, 0.1112), (30_000, None, 0.07, 0.1429)]),
            one_bracket("USDT", 0.125, 0.25),
        ],
        defaults=False,
    )
    t.update(kw)
    return t


def check_engine(tables, as_of):
    """Engine == reference on these tables (every output field), plus the engine's own consistency."""
    engine, reference, policy = run_both(tables, as_of)
    ids = {a["account_id"] for a in tables["accounts"]}
    errs = compare(engine, reference, policy, ids) + consistency(engine, ids)
    assert not errs, "\n".join(errs)
    return engine, reference


# ----------------------------------------------------------------------------- worked example (docs/rules.md §1)
def test_worked_example_maintenance_and_initial_margin():
    t = base_tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "BTC", borrowed=13), balance(1, "ETH", borrowed=13)],
    )
    r = ref.compute(t, resolve(NEW)).account_risk[1]
    assert math.isclose(r["maintenance_margin_usdt"], 31_330.0, rel_tol=1e-12)
    assert math.isclose(r["initial_margin_usdt"], 75_327.1, rel_tol=1e-12)
    assert r["total_liability_usdt"] == 13 * 30_000 + 13 * 3_000
    assert r["total_asset_usdt"] == 0.0 and r["collateral_usdt"] == 0.0
    check_engine(t, NEW)


def test_worked_example_bracket_row_order_does_not_matter():
    t = base_tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "BTC", borrowed=13), balance(1, "ETH", borrowed=13)],
    )
    t["liability_brackets"] = list(reversed(t["liability_brackets"]))
    r = ref.compute(t, resolve(NEW)).account_risk[1]
    assert math.isclose(r["maintenance_margin_usdt"], 31_330.0, rel_tol=1e-12)
    assert math.isclose(r["initial_margin_usdt"], 75_327.1, rel_tol=1e-12)
    check_engine(t, NEW)


def test_tiered_function_by_hand():
    s = tiers("X", [(0, 100, 1.0), (100, 1000, 0.5), (1000, None, 0.25)])
    assert ref.tiered(0.0, s, "collateral_ratio") == 0.0
    assert ref.tiered(50.0, s, "collateral_ratio") == 50.0
    assert ref.tiered(100.0, s, "collateral_ratio") == 100.0
    assert ref.tiered(600.0, s, "collateral_ratio") == 100.0 + 250.0
    assert ref.tiered(5000.0, s, "collateral_ratio") == 100.0 + 450.0 + 1000.0


# ----------------------------------------------------------------------------- levels and decisions
def test_empty_account_is_valid_with_infinite_levels():
    t = base_tables(accounts=[account(1), account(2, "pro")])
    res = ref.compute(t, resolve(NEW))
    assert set(res.account_risk) == {1, 2} and not res.issues
    for r in res.account_risk.values():
        for c in [
            "classic_margin_level",
            "classic_collateral_margin_level",
            "pro_margin_level_old",
            "pro_margin_level_new",
            "pro_margin_level",
            "margin_level",
        ]:
            assert r[c] == math.inf
        assert not r["margin_call"] and not r["liquidation"]
    check_engine(t, NEW)


@pytest.mark.parametrize(
    "lev,free,borrowed,mc,liq",
    [
        (3, 13, 10, True, False),  # 1.3 <= 1.3 margin call (knife edge, exact)
        (3, 14, 10, False, False),
        (3, 11, 10, True, True),  # 1.1 <= 1.1 liquidation
        (3, 12, 10, True, False),
        (5, 23, 20, True, False),  # 1.15 <= 1.15
        (5, 24, 20, False, False),
        (5, 11, 10, True, True),
        (5, 115, 100, True, False),  # 115/100 == 1.15 in float64, but 1.15 * 100 < 115: no rearranging
        (3, 0, 10, True, True),
    ],
)
def test_classic_margin_call_and_liquidation_knife_edges(lev, free, borrowed, mc, liq):
    t = base_tables(
        accounts=[account(1, "classic", lev)], balances=[balance(1, "USDT", free=free, borrowed=borrowed)]
    )
    r = ref.compute(t, resolve(NEW)).account_risk[1]
    assert r["classic_margin_level"] == free / borrowed
    assert (r["margin_call"], r["liquidation"]) == (mc, liq)
    check_engine(t, NEW)


def test_negative_numerator_zero_denominator_is_plus_inf():
    # collateral ratio 0 and no liability: Pro new level numerator = 0 - OOL < 0, denominator 0
    t = base_tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "BTC", free=1)],
        open_orders=[order(1, 7, "BTC", "USDT", "BUY", 40_000, 1)],
    )
    r = ref.compute(t, resolve(NEW)).account_risk[1]
    assert r["open_order_loss_usdt"] == 40_000 * 1.0 - 30_000 * 0.95
    assert r["pro_margin_level_new"] == math.inf
    check_engine(t, NEW)


def test_open_order_loss_non_usdt_quote():
    # ETH/BTC SELL 2 ETH at 0.09 BTC: given = 2*3000*0.9 = 5400; received = 2*0.09*30000*0.95 = 5130
    t = base_tables(accounts=[account(1, "pro")], open_orders=[order(1, 1, "ETH", "BTC", "SELL", 0.09, 2)])
    r = ref.compute(t, resolve(NEW)).account_risk[1]
    assert math.isclose(r["open_order_loss_usdt"], 5400 - 2 * 0.09 * 30_000 * 0.95, rel_tol=1e-12)
    check_engine(t, NEW)


def test_pro_levels_old_and_new_and_available_margin():
    # A = 20000 USDT + 1 BTC (30000) = 50000 ; L = 10 ETH = 30000 ; collateral = 20000 + 28500 = 48500
    t = base_tables(
        accounts=[account(1, "pro")],
        balances=[
            balance(1, "USDT", free=20_000),
            balance(1, "BTC", locked=1),
            balance(1, "ETH", borrowed=9, interest=1),
        ],
        open_orders=[order(1, 1, "BTC", "USDT", "BUY", 31_000, 0.5)],
    )
    for as_of in (JUST_OLD, NEW):
        pol = resolve(as_of)
        r = ref.compute(t, pol).account_risk[1]
        mm = 30_000 * 0.05
        im = 30_000 * 0.1112
        ool = 0.5 * 31_000 - 0.5 * 30_000 * 0.95
        assert r["maintenance_margin_usdt"] == mm
        assert math.isclose(r["pro_margin_level_old"], 20_000 / mm, rel_tol=1e-15)
        assert math.isclose(r["pro_margin_level_new"], (48_500 - 30_000 - ool) / mm, rel_tol=1e-12)
        if as_of == NEW:
            assert r["pro_margin_level"] == r["pro_margin_level_new"]
            assert math.isclose(r["pro_available_margin_usdt"], 48_500 - 30_000 - ool - im, rel_tol=1e-12)
        else:
            assert r["pro_margin_level"] == r["pro_margin_level_old"]
            assert math.isclose(r["pro_available_margin_usdt"], 48_500 - 30_000 - im, rel_tol=1e-12)
        check_engine(t, as_of)


def test_partial_repayment_formula():
    # non-compliant Pro 3x, A = 1200, L = 1000 -> classic level 1.2 < 1.3; x = (1.5*1000 - 1200)/0.5 = 600
    t = base_tables(
        accounts=[account(1, "pro", 3, questionnaire_completed_at=None)],
        balances=[balance(1, "USDT", free=1200, borrowed=1000)],
    )
    for as_of, pending in ((CUT, True), (dt.datetime(2025, 1, 15, tzinfo=dt.UTC), False)):
        res = ref.compute(t, resolve(as_of))
        r = res.account_risk[1]
        assert r["due_for_migration"] and r["migrate_now"] is (not pending)
        assert math.isclose(r["partial_repayment_usdt"], 600.0, rel_tol=1e-12)
        assert (1, "PARTIAL_REPAYMENT", None, r["partial_repayment_usdt"]) in res.actions
        assert (1, "MIGRATE_TO_CLASSIC", "pending" if pending else "due", None) in res.actions
        check_engine(t, as_of)
    # just before the questionnaire cut: not due, no repayment
    r = ref.compute(t, resolve(CUT - US)).account_risk[1]
    assert not r["due_for_migration"] and r["partial_repayment_usdt"] == 0.0
    check_engine(t, CUT - US)


def test_compliance_boundaries():
    as_of = dt.datetime(2024, 12, 20, tzinfo=dt.UTC)
    accounts = [
        # (questionnaire, terms): compliant, first instant
        account(1, "pro", questionnaire_completed_at=CUT, terms_agreed_at=CUT),
        # questionnaire too early
        account(2, "pro", questionnaire_completed_at=CUT - US, terms_agreed_at=CUT),
        # terms exactly at as_of: compliant
        account(3, "pro", questionnaire_completed_at=CUT, terms_agreed_at=as_of),
        # terms after as_of: not compliant
        account(4, "pro", questionnaire_completed_at=CUT, terms_agreed_at=as_of + US),
        account(5, "pro", questionnaire_completed_at=None, terms_agreed_at=CUT),
    ]
    t = base_tables(
        accounts=accounts, balances=[balance(a["account_id"], "USDT", free=100) for a in accounts]
    )
    res = ref.compute(t, resolve(as_of))
    got = {a: (r["pro_compliant"], r["borrow_blocked_reason"]) for a, r in res.account_risk.items()}
    assert got == {
        1: (True, None),
        2: (False, "pro_not_compliant"),
        3: (True, None),
        4: (False, "pro_not_compliant"),
        5: (False, "pro_not_compliant"),
    }
    check_engine(t, as_of)


def test_switch_window_both_ends_inclusive():
    as_of = dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC)
    day = dt.datetime(2025, 1, 21, tzinfo=dt.UTC)
    sw = [switch(1, s) for s in (day - US, day, as_of, as_of + US, day + dt.timedelta(hours=1))]
    sw += [switch(2, day) for _ in range(6)]
    t = base_tables(accounts=[account(1), account(2)], mode_switches=sw)
    res = ref.compute(t, resolve(as_of))
    assert res.account_risk[1]["switches_left_today"] == 2
    assert res.account_risk[2]["switches_left_today"] == 0
    check_engine(t, as_of)


def test_eligibility_new_and_old():
    t = base_tables(
        accounts=[
            account(1),
            account(2, country="US", pro_quiz_passed=False),
            account(3, terms_agreed_at=None),
        ],
        balances=[balance(a, "USDT", free=5000.0 + (a == 1)) for a in (1, 2, 3)],
    )
    res = ref.compute(t, resolve(NEW))
    assert res.account_risk[1]["eligible_for_pro"] and res.account_risk[1]["pro_ineligible_reasons"] == []
    assert res.account_risk[2]["pro_ineligible_reasons"] == [
        "pro_quiz_passed",
        "net_equity",
        "country_not_restricted",
    ]
    assert res.account_risk[3]["pro_ineligible_reasons"] == ["terms_agreed", "net_equity"]
    check_engine(t, NEW)
    res = ref.compute(t, resolve(JUST_OLD))
    assert res.account_risk[2]["pro_ineligible_reasons"] == ["pro_quiz_passed", "country_not_restricted"]
    assert res.account_risk[3]["eligible_for_pro"]
    check_engine(t, JUST_OLD)


# ----------------------------------------------------------------------------- data issues
def test_data_issues_partition():
    t = base_tables(
        accounts=[
            account(1),
            account(2),
            account(2),
            account(3, "margin"),
            account(4, classic_leverage=4),
            account(5),
            account(6),
            account(7),
            account(8),
            account(9),
        ],
        balances=[
            balance(1, "DOGE"),  # all-zero row: needs nothing
            balance(5, "DOGE", free=1),  # missing price
            balance(6, "USDT", free=-1),
            balance(7, "USDT", free=1),
            balance(7, "USDT", free=2),
            balance(8, "USDT", interest=math.nan),
            balance(99, "USDT", free=1),  # unknown account
        ],
        open_orders=[order(9, 1, "BTC", "USDT", "HOLD", 1, 1)],
    )
    res = ref.compute(t, resolve(NEW))
    assert set(res.account_risk) == {1}
    assert res.issue_accounts == {2, 3, 4, 5, 6, 7, 8, 9, 99}
    check_engine(t, NEW)


def test_bad_tier_tables_only_matter_when_used():
    t = base_tables(
        accounts=[account(1), account(2), account(3), account(4)],
        balances=[
            balance(1, "BNB", free=1),
            balance(2, "BNB", borrowed=1),
            balance(3, "SOL", free=1),
            balance(4, "SOL", borrowed=1),
        ],
        prices=base_tables()["prices"] + [*price("BNB", 600), *price("SOL", 100)],
    )
    # BNB: gap in collateral tiers; SOL: liability brackets last slice bounded (and an older, good version)
    t["collateral_tiers"] += [
        *tiers("BNB", [(0, 100, 1.0), (200, None, 0.5)]),
        *one_slice("SOL", 0.8),
    ]
    t["liability_brackets"] += [
        *one_bracket("BNB", 0.1, 0.2),
        *one_bracket("SOL", 0.1, 0.2, EPOCH),
        *brackets("SOL", [(0, 1000, 0.1, 0.2)], EPOCH + dt.timedelta(days=1)),
    ]
    res = ref.compute(t, resolve(NEW))
    assert set(res.account_risk) == {2, 3} and res.issue_accounts == {1, 4}
    check_engine(t, NEW)


def test_effective_from_picks_latest_version_not_after_as_of():
    later = NEW + US
    t = base_tables(accounts=[account(1)], balances=[balance(1, "BTC", free=1)])
    t["collateral_tiers"] += [*one_slice("BTC", 0.5, NEW), *one_slice("BTC", 0.1, later)]
    assert ref.compute(t, resolve(NEW)).account_risk[1]["collateral_usdt"] == 15_000.0
    assert ref.compute(t, resolve(later)).account_risk[1]["collateral_usdt"] == 3_000.0
    assert ref.compute(t, resolve(NEW - US)).account_risk[1]["collateral_usdt"] == 28_500.0
    for as_of in (NEW - US, NEW, later):
        check_engine(t, as_of)


@pytest.mark.parametrize("bad_price", [math.nan, math.inf])
def test_all_zero_row_needs_no_price_even_a_non_finite_one(bad_price):
    """docs/rules.md §6: 'a balance row that is all zeros needs nothing' -- so an unusable price of that asset
    must not make the account a data issue (the engine once summed 0 * NaN into the account)."""
    t = base_tables(accounts=[account(1)], balances=[balance(1, "USDT", free=10), balance(1, "DOGE")])
    t["prices"] += price("DOGE", bad_price)
    res = ref.compute(t, resolve(NEW))
    assert set(res.account_risk) == {1} and not res.issues
    assert res.account_risk[1]["total_asset_usdt"] == 10.0
    check_engine(t, NEW)
