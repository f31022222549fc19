"""Numeric robustness: huge and tiny quantities, zero prices, accounts with only interest or
only orders, assets with brackets but no debt, prices missing only for untouched assets.

Reference data is chosen so that every expected value is exactly representable (prices and rates
are powers of two), so the assertions are exact equalities, not approximations.
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from crossmargin.engine import score as compute
from crossmargin.io.schemas import LEVEL_COLUMNS, QUANTITY_COLUMNS
from crossmargin.policy import resolve
from support.inputs import NEW_FORMULA_FROM, account, balance, brackets, order, tables, ticking, tiers

INF = math.inf
NEW = resolve(NEW_FORMULA_FROM)
BTC = 65536.0  # 2**16
ETH = 4096.0  # 2**12

PRICES = [
    *ticking("USDT", 1.0),
    *ticking("BTC", BTC),
    *ticking("ETH", ETH),
    *ticking("Z0", 0.0),  # a zero price is a price
]
TIERS = (
    tiers("USDT", [(0, None, 1.0)])
    + tiers("BTC", [(0, BTC, 0.75), (BTC, None, 0.5)])
    + tiers("ETH", [(0, None, 0.5)])
    + tiers("Z0", [(0, None, 0.5)])
    + tiers("NOPX", [(0, None, 0.5)])  # tiers but never a price: fine while nobody touches it
)
BRACKETS = (
    brackets("USDT", [(0, None, 0.125, 0.25)])
    + brackets("BTC", [(0, BTC, 0.0625, 0.125), (BTC, None, 0.125, 0.25)])
    + brackets("ETH", [(0, None, 0.125, 0.25)])
    + brackets("Z0", [(0, None, 0.25, 0.5)])
)


def run_one(balances=(), orders=(), mode="classic", leverage=3):
    t = tables(
        accounts=[account(1, mode, leverage)],
        balances=list(balances),
        open_orders=list(orders),
        prices=PRICES,
        collateral_tiers=TIERS,
        liability_brackets=BRACKETS,
    )
    r = compute(t, NEW)
    assert r.data_issues.height == 0, r.data_issues.to_dicts()
    rows = r.account_risk.to_dicts()
    assert len(rows) == 1
    row = rows[0]
    for c in [
        *QUANTITY_COLUMNS,
        *LEVEL_COLUMNS,
        "pro_available_margin_usdt",
        "partial_repayment_usdt",
        "bad_debt_usdt",
    ]:
        assert not math.isnan(row[c]), c
        assert row[c] != -INF, c
    return row, r


def assert_values(row: dict, **expected: float) -> None:
    wrong = {k: (row[k], v) for k, v in expected.items() if row[k] != v}
    assert not wrong, wrong


# ---------------------------------------------------------------------------- huge and tiny


def test_huge_quantities_exact():
    row, _ = run_one([balance(1, "USDT", free=2.0**60, borrowed=2.0**59)])
    assert_values(
        row,
        total_asset_usdt=2.0**60,
        total_liability_usdt=2.0**59,
        collateral_usdt=2.0**60,
        net_equity_usdt=2.0**59,
        maintenance_margin_usdt=2.0**56,
        initial_margin_usdt=2.0**57,
        classic_margin_level=2.0,
        classic_collateral_margin_level=2.0,
        pro_margin_level_old=8.0,
        pro_margin_level_new=8.0,
        bad_debt_usdt=0.0,
    )


def test_huge_values_across_tier_slices_exact():
    # 2**40 BTC at 2**16: value 2**56; collateral 0.75*2**16 + 0.5*(2**56 - 2**16)
    row, _ = run_one([balance(1, "BTC", free=2.0**40), balance(1, "USDT", borrowed=2.0**50)])
    assert_values(
        row,
        total_asset_usdt=2.0**56,
        total_liability_usdt=2.0**50,
        collateral_usdt=0.75 * BTC + 0.5 * (2.0**56 - BTC),
        maintenance_margin_usdt=2.0**47,
        classic_margin_level=64.0,
    )


def test_near_float_max_but_finite_is_scored():
    row, _ = run_one([balance(1, "USDT", free=1e300, borrowed=1e299)])
    assert row["total_asset_usdt"] == 1e300
    assert math.isfinite(row["classic_margin_level"]) and row["classic_margin_level"] == 1e300 / 1e299
    assert not row["margin_call"]


def test_tiny_quantities_exact():
    row, _ = run_one([balance(1, "USDT", free=2.0**-1000, borrowed=2.0**-1001)])
    assert_values(
        row,
        total_asset_usdt=2.0**-1000,
        total_liability_usdt=2.0**-1001,
        classic_margin_level=2.0,
        maintenance_margin_usdt=2.0**-1004,
        pro_margin_level_old=8.0,
        pro_margin_level_new=8.0,
    )
    assert row["margin_call"] is False


def test_subnormal_liability_whose_margin_underflows_to_zero_gives_inf_not_nan():
    # maintenance 0.125 * 2**-1072 = 2**-1075 underflows to 0: the Pro level's denominator is 0 -> +inf
    row, _ = run_one([balance(1, "USDT", free=2.0**-1070, borrowed=2.0**-1072)], mode="pro")
    assert row["total_liability_usdt"] == 2.0**-1072
    assert row["classic_margin_level"] == 4.0
    assert row["maintenance_margin_usdt"] == 0.0
    assert row["pro_margin_level_old"] == INF and row["pro_margin_level_new"] == INF
    assert row["margin_level"] == INF and row["liquidation"] is False


def test_level_overflowing_to_minus_inf_is_a_non_finite_value_issue():
    """Pro, debt 1e-306 USDT, net equity about -100: maintenance margin 1.25e-307 (not 0), so the old
    Pro level is -100 / 1.25e-307 = -8e308, beyond float64: -inf. Not a level: the account is a
    non_finite_value data issue whose detail names the level, and account_risk never holds -inf."""
    t = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "USDT", borrowed=1e-306), balance(1, "ETH", borrowed=100.0 / ETH)],
        prices=PRICES,
        collateral_tiers=TIERS,
        liability_brackets=brackets("USDT", [(0, None, 0.125, 0.25)])
        + brackets("ETH", [(0, None, 0.0, 0.0)]),
    )
    r = compute(t, NEW)
    assert r.account_risk.height == 0
    issues = r.data_issues.to_dicts()
    assert [(i["account_id"], i["table"], str(i["code"])) for i in issues] == [
        (1, "balances", "non_finite_value")
    ]
    assert issues[0]["detail"].startswith("pro_margin_level_old is -inf")


def test_subnormal_rate_makes_a_level_overflow_and_the_account_an_issue():
    """A subnormal maintenance rate gives a subnormal margin under a normal numerator: +inf, but the
    denominator is not 0, so it is not the +inf rule: non_finite_value naming the level."""
    t = tables(
        accounts=[account(1, "pro"), account(2, "pro")],
        balances=[balance(1, "USDT", free=500.0, borrowed=100.0), balance(2, "USDT", free=10.0)],
        prices=PRICES,
        collateral_tiers=TIERS,
        liability_brackets=brackets("USDT", [(0, None, 5e-324, 0.25)]),
    )
    r = compute(t, NEW)
    assert r.account_risk["account_id"].to_list() == [2]  # no debt: level +inf by the rule, scored
    assert r.account_risk["pro_margin_level_new"].to_list() == [INF]
    detail = r.data_issues.filter(pl.col("account_id") == 1)["detail"].item()
    assert detail == "pro_margin_level_old is inf"


def test_negative_zero_quantities_are_not_negative_and_levels_are_plus_inf():
    row, _ = run_one([balance(1, "USDT", free=5.0, borrowed=-0.0, interest=-0.0)])
    assert row["total_liability_usdt"] == 0.0
    assert row["classic_margin_level"] == INF  # +inf, never -inf for a -0.0 denominator
    assert row["pro_margin_level_old"] == INF


# ---------------------------------------------------------------------------- zero prices


def test_zero_price_asset_held_and_owed_counts_for_nothing():
    row, _ = run_one([balance(1, "Z0", free=1e9, borrowed=1e6)])
    assert_values(
        row,
        total_asset_usdt=0.0,
        total_liability_usdt=0.0,
        collateral_usdt=0.0,
        maintenance_margin_usdt=0.0,
        initial_margin_usdt=0.0,
        classic_margin_level=INF,
        classic_collateral_margin_level=INF,
        pro_margin_level_old=INF,
        pro_margin_level_new=INF,
        bad_debt_usdt=0.0,
    )


def test_zero_price_next_to_priced_assets():
    row, _ = run_one([balance(1, "Z0", free=3, borrowed=7), balance(1, "USDT", free=300, borrowed=100)])
    assert_values(
        row,
        total_asset_usdt=300.0,
        total_liability_usdt=100.0,
        classic_margin_level=3.0,
        maintenance_margin_usdt=12.5,
    )


def test_order_on_a_zero_priced_base():
    # BUY 4 Z0 at limit 2 USDT: gives 4*2*1*1.0 = 8, receives 4*0*0.5 = 0 -> loss 8
    row, _ = run_one([balance(1, "USDT", free=100)], [order(1, 1, "Z0", "USDT", "BUY", 2.0, 4.0)])
    assert row["open_order_loss_usdt"] == 8.0


def test_order_at_limit_price_zero():
    # SELL 2 BTC at limit 0: gives 2*65536*0.75 = 98304, receives 0
    row, _ = run_one([balance(1, "BTC", free=2)], [order(1, 1, "BTC", "USDT", "SELL", 0.0, 2.0)])
    assert row["open_order_loss_usdt"] == 98304.0


# ---------------------------------------------------------------------------- only interest / only orders


def test_account_with_only_interest():
    row, r = run_one([balance(1, "USDT", interest=10.0)])
    assert_values(
        row,
        total_asset_usdt=0.0,
        total_liability_usdt=10.0,
        collateral_usdt=0.0,
        net_equity_usdt=-10.0,
        net_collateral_usdt=-10.0,
        maintenance_margin_usdt=1.25,
        initial_margin_usdt=2.5,
        classic_margin_level=0.0,
        classic_collateral_margin_level=0.0,
        pro_margin_level_old=-8.0,
        pro_margin_level_new=-8.0,
        pro_available_margin_usdt=0.0,
        bad_debt_usdt=10.0,
    )
    assert row["liquidation"] is True and row["margin_call"] is True
    assert ("LIQUIDATION", "classic_3x") in {
        (str(a), b) for a, b in r.actions.select("action", "reason").rows()
    }


def test_account_with_only_interest_in_a_non_usdt_asset():
    row, _ = run_one([balance(1, "ETH", interest=0.25)], mode="pro")
    assert_values(
        row,
        total_liability_usdt=1024.0,
        maintenance_margin_usdt=128.0,
        initial_margin_usdt=256.0,
        pro_margin_level_new=-8.0,
        margin_level=-8.0,
    )
    assert row["liquidation"] is True


def test_account_with_only_orders():
    # no balance rows: BUY 0.5 BTC at 65536 USDT: gives 32768, receives 0.5*65536*0.75 = 24576 -> 8192
    row, _ = run_one(orders=[order(1, 1, "BTC", "USDT", "BUY", BTC, 0.5)], mode="pro")
    assert_values(
        row,
        total_asset_usdt=0.0,
        total_liability_usdt=0.0,
        collateral_usdt=0.0,
        maintenance_margin_usdt=0.0,
        open_order_loss_usdt=8192.0,
        classic_margin_level=INF,
        pro_margin_level_old=INF,
        pro_margin_level_new=INF,
        margin_level=INF,
        pro_available_margin_usdt=0.0,
    )
    assert row["liquidation"] is False and row["margin_call"] is False


def test_account_with_nothing_at_all():
    row, r = run_one()
    assert all(row[c] == 0.0 for c in QUANTITY_COLUMNS)
    assert all(row[c] == INF for c in LEVEL_COLUMNS)
    assert r.actions.filter(pl.col("action").is_in(["LIQUIDATION", "MARGIN_CALL"])).height == 0


def test_orders_are_not_netted():
    # a losing BUY (loss 8192) and a winning SELL (BTC SELL at 2x index: received > given) do not offset
    row, _ = run_one(
        orders=[order(1, 1, "BTC", "USDT", "BUY", BTC, 0.5), order(1, 2, "BTC", "USDT", "SELL", 2 * BTC, 0.5)]
    )
    assert row["open_order_loss_usdt"] == 8192.0


# ---------------------------------------------------------------------------- brackets without debt


def test_asset_with_brackets_but_no_debt_adds_no_margin():
    row, _ = run_one([balance(1, "BTC", free=1.0), balance(1, "ETH", free=2.0)], mode="pro")
    assert_values(
        row,
        total_liability_usdt=0.0,
        maintenance_margin_usdt=0.0,
        initial_margin_usdt=0.0,
        pro_margin_level_old=INF,
        pro_margin_level_new=INF,
        classic_margin_level=INF,
        collateral_usdt=0.75 * BTC + 0.5 * 2 * ETH,
    )


def test_only_owed_assets_count_in_margin():
    # BTC held (brackets, no debt) next to owed USDT: only USDT's bracket is used
    row, _ = run_one([balance(1, "BTC", free=1.0), balance(1, "USDT", borrowed=1024.0)])
    assert_values(row, maintenance_margin_usdt=128.0, initial_margin_usdt=256.0, classic_margin_level=64.0)


def test_debt_across_bracket_slices():
    # 2 BTC owed = 131072 USDT: 0.0625*65536 + 0.125*65536 = 12288 maintenance
    row, _ = run_one([balance(1, "USDT", free=2.0**20), balance(1, "BTC", borrowed=1.5, interest=0.5)])
    assert_values(
        row, total_liability_usdt=131072.0, maintenance_margin_usdt=12288.0, initial_margin_usdt=24576.0
    )


# ---------------------------------------------------------------------------- missing prices, untouched


@pytest.mark.parametrize(
    "rows",
    [
        [balance(1, "USDT", free=10)],
        [balance(1, "USDT", free=10), balance(1, "DOGE")],  # all-zero row of an unpriced asset
        [balance(1, "USDT", free=10), balance(1, "NOPX")],  # tiers but no price, all-zero row
    ],
)
def test_price_missing_only_for_untouched_assets_is_no_issue(rows):
    row, _ = run_one(rows)
    assert row["total_asset_usdt"] == 10.0


def test_price_missing_for_a_touched_asset_is_an_issue_for_that_account_only():
    t = tables(
        accounts=[account(1), account(2)],
        balances=[balance(1, "USDT", free=10), balance(2, "NOPX", free=1)],
        prices=PRICES,
        collateral_tiers=TIERS,
        liability_brackets=BRACKETS,
    )
    r = compute(t, NEW)
    assert r.account_risk["account_id"].to_list() == [1]
    assert [(i["account_id"], i["code"]) for i in r.data_issues.to_dicts()] == [(2, "missing_price")]


def test_many_assets_in_one_account():
    n = 200
    prices = PRICES + [row for i in range(n) for row in ticking(f"A{i}", 2.0)]
    tier_list = TIERS + [r for i in range(n) for r in tiers(f"A{i}", [(0, None, 0.5)])]
    bracket_list = BRACKETS + [r for i in range(n) for r in brackets(f"A{i}", [(0, None, 0.125, 0.25)])]
    bals = [balance(1, f"A{i}", free=4.0, borrowed=1.0) for i in range(n)]
    t = tables(
        accounts=[account(1)],
        balances=bals,
        prices=prices,
        collateral_tiers=tier_list,
        liability_brackets=bracket_list,
    )
    row = compute(t, NEW).account_risk.to_dicts()[0]
    assert_values(
        row,
        total_asset_usdt=8.0 * n,
        total_liability_usdt=2.0 * n,
        collateral_usdt=4.0 * n,
        maintenance_margin_usdt=0.25 * n,
        classic_margin_level=4.0,
    )
