"""Every comparison of docs/rules.md §4 (and the +inf rule of §1), exactly at, just above and just below it.

Literal one- or few-account input frames (tests/support/inputs.py) go through
`crossmargin.engine.score(tables, policy)`; each case asserts the exact flag / value.

Exactness: levels are made with power-of-two denominators (liability 128 USDT for Classic levels, a
maintenance margin of 128 = 0.125 * 1024 for Pro levels), so the engine's one float64 division gives
exactly the threshold's float64 value ("at"), or exactly its neighbour ("ulp above/below", via
math.nextafter on the numerator's amount). Integer +/-1 cases use round numbers (130/100 == 1.3 in
float64, since the division is correctly rounded).

Shared fixture assets: USDT (price 1, ratio 1, bracket MMR 0.125 / IMR 0.25, frames' defaults) and
XXX (price 1, collateral ratio 0): holding XXX raises total asset / net equity but not collateral,
and a BUY XXX/USDT order at price p for qty 1 has open-order loss exactly p (given p*1*1, received 1*1*0).
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from crossmargin.io import schemas
from support.inputs import (
    BORROW_DISABLED_FROM,
    COMPLIANCE_FROM,
    EPOCH,
    INF,
    NEW,
    NEW_FORMULA_FROM,
    OLD,
    SWITCHED_FROM,
    US,
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
    switch,
    tables,
    tiers,
    ts,
)

X = "XXX"
UP, DOWN = math.inf, -math.inf
AS = ts("2025-01-16T12:00:00Z")  # old formula, after every compliance date (migrate_now holds)


def nxt(x: float, direction: float) -> float:
    return math.nextafter(x, direction)


def book(
    acc: dict,
    usdt_free: float = 0.0,
    usdt_borrowed: float = 0.0,
    *,
    x_held: float = 0.0,
    ool: float = 0.0,
    switches: list[dt.datetime] = (),
    usdt_interest: float = 0.0,
    usdt_locked: float = 0.0,
    usdt_brackets: list | None = None,
) -> dict[str, pl.DataFrame]:
    """One account: USDT balance, optional zero-ratio XXX holding, optional XXX/USDT order with loss `ool`."""
    aid = acc["account_id"]
    bals = [balance(aid, "USDT", usdt_free, usdt_locked, usdt_borrowed, usdt_interest)]
    if x_held:
        bals.append(balance(aid, X, free=x_held))
    orders = [order(aid, 1, X, "USDT", "BUY", ool, 1.0)] if ool else []
    return tables(
        accounts=[acc],
        balances=bals,
        open_orders=orders,
        mode_switches=[switch(aid, s) for s in switches],
        prices={X: 1.0},
        collateral_tiers=[one_slice(X, 0.0)],
        liability_brackets=[usdt_brackets] if usdt_brackets else [],
    )


def around(at: float, expect_at, expect_above, expect_below, *, unit: float = 1.0, pre: tuple = ()):
    """pytest.params (*pre, amount, expected) for an amount exactly at / 1 ulp above / 1 ulp below /
    +-unit around `at`."""
    tag = "-".join(str(p) for p in pre) + ("-" if pre else "") + repr(at)
    return [
        pytest.param(*pre, at, expect_at, id=f"{tag}-at"),
        pytest.param(*pre, nxt(at, UP), expect_above, id=f"{tag}-ulp_above"),
        pytest.param(*pre, nxt(at, DOWN), expect_below, id=f"{tag}-ulp_below"),
        pytest.param(*pre, at + unit, expect_above, id=f"{tag}-plus_{unit:g}"),
        pytest.param(*pre, at - unit, expect_below, id=f"{tag}-minus_{unit:g}"),
    ]


# =============================================================== Classic margin call / liquidation
# classic_margin_level = A / L with L = 128: A = thr * 128 is exact, so A / 128 == thr exactly.
@pytest.mark.parametrize(
    ("lev", "amount", "expected"),
    # (margin_call, liquidation)
    around(1.3 * 128, (True, False), (False, False), (True, False), pre=(3,))
    + around(1.1 * 128, (True, True), (True, False), (True, True), pre=(3,))
    + around(1.15 * 128, (True, False), (False, False), (True, False), pre=(5,))
    + around(1.1 * 128, (True, True), (True, False), (True, True), pre=(5,)),
)
def test_classic_margin_call_and_liquidation(lev, amount, expected):
    r = run(book(account(1, "classic", lev), amount, 128.0), NEW)
    row = one(r, 1)
    assert row["classic_margin_level"] == amount / 128.0
    assert row["margin_level"] == row["classic_margin_level"]
    assert (row["margin_call"], row["liquidation"]) == expected
    acts = {a for a, _, _ in actions_of(r, 1)}
    mc, liq = expected
    assert ("LIQUIDATION" in acts) == liq
    assert ("MARGIN_CALL" in acts) == (mc and not liq)  # LIQUIDATION and then no MARGIN_CALL row


@pytest.mark.parametrize(
    ("mode", "A", "expected"),
    [
        ("classic", 108.0, (True, True)),  # 1.08 <= liquidation 1.1 although > margin call 1.05
        ("classic", 106.0, (True, True)),
        ("classic", 105.0, (True, True)),
        ("classic", 111.0, (False, False)),
        ("pro", 100.0 + 0.125 * 100 * 1.2, (True, True)),  # pro level 1.2 <= liquidation 1.25 > MC 1.1
        ("pro", 100.0 + 0.125 * 100 * 1.3, (False, False)),
    ],
)
def test_margin_call_true_when_liquidated_even_above_its_threshold(tmp_path, mode, A, expected):
    """Policy override with margin call below liquidation: liquidated accounts still get margin_call."""
    pol = tmp_path / "p.toml"
    pol.write_text(
        '[[version]]\nname = "test-mc-below-liq"\neffective_from = 2024-01-01T00:00:00Z\n'
        "[version.classic.leverage.3]\nmargin_call = 1.05\n[version.pro]\nmargin_call = 1.1\nliquidation = 1.25\n"
    )
    r = run(book(account(1, mode, 3), A, 100.0), NEW, pol)
    row = one(r, 1)
    assert (row["margin_call"], row["liquidation"]) == expected
    acts = {a for a, _, _ in actions_of(r, 1)}
    assert ("LIQUIDATION" in acts) == expected[1] and "MARGIN_CALL" not in acts


def test_threshold_amounts_are_exact():
    """Self-check of the construction used above."""
    for thr in (1.3, 1.15, 1.1, 1.5, 1.25):
        a = thr * 128
        assert a / 128 == thr and nxt(a, UP) / 128 > thr and nxt(a, DOWN) / 128 < thr
    assert 130 / 100 == 1.3 and 115 / 100 == 1.15 and 110 / 100 == 1.1


@pytest.mark.parametrize(
    ("lev", "A", "expected"),
    [
        (3, 130.0, (True, False)),
        (3, 131.0, (False, False)),
        (3, 129.0, (True, False)),
        (3, 110.0, (True, True)),
        (3, 111.0, (True, False)),
        (5, 115.0, (True, False)),
        (5, 116.0, (False, False)),
        (5, 110.0, (True, True)),
        (5, 100.0, (True, True)),
        (5, 0.0, (True, True)),
    ],
)
def test_classic_levels_with_decimal_amounts(lev, A, expected):
    """L = 100: 130/100 == 1.3 in float64, the level is compared as output."""
    row = one(run(book(account(1, "classic", lev), A, 100.0), OLD), 1)
    assert row["classic_margin_level"] == A / 100.0
    assert (row["margin_call"], row["liquidation"]) == expected


# =============================================================== Pro margin call / liquidation
# USDT borrowed 1024 -> maintenance margin 0.125 * 1024 = 128, initial margin 256.
# Old formula: (A - 1024) / 128.  MC at A = 1024 + 1.5*128 = 1216, liquidation at A = 1152.
# The XXX/USDT order (loss 4096) sinks the new level far below, to show the old one is used.
@pytest.mark.parametrize(
    ("amount", "expected"),
    around(1216.0, (True, False), (False, False), (True, False))
    + around(1152.0, (True, True), (True, False), (True, True)),
)
def test_pro_margin_call_and_liquidation_old_formula(amount, expected):
    r = run(book(account(1, "pro"), amount, 1024.0, ool=4096.0), OLD)
    row = one(r, 1)
    assert row["maintenance_margin_usdt"] == 128.0
    assert row["pro_margin_level_old"] == (amount - 1024.0) / 128.0
    assert row["pro_margin_level_new"] == pytest.approx((amount - 1024.0 - 4096.0) / 128.0, rel=1e-12)
    assert row["pro_margin_level"] == row["pro_margin_level_old"]
    assert row["margin_level"] == row["pro_margin_level_old"]
    assert (row["margin_call"], row["liquidation"]) == expected
    acts = {(a, reason) for a, reason, _ in actions_of(r, 1) if a in ("MARGIN_CALL", "LIQUIDATION")}
    mc, liq = expected
    assert acts == ({("LIQUIDATION", "pro")} if liq else {("MARGIN_CALL", "pro")} if mc else set())


# New formula: (collateral - 1024 - OOL 64) / 128 with 10,000 XXX (ratio 0) lifting only the old level.
# MC at A = 1024 + 64 + 192 = 1280, liquidation at A = 1024 + 64 + 128 = 1216.
@pytest.mark.parametrize(
    ("amount", "expected"),
    around(1280.0, (True, False), (False, False), (True, False))
    + around(1216.0, (True, True), (True, False), (True, True)),
)
@pytest.mark.parametrize("lev", [3, 5])  # a Pro account's classic_leverage does not change Pro thresholds
def test_pro_margin_call_and_liquidation_new_formula(amount, expected, lev):
    r = run(book(account(1, "pro", lev), amount, 1024.0, x_held=10000.0, ool=64.0), NEW)
    row = one(r, 1)
    assert row["open_order_loss_usdt"] == 64.0
    assert row["collateral_usdt"] == amount
    assert row["pro_margin_level_new"] == (amount - 1024.0 - 64.0) / 128.0
    assert row["pro_margin_level_old"] == pytest.approx((amount + 10000.0 - 1024.0) / 128.0, rel=1e-12)
    assert row["pro_margin_level"] == row["pro_margin_level_new"]
    assert row["margin_level"] == row["pro_margin_level_new"]
    assert (row["margin_call"], row["liquidation"]) == expected


@pytest.mark.parametrize(
    ("as_of", "new"),
    [
        (ts("2025-01-21T09:59:59Z"), False),
        (NEW_FORMULA_FROM - US, False),
        (NEW_FORMULA_FROM, True),
        (NEW_FORMULA_FROM + US, True),
    ],
)
def test_pro_formula_switches_at_2025_01_21_10_00(as_of, new):
    # new level (1280 - 1024 - 64) / 128 = 1.5 (margin call); old level (1280 + 10000 - 1024) / 128 = 80.125
    r = run(book(account(1, "pro"), 1280.0, 1024.0, x_held=10000.0, ool=64.0), as_of)
    row = one(r, 1)
    assert row["pro_margin_level_new"] == 1.5  # both formulas are computed at every as_of
    assert row["pro_margin_level_old"] == 80.125
    assert row["pro_margin_level"] == (1.5 if new else 80.125)
    assert row["margin_level"] == row["pro_margin_level"]
    assert row["margin_call"] is new
    assert row["liquidation"] is False
    # available margin: new max(256 - 64 - 256, 0) = 0; old max(256 - 256, 0) = 0
    assert row["pro_available_margin_usdt"] == 0.0


# =============================================================== borrow block
# Classic: classic_collateral_margin_level = A / 128 (10,000 XXX of ratio 0 lift only the classic level)
@pytest.mark.parametrize(
    ("lev", "amount", "blocked"),
    around(1.5 * 128, True, False, True, pre=(3,)) + around(1.25 * 128, True, False, True, pre=(5,)),
)
def test_classic_borrow_block_at_initial_risk_ratio(lev, amount, blocked):
    r = run(book(account(1, "classic", lev), amount, 128.0, x_held=10000.0), NEW)
    row = one(r, 1)
    assert row["classic_collateral_margin_level"] == amount / 128.0
    assert row["classic_margin_level"] == pytest.approx((amount + 10000.0) / 128.0, rel=1e-12)
    assert row["borrow_blocked"] is blocked
    assert row["borrow_blocked_reason"] == ("collateral_below_initial_risk_ratio" if blocked else None)
    assert [(a, reason) for a, reason, _ in actions_of(r, 1) if a == "BORROW_BLOCKED"] == (
        [("BORROW_BLOCKED", "collateral_below_initial_risk_ratio")] if blocked else []
    )


def test_classic_never_blocked_for_pro_reasons():
    """A Classic account with no compliance timestamps and no liability: level +inf, not blocked."""
    acc = account(1, "classic", questionnaire_completed_at=None, terms_agreed_at=None)
    row = one(run(book(acc, 0.0), NEW), 1)
    assert row["classic_collateral_margin_level"] == INF
    assert row["borrow_blocked"] is False and row["borrow_blocked_reason"] is None
    assert row["due_for_migration"] is False and row["migrate_now"] is False


# Pro available margin, new policy: max(collateral - 1024 - OOL 64 - IM 256, 0) -> 0 at A = 1344.
@pytest.mark.parametrize(
    ("amount", "blocked"),
    around(1344.0, True, False, True),
)
def test_pro_available_margin_exactly_zero_new(amount, blocked):
    r = run(book(account(1, "pro"), amount, 1024.0, x_held=10000.0, ool=64.0), NEW)
    row = one(r, 1)
    assert row["initial_margin_usdt"] == 256.0
    assert row["pro_available_margin_usdt"] == max(amount - 1344.0, 0.0)
    assert row["borrow_blocked"] is blocked
    assert row["borrow_blocked_reason"] == ("no_available_margin" if blocked else None)


# Old policy: max(net collateral - IM, 0) = max(A - 1024 - 256, 0) -> 0 at A = 1280; the order (loss 64)
# is ignored, and net collateral (not net equity: the 10,000 XXX have ratio 0) is used.
@pytest.mark.parametrize(
    ("amount", "blocked"),
    around(1280.0, True, False, True),
)
def test_pro_available_margin_exactly_zero_old(amount, blocked):
    r = run(book(account(1, "pro"), amount, 1024.0, x_held=10000.0, ool=64.0), OLD)
    row = one(r, 1)
    assert row["pro_available_margin_usdt"] == max(amount - 1280.0, 0.0)
    assert row["borrow_blocked"] is blocked
    assert row["borrow_blocked_reason"] == ("no_available_margin" if blocked else None)


# Pro reasons and their priority. Available margin (old formula before 2025-01-21T10:00): A - 1280.
@pytest.mark.parametrize(
    ("compliant", "as_of", "amount", "reason"),
    [
        (True, AS, 1380.0, None),
        (True, AS, 1280.0, "no_available_margin"),
        (True, AS, 1000.0, "no_available_margin"),
        (False, AS, 1380.0, "pro_not_compliant"),
        (False, AS, 1280.0, "pro_not_compliant"),  # first matching reason wins
        (False, BORROW_DISABLED_FROM, 1380.0, "pro_not_compliant"),
        (False, BORROW_DISABLED_FROM, 1280.0, "pro_not_compliant"),
        (False, BORROW_DISABLED_FROM - US, 1380.0, None),
        (False, BORROW_DISABLED_FROM - US, 1280.0, "no_available_margin"),
        (False, COMPLIANCE_FROM - US, 1280.0, "no_available_margin"),
        (True, COMPLIANCE_FROM - US, 1380.0, None),
        (False, NEW, 1380.0 + 64.0, "pro_not_compliant"),
        (True, NEW, 1380.0 + 64.0, None),
        (True, NEW, 1380.0, None),
        (True, NEW, 1344.0, "no_available_margin"),
    ],
)
def test_pro_borrow_block_reasons_priority(compliant, as_of, amount, reason):
    acc = account(1, "pro") if compliant else account(1, "pro", questionnaire_completed_at=None)
    r = run(book(acc, amount, 1024.0, x_held=10000.0, ool=64.0), as_of)
    row = one(r, 1)
    assert row["borrow_blocked"] is (reason is not None)
    assert row["borrow_blocked_reason"] == reason
    assert [(a, why) for a, why, _ in actions_of(r, 1) if a == "BORROW_BLOCKED"] == (
        [("BORROW_BLOCKED", reason)] if reason else []
    )


def test_borrow_blocked_reason_dtype():
    r = run(book(account(1, "pro"), 0.0, 1024.0), NEW)
    assert r.account_risk.schema == pl.Schema(schemas.ACCOUNT_RISK)
    assert r.actions.schema == pl.Schema(schemas.ACTIONS_SCHEMA)
    assert r.data_issues.schema == pl.Schema(schemas.DATA_ISSUES)


# =============================================================== compliance timestamps
def _compliance_cases():
    cases = []
    for col in ("questionnaire_completed_at", "terms_agreed_at"):
        for value, ok, name in [
            (COMPLIANCE_FROM, True, "at_2024-12-17"),
            (COMPLIANCE_FROM - US, False, "1us_before_2024-12-17"),
            (AS, True, "equal_as_of"),
            (AS - US, True, "1us_before_as_of"),
            (AS + US, False, "1us_after_as_of"),
            (None, False, "null"),
            (ts("2024-06-01T00:00:00Z"), False, "long_before"),
        ]:
            cases.append(pytest.param(col, value, ok, id=f"{col}-{name}"))
    return cases


@pytest.mark.parametrize(("column", "value", "compliant"), _compliance_cases())
def test_compliance_timestamp_bounds(column, value, compliant):
    acc = account(1, "pro", **{column: value})
    # A = 1380, L = 1024: available margin 100 > 0; classic level 1380/1024 > 1.3 (no repayment)
    r = run(book(acc, 1380.0, 1024.0), AS)
    row = one(r, 1)
    assert row["pro_compliant"] is compliant
    assert row["due_for_migration"] is (not compliant)
    assert row["migrate_now"] is (not compliant)  # AS >= 2025-01-15
    assert row["borrow_blocked_reason"] == (None if compliant else "pro_not_compliant")
    assert row["partial_repayment_usdt"] == 0.0
    expected = (
        []
        if compliant
        else [("BORROW_BLOCKED", "pro_not_compliant", None), ("MIGRATE_TO_CLASSIC", "due", None)]
    )
    assert actions_of(r, 1) == expected


@pytest.mark.parametrize(
    ("as_of", "compliant"),
    [(COMPLIANCE_FROM, True), (COMPLIANCE_FROM - US, False)],
)
def test_compliance_at_the_first_instant(as_of, compliant):
    """Timestamps exactly 2024-12-17T00:00Z: compliant at as_of = that instant (both ends inclusive)."""
    r = run(book(account(1, "pro"), 1380.0, 1024.0), as_of)
    row = one(r, 1)
    assert row["pro_compliant"] is compliant
    # before 2024-12-17 nobody is due, compliant or not
    assert row["due_for_migration"] is False


def test_classic_accounts_are_never_due_for_migration():
    acc = account(1, "classic", questionnaire_completed_at=None, terms_agreed_at=None)
    row = one(run(book(acc, 129.0, 100.0), AS), 1)
    assert row["due_for_migration"] is False
    assert row["migrate_now"] is False
    assert row["partial_repayment_usdt"] == 0.0


# =============================================================== as_of at / 1 us before each policy date
# Non-compliant Pro 3x, USDT 129 held, 100 borrowed: classic level 1.29 < 1.3, repayment
# x = (1.5*100 - 129) / (1.5 - 1) = 42; available margin (129 - 100) - 25 = 4 > 0.
@pytest.mark.parametrize(
    ("as_of", "due", "now", "blocked", "migration"),
    [
        (COMPLIANCE_FROM - US, False, False, None, None),
        (COMPLIANCE_FROM, True, False, None, "pending"),
        (BORROW_DISABLED_FROM - US, True, False, None, "pending"),
        (BORROW_DISABLED_FROM, True, False, "pro_not_compliant", "pending"),
        (SWITCHED_FROM - US, True, False, "pro_not_compliant", "pending"),
        (SWITCHED_FROM, True, True, "pro_not_compliant", "due"),
        (NEW_FORMULA_FROM - US, True, True, "pro_not_compliant", "due"),
        (NEW_FORMULA_FROM, True, True, "pro_not_compliant", "due"),
    ],
)
def test_policy_dates(as_of, due, now, blocked, migration):
    r = run(book(account(1, "pro", questionnaire_completed_at=None), 129.0, 100.0), as_of)
    row = one(r, 1)
    assert row["pro_compliant"] is False
    assert row["due_for_migration"] is due
    assert row["migrate_now"] is now
    assert row["borrow_blocked_reason"] == blocked
    assert row["partial_repayment_usdt"] == (42.0 if due else 0.0)
    expected = []
    if blocked:
        expected.append(("BORROW_BLOCKED", blocked, None))
    if migration:
        expected.append(("MIGRATE_TO_CLASSIC", migration, None))
    if due:
        expected.append(("PARTIAL_REPAYMENT", None, 42.0))
    assert actions_of(r, 1) == sorted(expected, key=lambda x: (x[0], str(x[1])))


# =============================================================== partial repayment
# x = (T*L - A) / (T - 1), clipped to [0, min(A, L)], when classic level < MC threshold (strict).
@pytest.mark.parametrize(
    ("lev", "A", "L", "expected"),
    [
        pytest.param(3, 130.0, 100.0, 0.0, id="3x-at-1.3"),
        pytest.param(3, 1.3 * 128, 128.0, 0.0, id="3x-exactly-1.3"),
        pytest.param(3, nxt(1.3 * 128, UP), 128.0, 0.0, id="3x-ulp-above"),
        pytest.param(
            3, nxt(1.3 * 128, DOWN), 128.0, (1.5 * 128 - nxt(1.3 * 128, DOWN)) / 0.5, id="3x-ulp-below"
        ),
        pytest.param(3, 129.0, 100.0, 42.0, id="3x-129"),  # (150 - 129) / 0.5
        pytest.param(3, 120.0, 100.0, 60.0, id="3x-120"),  # (150 - 120) / 0.5 -> 60/40 = 1.5 after
        pytest.param(3, 100.0, 100.0, 100.0, id="3x-clip-edge"),  # (150 - 100)/0.5 = 100 = min(A, L)
        pytest.param(3, 50.0, 100.0, 50.0, id="3x-clip-to-A"),  # 200 -> min(50, 100)
        pytest.param(3, 0.0, 100.0, 0.0, id="3x-no-assets"),  # 300 -> min(0, 100)
        pytest.param(5, 115.0, 100.0, 0.0, id="5x-at-1.15"),
        pytest.param(5, 1.15 * 128, 128.0, 0.0, id="5x-exactly-1.15"),
        pytest.param(5, 114.0, 100.0, 44.0, id="5x-114"),  # (125 - 114) / 0.25
        pytest.param(5, 110.0, 100.0, 60.0, id="5x-110"),  # (125 - 110) / 0.25
        pytest.param(5, 129.0, 100.0, 0.0, id="5x-above-its-threshold"),  # 1.29 > 1.15
        pytest.param(3, 100.0, 0.0, 0.0, id="no-liability"),
    ],
)
def test_partial_repayment(lev, A, L, expected):
    r = run(book(account(1, "pro", lev, questionnaire_completed_at=None), A, L), AS)
    row = one(r, 1)
    assert row["due_for_migration"] is True
    assert row["partial_repayment_usdt"] == pytest.approx(expected, rel=1e-12, abs=0.0)
    rep = [amt for a, _, amt in actions_of(r, 1) if a == "PARTIAL_REPAYMENT"]
    assert rep == ([pytest.approx(expected, rel=1e-12)] if expected > 0 else [])


def test_partial_repayment_counts_interest_and_locked():
    # A = free 100 + locked 29 = 129; L = borrowed 96 + interest 4 = 100 -> (150 - 129)/0.5 = 42
    t = book(
        account(1, "pro", questionnaire_completed_at=None), 100.0, 96.0, usdt_interest=4.0, usdt_locked=29.0
    )
    row = one(run(t, AS), 1)
    assert (row["total_asset_usdt"], row["total_liability_usdt"]) == (129.0, 100.0)
    assert row["partial_repayment_usdt"] == 42.0


def test_partial_repayment_clipped_at_zero(tmp_path):
    """Margin call above the IRR (policy override): x = (1.5*100 - 155)/0.5 = -10 -> clipped to 0."""
    pol = tmp_path / "p.toml"
    pol.write_text(
        '[[version]]\nname = "test-mc-above-irr"\neffective_from = 2024-01-01T00:00:00Z\n'
        "[version.classic.leverage.3]\nmargin_call = 1.6\n"
    )
    r = run(book(account(1, "pro", 3, questionnaire_completed_at=None), 155.0, 100.0), AS, pol)
    row = one(r, 1)
    assert row["policy_version"] == "test-mc-above-irr"
    assert row["classic_margin_level"] == 1.55
    assert row["partial_repayment_usdt"] == 0.0


@pytest.mark.parametrize(
    ("acc", "as_of"),
    [
        pytest.param(account(1, "pro", 3), AS, id="compliant-pro"),
        pytest.param(account(1, "classic", 3, questionnaire_completed_at=None), AS, id="classic"),
        pytest.param(
            account(1, "pro", 3, questionnaire_completed_at=None), COMPLIANCE_FROM - US, id="before-due"
        ),
    ],
)
def test_partial_repayment_zero_when_not_due(acc, as_of):
    row = one(run(book(acc, 50.0, 100.0), as_of), 1)
    assert row["due_for_migration"] is False
    assert row["partial_repayment_usdt"] == 0.0


# =============================================================== bad debt
@pytest.mark.parametrize("mode", ["classic", "pro"])
@pytest.mark.parametrize(
    ("A", "L", "expected"),
    [
        (100.0, 100.0, 0.0),
        (99.0, 100.0, 1.0),
        (101.0, 100.0, 0.0),
        (0.0, 100.0, 100.0),
        (5.0, 0.0, 0.0),
        (nxt(100.0, DOWN), 100.0, 100.0 - nxt(100.0, DOWN)),
    ],
)
def test_bad_debt(mode, A, L, expected):
    row = one(run(book(account(1, mode), A, L), NEW), 1)
    assert row["bad_debt_usdt"] == expected


# =============================================================== switches_left_today
DAY = ts("2025-01-21T00:00:00Z")


@pytest.mark.parametrize(
    ("as_of", "switches", "left"),
    [
        pytest.param(NEW, [], 5, id="none"),
        pytest.param(NEW, [DAY], 4, id="at-day-start"),
        pytest.param(NEW, [DAY - US], 5, id="1us-before-day-start"),
        pytest.param(NEW, [NEW], 4, id="at-as_of"),
        pytest.param(NEW, [NEW + US], 5, id="1us-after-as_of"),
        pytest.param(NEW, [DAY - US, DAY, NEW, NEW + US], 3, id="all-four-edges"),
        pytest.param(NEW, [DAY + dt.timedelta(hours=h) for h in range(4)], 1, id="four"),
        pytest.param(NEW, [DAY + dt.timedelta(hours=h) for h in range(5)], 0, id="five"),
        pytest.param(NEW, [DAY + dt.timedelta(hours=h) for h in range(6)], 0, id="six-floored"),
        pytest.param(NEW, [DAY + dt.timedelta(minutes=m) for m in range(9)], 0, id="nine-floored"),
        pytest.param(DAY, [DAY], 4, id="as_of-at-midnight"),
        pytest.param(DAY, [DAY - US, DAY - dt.timedelta(hours=1)], 5, id="previous-day"),
    ],
)
def test_switches_left_today(as_of, switches, left):
    t = book(account(1, "classic"), 10.0, switches=switches)
    # another account's switches are not counted
    other = book(account(2, "classic"), 10.0, switches=[DAY + dt.timedelta(hours=h) for h in (1, 2, 3)])
    t = {k: pl.concat([t[k], other[k]]).unique(maintain_order=True) for k in t}  # shared reference rows once
    r = run(t, as_of)
    assert one(r, 1)["switches_left_today"] == left
    assert one(r, 2)["switches_left_today"] == (5 if as_of == DAY else 2)


# =============================================================== eligible_for_pro
NEW_ORDER = schemas.PRO_CONDITIONS_NEW
OLD_ORDER = schemas.PRO_CONDITIONS_OLD
FIVE = [DAY + dt.timedelta(hours=h) for h in range(5)]


def _eligible_new_cases():
    # base: USDT 10,240 held, 8,192 borrowed (MM 1,024), 10,000 XXX ratio 0:
    #   pro level new = (10240 - 8192) / 1024 = 2 exactly (fails); net equity 12,048 > 5,000
    base = {"free": 10240.0, "borrowed": 8192.0, "x": 10000.0}
    ok = {"free": 20480.0, "borrowed": 8192.0, "x": 10000.0}  # level 12, net equity 22,288
    c = []
    c.append(pytest.param({}, ok, [], id="all-pass"))
    c.append(pytest.param({}, base, ["pro_margin_level_after_switch"], id="level-exactly-2"))
    c.append(pytest.param({}, {**base, "free": nxt(10240.0, UP)}, [], id="level-ulp-above-2"))
    c.append(
        pytest.param(
            {},
            {**base, "free": nxt(10240.0, DOWN)},
            ["pro_margin_level_after_switch"],
            id="level-ulp-below-2",
        )
    )
    c.append(pytest.param({}, {**base, "free": 10241.0}, [], id="level-2.001"))
    # open-order loss counts in the level after switching: (20480 - 8192 - 10240) / 1024 = 2
    c.append(pytest.param({}, {**ok, "ool": 10240.0}, ["pro_margin_level_after_switch"], id="level-2-by-ool"))
    # net equity: USDT only, no liability (level +inf passes)
    c.append(pytest.param({}, {"free": 5000.0}, ["net_equity"], id="net-equity-exactly-5000"))
    c.append(pytest.param({}, {"free": nxt(5000.0, UP)}, [], id="net-equity-ulp-above"))
    c.append(pytest.param({}, {"free": 5001.0}, [], id="net-equity-5001"))
    c.append(pytest.param({}, {"free": 4999.0}, ["net_equity"], id="net-equity-4999"))
    # net equity 9,096 - 4,096 = 5,000 with a liability; level (5000)/512 ~ 9.8 passes
    c.append(
        pytest.param({}, {"free": 9096.0, "borrowed": 4096.0}, ["net_equity"], id="net-equity-5000-with-debt")
    )
    for country in ("US", "CA", "NL"):
        c.append(pytest.param({"country": country}, ok, ["country_not_restricted"], id=f"country-{country}"))
    c.append(pytest.param({"country": "DE"}, ok, [], id="country-DE"))
    c.append(pytest.param({"terms_agreed_at": None}, ok, ["terms_agreed"], id="terms-null"))
    c.append(pytest.param({"terms_agreed_at": NEW + US}, ok, ["terms_agreed"], id="terms-after-as_of"))
    c.append(pytest.param({"terms_agreed_at": NEW}, ok, [], id="terms-at-as_of"))
    # compliance is not a condition: terms long before 2024-12-17 and no questionnaire still pass
    c.append(
        pytest.param(
            {"terms_agreed_at": ts("2023-01-01T00:00:00Z"), "questionnaire_completed_at": None},
            ok,
            [],
            id="terms-old-no-questionnaire",
        )
    )
    c.append(
        pytest.param({"cross_margin_activated": False}, ok, ["cross_margin_activated"], id="not-activated")
    )
    c.append(pytest.param({"pro_quiz_passed": False}, ok, ["pro_quiz_passed"], id="quiz-failed"))
    c.append(pytest.param({"switches": FIVE}, ok, ["switches_left_today"], id="no-switches-left"))
    c.append(pytest.param({"switches": FIVE[:4]}, ok, [], id="one-switch-left"))
    c.append(pytest.param({"classic_leverage": 5}, ok, [], id="5x"))
    c.append(
        pytest.param(
            {
                "cross_margin_activated": False,
                "pro_quiz_passed": False,
                "terms_agreed_at": None,
                "country": "US",
                "switches": FIVE,
            },
            {"free": 4096.0, "borrowed": 2048.0},  # level (2048)/256 = 8 passes; net equity 2,048 fails
            [
                "cross_margin_activated",
                "pro_quiz_passed",
                "terms_agreed",
                "net_equity",
                "country_not_restricted",
                "switches_left_today",
            ],
            id="all-but-level-fail",
        )
    )
    c.append(
        pytest.param(
            {
                "cross_margin_activated": False,
                "pro_quiz_passed": False,
                "terms_agreed_at": None,
                "country": "NL",
                "switches": FIVE,
            },
            {"free": 3072.0, "borrowed": 2048.0, "ool": 1024.0},  # level (3072 - 2048 - 1024)/256 = 0
            NEW_ORDER,
            id="all-fail",
        )
    )
    return c


def _classic_book(acc_over, bal):
    over = dict(acc_over)
    switches = over.pop("switches", [])
    lev = over.pop("classic_leverage", 3)
    acc = account(1, "classic", lev, **over)
    ool = bal.get("ool", 0.0)
    return book(
        acc,
        bal.get("free", 0.0),
        bal.get("borrowed", 0.0),
        x_held=bal.get("x", 0.0),
        ool=ool,
        switches=switches,
    )


@pytest.mark.parametrize(("acc_over", "bal", "reasons"), _eligible_new_cases())
def test_eligible_for_pro_new_policy(acc_over, bal, reasons):
    r = run(_classic_book(acc_over, bal), NEW)
    row = one(r, 1)
    assert row["pro_ineligible_reasons"] == reasons
    assert row["eligible_for_pro"] is (reasons == [])
    assert ("ELIGIBLE_FOR_PRO" in {a for a, _, _ in actions_of(r, 1)}) is (reasons == [])


def test_eligible_level_exactly_two_is_exact():
    row = one(run(_classic_book({}, {"free": 10240.0, "borrowed": 8192.0, "x": 10000.0}), NEW), 1)
    assert row["pro_margin_level_new"] == 2.0
    assert row["net_equity_usdt"] == 12048.0


def _eligible_old_cases():
    # base: USDT 160 held, 128 borrowed -> classic collateral level 1.25 exactly (fails);
    # 10,000 XXX (ratio 0) lift the classic margin level only; terms and net equity are no conditions.
    base = {"free": 160.0, "borrowed": 128.0, "x": 10000.0}
    ok = {"free": 161.0, "borrowed": 128.0, "x": 10000.0}
    c = []
    c.append(pytest.param({}, ok, [], id="all-pass"))
    c.append(pytest.param({}, base, ["classic_collateral_margin_level"], id="collateral-level-exactly-1.25"))
    c.append(pytest.param({}, {**base, "free": nxt(160.0, UP)}, [], id="collateral-level-ulp-above"))
    c.append(
        pytest.param(
            {},
            {**base, "free": nxt(160.0, DOWN)},
            ["classic_collateral_margin_level"],
            id="collateral-level-ulp-below",
        )
    )
    c.append(pytest.param({}, {"free": 1.0}, [], id="no-liability-tiny-equity"))  # level +inf, equity 1
    c.append(
        pytest.param({"terms_agreed_at": None, "questionnaire_completed_at": None}, ok, [], id="no-terms-ok")
    )
    for country in ("US", "CA", "NL"):
        c.append(pytest.param({"country": country}, ok, ["country_not_restricted"], id=f"country-{country}"))
    c.append(
        pytest.param({"cross_margin_activated": False}, ok, ["cross_margin_activated"], id="not-activated")
    )
    c.append(pytest.param({"pro_quiz_passed": False}, ok, ["pro_quiz_passed"], id="quiz-failed"))
    c.append(pytest.param({"switches": FIVE}, ok, ["switches_left_today"], id="no-switches-left"))
    c.append(
        pytest.param(
            {"cross_margin_activated": False, "pro_quiz_passed": False, "country": "CA", "switches": FIVE},
            base,
            OLD_ORDER,
            id="all-fail",
        )
    )
    return c


@pytest.mark.parametrize(("acc_over", "bal", "reasons"), _eligible_old_cases())
def test_eligible_for_pro_old_policy(acc_over, bal, reasons):
    as_of = NEW - US  # 2025-01-21T09:59:59.999999Z; FIVE switches are inside that day
    r = run(_classic_book(acc_over, bal), as_of)
    row = one(r, 1)
    assert row["pro_ineligible_reasons"] == reasons
    assert row["eligible_for_pro"] is (reasons == [])
    assert ("ELIGIBLE_FOR_PRO" in {a for a, _, _ in actions_of(r, 1)}) is (reasons == [])


@pytest.mark.parametrize("as_of", [OLD, NEW])
def test_pro_account_is_not_eligible(as_of):
    r = run(book(account(1, "pro"), 100000.0), as_of)
    row = one(r, 1)
    assert row["eligible_for_pro"] is False
    assert row["pro_ineligible_reasons"] == [schemas.NOT_CLASSIC]
    assert "ELIGIBLE_FOR_PRO" not in {a for a, _, _ in actions_of(r, 1)}


# =============================================================== can_switch_to_classic
# New policy: classic collateral level A / 128 (10,000 XXX ratio 0 lift the margin level only).
@pytest.mark.parametrize(
    ("lev", "amount", "ok"),
    around(192.0, False, True, False, pre=(3,)) + around(160.0, False, True, False, pre=(5,)),
)
def test_can_switch_to_classic_new_policy(lev, amount, ok):
    row = one(run(book(account(1, "pro", lev), amount, 128.0, x_held=10000.0), NEW), 1)
    assert row["classic_collateral_margin_level"] == amount / 128.0
    assert row["can_switch_to_classic"] is ok


# Old policy: classic margin level H / 128 with H of XXX (ratio 0: collateral level 0) and no USDT held.
@pytest.mark.parametrize(
    ("lev", "held", "ok"),
    around(192.0, False, True, False, pre=(3,)) + around(160.0, False, True, False, pre=(5,)),
)
def test_can_switch_to_classic_old_policy(lev, held, ok):
    row = one(run(book(account(1, "pro", lev), 0.0, 128.0, x_held=held), OLD), 1)
    assert row["classic_margin_level"] == held / 128.0
    assert row["classic_collateral_margin_level"] == 0.0
    assert row["can_switch_to_classic"] is ok


@pytest.mark.parametrize(
    ("mode", "switches", "as_of", "ok"),
    [
        ("pro", FIVE, NEW, False),
        ("pro", FIVE[:4], NEW, True),
        ("pro", FIVE, NEW - US, False),
        ("pro", [], NEW, True),
        ("classic", [], NEW, False),
        ("classic", [], OLD, False),
    ],
)
def test_can_switch_to_classic_switches_and_mode(mode, switches, as_of, ok):
    # no liability: both classic levels +inf > IRR
    row = one(run(book(account(1, mode), 1000.0, switches=switches), as_of), 1)
    assert row["can_switch_to_classic"] is ok


# =============================================================== +inf levels
LEVELS = schemas.LEVEL_COLUMNS


def _assert_pos_inf(row, cols):
    for c in cols:
        v = row[c]
        assert v is not None and math.isinf(v) and v > 0, f"{c} = {v!r}"


@pytest.mark.parametrize("mode", ["classic", "pro"])
@pytest.mark.parametrize("as_of", [OLD, NEW])
def test_no_liability_all_levels_inf(mode, as_of):
    r = run(book(account(1, mode), 100.0), as_of)
    row = one(r, 1)
    _assert_pos_inf(row, LEVELS)
    assert (row["margin_call"], row["liquidation"]) == (False, False)
    assert row["bad_debt_usdt"] == 0.0


@pytest.mark.parametrize("mode", ["classic", "pro"])
@pytest.mark.parametrize("as_of", [OLD, NEW])
@pytest.mark.parametrize("balance_row", [False, True], ids=["no-balance-rows", "all-zero-row"])
def test_empty_account_is_valid_with_inf_levels(mode, as_of, balance_row):
    t = tables(
        accounts=[account(1, mode)],
        balances=[balance(1, "USDT")] if balance_row else [],
    )
    r = run(t, as_of)
    assert r.data_issues.height == 0
    row = one(r, 1)
    for q in schemas.QUANTITY_COLUMNS:
        assert row[q] == 0.0, q
    _assert_pos_inf(row, LEVELS)
    assert (row["margin_call"], row["liquidation"]) == (False, False)
    assert row["partial_repayment_usdt"] == 0.0 and row["bad_debt_usdt"] == 0.0
    assert row["switches_left_today"] == 5
    if mode == "pro":
        # available margin max(0 - 0 - 0, 0) = 0 -> blocked (compliant by default)
        assert row["pro_available_margin_usdt"] == 0.0
        assert row["borrow_blocked_reason"] == "no_available_margin"
        assert row["can_switch_to_classic"] is True
    else:
        assert row["borrow_blocked"] is False
        # new policy: net equity 0 fails; old: all pass (collateral level +inf)
        assert row["pro_ineligible_reasons"] == (["net_equity"] if as_of == NEW else [])


@pytest.mark.parametrize("as_of", [OLD, NEW])
def test_zero_maintenance_margin_negative_numerator_is_inf(as_of):
    """Liability 100 but a 0% bracket: maintenance margin 0, net equity -50 -> Pro levels +inf."""
    t = book(account(1, "pro"), 50.0, 100.0, usdt_brackets=brackets("USDT", [(0.0, None, 0.0, 0.0)]))
    row = one(run(t, as_of), 1)
    assert row["maintenance_margin_usdt"] == 0.0
    assert row["net_equity_usdt"] == -50.0
    _assert_pos_inf(row, ["pro_margin_level_old", "pro_margin_level_new", "pro_margin_level", "margin_level"])
    assert row["classic_margin_level"] == 0.5
    assert row["classic_collateral_margin_level"] == 0.5
    assert (row["margin_call"], row["liquidation"]) == (False, False)
    assert row["bad_debt_usdt"] == 50.0


@pytest.mark.parametrize("as_of", [OLD, NEW])
def test_open_order_loss_without_liability_is_inf(as_of):
    """No liability, OOL 50 > collateral 10: new numerator -40 over 0 -> +inf, never -inf/NaN."""
    r = run(book(account(1, "pro"), 10.0, ool=50.0), as_of)
    row = one(r, 1)
    assert row["open_order_loss_usdt"] == 50.0
    _assert_pos_inf(row, LEVELS)
    # available margin: new max(10 - 0 - 50 - 0, 0) = 0, old max(10 - 0, 0) = 10
    assert row["pro_available_margin_usdt"] == (0.0 if as_of == NEW else 10.0)
    assert row["borrow_blocked_reason"] == ("no_available_margin" if as_of == NEW else None)


def test_levels_never_nan_or_null_across_frame():
    accs = [account(i, m) for i, m in enumerate(["classic", "pro"] * 3, start=1)]
    bals = [
        balance(1, "USDT"),
        balance(2, "USDT", 0.0, 0.0, 0.0, 0.0),
        balance(3, "USDT", 5.0),
        balance(4, "USDT", 0.0, 0.0, 10.0),
    ]
    r = run(tables(accounts=accs, balances=bals), NEW)
    df = r.account_risk
    assert df.height == 6
    for c in LEVELS:
        s = df[c]
        assert s.null_count() == 0 and not s.is_nan().any() and not (s == -INF).any(), c
    # account 4 (Pro): A = 0, L = 10 -> classic level 0, pro levels -10 / 1.25 = -8; accounts 1-3 all +inf
    row4 = one(r, 4)
    assert (row4["classic_margin_level"], row4["pro_margin_level_old"], row4["pro_margin_level_new"]) == (
        0.0,
        -8.0,
        -8.0,
    )
    for aid in (1, 2, 3, 5, 6):
        _assert_pos_inf(one(r, aid), LEVELS)


# =============================================================== effective_from / priced_at selection
@pytest.mark.parametrize(
    ("versions", "ratio"),
    [
        # (effective_from offset from as_of, slices) -> the version in force gives `ratio` on 10,000 USDT
        pytest.param(
            [(None, [(0, 5000, 1.0), (5000, None, 0.0)]), (0, [(0, None, 0.75)]), (1, [(0, None, 0.25)])],
            0.75,
            id="at-as_of-used-1us-after-not",
        ),
        pytest.param(
            [(None, [(0, 5000, 1.0), (5000, None, 0.0)]), (-1, [(0, None, 0.625)]), (1, [(0, None, 0.25)])],
            0.625,
            id="1us-before",
        ),
        pytest.param(
            [(None, [(0, 5000, 1.0), (5000, None, 0.0)]), (1, [(0, None, 0.25)])], 0.5, id="older-multi-slice"
        ),
    ],
)
def test_collateral_tier_version_by_effective_from(versions, ratio):
    rows = []
    for off, slices in versions:
        eff = EPOCH if off is None else NEW + off * US
        rows += tiers("BTC", slices, eff)
    t = tables(
        accounts=[account(1, "classic")],
        balances=[balance(1, "BTC", free=1.0)],
        prices={"BTC": 10000.0},
        collateral_tiers=rows,
    )
    row = one(run(t, NEW), 1)
    assert row["total_asset_usdt"] == 10000.0
    assert row["collateral_usdt"] == ratio * 10000.0


@pytest.mark.parametrize(
    ("offsets", "mmr", "imr"),
    [
        pytest.param({None: (0.5, 0.5), 0: (0.125, 0.25), 1: (0.25, 0.5)}, 0.125, 0.25, id="at-as_of"),
        pytest.param({None: (0.5, 0.5), -1: (0.0625, 0.125), 1: (0.25, 0.5)}, 0.0625, 0.125, id="1us-before"),
        pytest.param({None: (0.5, 0.5), 1: (0.25, 0.5)}, 0.5, 0.5, id="older"),
    ],
)
def test_liability_bracket_version_by_effective_from(offsets, mmr, imr):
    rows = []
    for off, (m, i) in offsets.items():
        rows += one_bracket("USDT", m, i, EPOCH if off is None else NEW + off * US)
    t = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "USDT", 2048.0, 0.0, 1024.0)],
        liability_brackets=rows,
    )
    row = one(run(t, NEW), 1)
    assert row["maintenance_margin_usdt"] == mmr * 1024.0
    assert row["initial_margin_usdt"] == imr * 1024.0


def test_tiers_only_effective_after_as_of_are_missing():
    t = tables(
        accounts=[account(1, "classic"), account(2, "classic")],
        balances=[balance(1, "BTC", free=1.0), balance(2, "USDT", free=1.0)],
        prices={"BTC": 10000.0},
        collateral_tiers=[one_slice("BTC", 0.5, NEW + US)],
    )
    r = run(t, NEW)
    assert r.account_risk["account_id"].to_list() == [2]
    issues = r.data_issues.filter(pl.col("account_id") == 1)
    assert "missing_collateral_tiers" in issues["code"].cast(pl.String).to_list()


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        pytest.param({None: 1000.0, -1: 2000.0, 0: 4000.0, 1: 8000.0}, 4000.0, id="at-as_of"),
        pytest.param({None: 1000.0, -1: 2000.0, 1: 8000.0}, 2000.0, id="1us-before"),
        pytest.param({-1: 2000.0, None: 1000.0}, 2000.0, id="unsorted-input"),
        pytest.param({None: 1000.0, 1: 8000.0, 2: 16000.0}, 1000.0, id="future-ignored"),
    ],
)
def test_price_by_priced_at(offsets, expected):
    older = NEW - 12 * 3600 * 10**6 * US  # 12 h before as_of: older, still fresh
    rows = [price("BTC", p, older if off is None else NEW + off * US) for off, p in offsets.items()]
    t = tables(
        accounts=[account(1, "classic")],
        balances=[balance(1, "BTC", free=1.0)],
        prices=rows,
        collateral_tiers=[one_slice("BTC", 1.0)],
    )
    row = one(run(t, NEW), 1)
    assert row["total_asset_usdt"] == expected
    assert row["collateral_usdt"] == expected


def test_price_only_after_as_of_is_missing():
    t = tables(
        accounts=[account(1, "classic")],
        balances=[balance(1, "BTC", free=1.0)],
        prices=[price("BTC", 1000.0, NEW + US)],
        collateral_tiers=[one_slice("BTC", 1.0)],
    )
    r = run(t, NEW)
    assert r.account_risk.height == 0
    assert "missing_price" in r.data_issues["code"].cast(pl.String).to_list()


# =============================================================== what an asset row needs (docs/rules.md §6)
def test_all_zero_balance_row_needs_no_reference_data():
    """A balance row that is all zeros needs no price, tiers or brackets; the account is valid."""
    t = tables(accounts=[account(1, "pro")], balances=[balance(1, "ZZZ"), balance(1, "USDT", free=7.0)])
    r = run(t, NEW)
    assert r.data_issues.height == 0
    row = one(r, 1)
    assert (row["total_asset_usdt"], row["total_liability_usdt"], row["collateral_usdt"]) == (7.0, 0.0, 7.0)


def test_held_asset_needs_no_brackets_and_owed_asset_no_tiers():
    """BTC only held (tiers, no brackets); ETH only owed (brackets, no tiers): both valid."""
    t = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "BTC", free=1.0), balance(1, "ETH", borrowed=2.0)],
        prices={"BTC": 1024.0, "ETH": 256.0},
        collateral_tiers=[one_slice("BTC", 0.5)],
        liability_brackets=[one_bracket("ETH", 0.125, 0.25)],
    )
    r = run(t, NEW)
    assert r.data_issues.height == 0
    row = one(r, 1)
    # asset 1,024, collateral 512, liability 512, MM 64, IM 128
    assert (row["total_asset_usdt"], row["collateral_usdt"], row["total_liability_usdt"]) == (
        1024.0,
        512.0,
        512.0,
    )
    assert (row["maintenance_margin_usdt"], row["initial_margin_usdt"]) == (64.0, 128.0)
    assert row["pro_margin_level_new"] == 0.0  # (512 - 512 - 0) / 64
    assert row["pro_margin_level_old"] == 8.0  # (1024 - 512) / 64


def test_interest_only_debt_is_a_liability():
    """borrowed 0, interest 8 USDT: a liability asset (borrowed + interest > 0): MM 1, IM 2."""
    row = one(run(book(account(1, "pro"), 100.0, 0.0, usdt_interest=8.0), NEW), 1)
    assert row["total_liability_usdt"] == 8.0
    assert (row["maintenance_margin_usdt"], row["initial_margin_usdt"]) == (1.0, 2.0)
    assert row["pro_margin_level_new"] == 92.0
