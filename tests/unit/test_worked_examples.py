"""Worked examples computed by hand (arithmetic in the comments), checked against the engine.

Reference data used by every example (prices at EPOCH, tiers/brackets effective from EPOCH):

    prices: USDT 1, BTC 30,000, ETH 3,000
    collateral tiers (USDT value slices -> collateral ratio):
        USDT  [0, inf) 1.0
        BTC   [0, 50k) 0.95 | [50k, 200k) 0.90 | [200k, inf) 0.50
        ETH   [0, 100k) 0.90 | [100k, inf) 0.80
    liability brackets (USDT value slices -> MMR / IMR), BTC and ETH from the exchange's public example:
        BTC   [0, 50k) 5% / 11.12% | [50k, 100k) 7% / 14.29% | [100k, inf) 8% / 20%
        ETH   [0, 30k) 5% / 11.12% | [30k, inf) 7% / 14.29%
        USDT  [0, 100k) 3% / 10%   | [100k, inf) 5% / 20%
    first-slice collateral ratios (open-order loss): USDT 1.0, BTC 0.95, ETH 0.90

Classic thresholds (shipped policy): 3x IRR 1.5 / MC <= 1.3 / liq <= 1.1, 5x IRR 1.25 / MC <= 1.15 /
liq <= 1.1; Pro MC <= 1.5, liq <= 1.0.
"""

from __future__ import annotations

import math

import pytest

from support.inputs import (
    NEW,
    OLD,
    account,
    actions_of,
    balance,
    brackets,
    one,
    order,
    run,
    tables,
    tiers,
    ts,
)

R = {"rel": 1e-12}  # hand results that are not exactly representable

REF_PRICES = {"USDT": 1.0, "BTC": 30000.0, "ETH": 3000.0}
REF_TIERS = [
    tiers("USDT", [(0, None, 1.0)]),
    tiers("BTC", [(0, 50_000, 0.95), (50_000, 200_000, 0.90), (200_000, None, 0.50)]),
    tiers("ETH", [(0, 100_000, 0.90), (100_000, None, 0.80)]),
]
REF_BRACKETS = [
    brackets(
        "BTC", [(0, 50_000, 0.05, 0.1112), (50_000, 100_000, 0.07, 0.1429), (100_000, None, 0.08, 0.20)]
    ),
    brackets("ETH", [(0, 30_000, 0.05, 0.1112), (30_000, None, 0.07, 0.1429)]),
    brackets("USDT", [(0, 100_000, 0.03, 0.10), (100_000, None, 0.05, 0.20)]),
]


def ref_tables(accounts, balances, orders=(), switches=()):
    return tables(
        accounts=accounts,
        balances=balances,
        open_orders=orders,
        mode_switches=switches,
        prices=REF_PRICES,
        collateral_tiers=REF_TIERS,
        liability_brackets=REF_BRACKETS,
    )


# =============================================================================== spec example
def test_spec_exchange_example_brackets():
    """13 BTC borrowed at 30,000 and 13 ETH at 3,000 (both sold: 429,000 USDT proceeds + 71,000 own)."""
    t = ref_tables(
        [account(1, "pro")],
        [
            balance(1, "USDT", free=500_000),
            balance(1, "BTC", borrowed=13),
            balance(1, "ETH", borrowed=13),
        ],
    )
    row = one(run(t, NEW), 1)
    # BTC liability 13 * 30,000 = 390,000 USDT
    #   MM = 50,000*5% + 50,000*7% + 290,000*8%     = 2,500 + 3,500 + 23,200 = 29,200
    #   IM = 50,000*11.12% + 50,000*14.29% + 290,000*20% = 5,560 + 7,145 + 58,000 = 70,705
    # ETH liability 13 * 3,000 = 39,000 USDT
    #   MM = 30,000*5% + 9,000*7%          = 1,500 + 630     = 2,130
    #   IM = 30,000*11.12% + 9,000*14.29%  = 3,336 + 1,286.1 = 4,622.1
    assert row["maintenance_margin_usdt"] == pytest.approx(29_200 + 2_130, **R)  # 31,330
    assert row["initial_margin_usdt"] == pytest.approx(70_705 + 4_622.1, **R)  # 75,327.1
    assert row["maintenance_margin_usdt"] == pytest.approx(31_330, **R)
    assert row["initial_margin_usdt"] == pytest.approx(75_327.1, **R)
    # total asset 500,000 (collateral 500,000), liability 429,000, net equity = net collateral = 71,000
    assert row["total_asset_usdt"] == 500_000
    assert row["collateral_usdt"] == 500_000
    assert row["total_liability_usdt"] == 429_000
    assert row["net_equity_usdt"] == 71_000
    assert row["net_collateral_usdt"] == 71_000
    # Pro level (old = new, no haircut, no orders) = 71,000 / 31,330 = 2.2662...: no margin call
    assert row["pro_margin_level_old"] == pytest.approx(71_000 / 31_330, **R)
    assert row["pro_margin_level_new"] == pytest.approx(71_000 / 31_330, **R)
    assert row["margin_call"] is False
    # available margin max(71,000 - 0 - 75,327.1, 0) = 0 -> borrowing blocked
    assert row["pro_available_margin_usdt"] == 0.0
    assert row["borrow_blocked_reason"] == "no_available_margin"
    # switching back to 3x Classic needs collateral level 500,000/429,000 = 1.1655 > 1.5: no
    assert row["classic_collateral_margin_level"] == pytest.approx(500_000 / 429_000, **R)
    assert row["can_switch_to_classic"] is False


@pytest.mark.parametrize(
    ("asset", "qty", "mm", "im"),
    [
        # BTC 1 -> 30,000: all in the first bracket: 1,500 / 3,336
        ("BTC", 1, 30_000 * 0.05, 30_000 * 0.1112),
        # BTC 5 -> 150,000: MM 2,500 + 3,500 + 50,000*8% (4,000) = 10,000
        #                   IM 5,560 + 7,145 + 50,000*20% (10,000) = 22,705
        ("BTC", 5, 10_000, 22_705),
        # ETH 10 -> 30,000 = exactly the end of the first bracket: 1,500 / 3,336
        ("ETH", 10, 1_500, 3_336),
        # USDT 250,000: 100,000*3% + 150,000*5% = 3,000 + 7,500 ; IM 10,000 + 30,000
        ("USDT", 250_000, 10_500, 40_000),
    ],
)
def test_bracket_sums_by_hand(asset, qty, mm, im):
    t = ref_tables(
        [account(1, "pro")],
        [balance(1, "USDT", free=1_000_000), balance(1, asset, borrowed=qty)]
        if asset != "USDT"
        else [balance(1, "USDT", free=1_000_000, borrowed=qty)],
    )
    row = one(run(t, NEW), 1)
    assert row["maintenance_margin_usdt"] == pytest.approx(mm, **R)
    assert row["initial_margin_usdt"] == pytest.approx(im, **R)


# =============================================================================== collateral haircut
def test_multi_tier_collateral_haircut():
    t = ref_tables(
        [account(1, "classic")],
        [
            balance(1, "USDT", free=1_000, borrowed=100_000),
            balance(1, "BTC", free=7, locked=1),  # 8 BTC = 240,000 USDT
            balance(1, "ETH", free=50),  # 150,000 USDT
        ],
    )
    row = one(run(t, NEW), 1)
    # BTC 240,000: 50,000*0.95 + 150,000*0.90 + 40,000*0.50 = 47,500 + 135,000 + 20,000 = 202,500
    # ETH 150,000: 100,000*0.90 + 50,000*0.80 = 90,000 + 40,000 = 130,000
    # USDT 1,000 * 1.0 = 1,000
    assert row["collateral_usdt"] == pytest.approx(202_500 + 130_000 + 1_000, **R)  # 333,500
    assert row["total_asset_usdt"] == 391_000  # 1,000 + 240,000 + 150,000
    assert row["total_liability_usdt"] == 100_000
    assert row["net_collateral_usdt"] == pytest.approx(233_500, **R)
    assert row["classic_margin_level"] == pytest.approx(3.91, **R)
    assert row["classic_collateral_margin_level"] == pytest.approx(3.335, **R)


@pytest.mark.parametrize(
    ("btc", "collateral"),
    [
        (1, 30_000 * 0.95),  # 28,500: first slice only
        (5, 47_500 + 100_000 * 0.90),  # 150,000 -> 137,500
        (20, 47_500 + 135_000 + 400_000 * 0.50),  # 600,000 -> 382,500
    ],
)
def test_btc_haircut_by_tier(btc, collateral):
    t = ref_tables([account(1, "classic")], [balance(1, "BTC", free=btc)])
    row = one(run(t, NEW), 1)
    assert row["collateral_usdt"] == pytest.approx(collateral, **R)


# =============================================================================== open-order loss
@pytest.mark.parametrize(
    ("side", "base", "quote", "limit", "qty", "loss"),
    [
        # BUY ETH/BTC 10 @ 0.12 BTC: given 10*0.12*30,000*0.95 = 34,200; received 10*3,000*0.90 = 27,000
        ("BUY", "ETH", "BTC", 0.12, 10, 7_200),
        # BUY ETH/BTC 10 @ 0.1 (at the index cross): given 28,500; received 27,000 -> 1,500 (haircuts)
        ("BUY", "ETH", "BTC", 0.1, 10, 1_500),
        # BUY ETH/BTC 10 @ 0.08: given 22,800 < received 27,000 -> 0
        ("BUY", "ETH", "BTC", 0.08, 10, 0),
        # SELL ETH/BTC 4 @ 0.09: given 4*3,000*0.90 = 10,800; received 4*0.09*30,000*0.95 = 10,260 -> 540
        ("SELL", "ETH", "BTC", 0.09, 4, 540),
        # SELL ETH/BTC 4 @ 0.11: received 12,540 > given 10,800 -> 0
        ("SELL", "ETH", "BTC", 0.11, 4, 0),
        # BUY BTC/USDT 10 @ 30,000: given 300,000*1*1; received 10*30,000*0.95 (first slice, not tiered)
        ("BUY", "BTC", "USDT", 30_000, 10, 15_000),
        # SELL BTC/ETH 1 @ 9 ETH: given 30,000*0.95 = 28,500; received 9*3,000*0.90 = 24,300 -> 4,200
        ("SELL", "BTC", "ETH", 9, 1, 4_200),
        # SELL ETH/USDT 2 @ 3,500: given 5,400; received 7,000 -> 0
        ("SELL", "ETH", "USDT", 3_500, 2, 0),
    ],
)
def test_open_order_loss_one_order(side, base, quote, limit, qty, loss):
    t = ref_tables(
        [account(1, "pro")], [balance(1, "USDT", free=100)], [order(1, 7, base, quote, side, limit, qty)]
    )
    row = one(run(t, NEW), 1)
    if loss:
        assert row["open_order_loss_usdt"] == pytest.approx(loss, **R)
    else:  # max(0, given - received) with given < received is exactly 0
        assert row["open_order_loss_usdt"] == 0.0


def test_open_order_loss_is_not_netted():
    orders = [
        order(1, 1, "ETH", "BTC", "BUY", 0.12, 10),  # loss 7,200
        order(1, 2, "ETH", "BTC", "BUY", 0.08, 10),  # gain 4,200 -> counts 0, not -4,200
        order(1, 3, "ETH", "BTC", "SELL", 0.09, 4),  # loss 540
    ]
    row = one(run(ref_tables([account(1, "classic")], [balance(1, "USDT", free=100)], orders), NEW), 1)
    assert row["open_order_loss_usdt"] == pytest.approx(7_740, **R)


# =============================================================================== realistic Pro account
PRO_BALANCES = [
    # USDT: holding 150,000 + 20,000 = 170,000; debt 150,000 + 30 = 150,030
    balance(10, "USDT", free=150_000, locked=20_000, borrowed=150_000, interest=30),
    # BTC: holding 5 -> 150,000 USDT; collateral 50,000*0.95 + 100,000*0.90 = 137,500
    balance(10, "BTC", free=4, locked=1),
    # ETH: holding 10 -> 30,000 USDT, collateral 27,000; debt 53.5 -> 160,500 USDT
    balance(10, "ETH", free=10, borrowed=53, interest=0.5),
]
PRO_ORDERS = [
    order(10, 1, "ETH", "BTC", "BUY", 0.1, 10),  # given 10*0.1*30,000*0.95 = 28,500; received 27,000 -> 1,500
    order(10, 2, "ETH", "BTC", "SELL", 0.09, 4),  # given 10,800; received 10,260 -> 540
    order(
        10, 3, "BTC", "USDT", "BUY", 31_000, 0.5
    ),  # given 15,500; received 0.5*30,000*0.95 = 14,250 -> 1,250
    order(10, 4, "ETH", "USDT", "SELL", 3_500, 2),  # given 5,400; received 7,000 -> 0
]
# total asset      = 170,000 + 150,000 + 30,000          = 350,000
# total liability  = 150,030 + 160,500                   = 310,530
# collateral       = 170,000 + 137,500 + 27,000          = 334,500
# net equity       = 350,000 - 310,530                   = 39,470
# net collateral   = 334,500 - 310,530                   = 23,970
# open-order loss  = 1,500 + 540 + 1,250 + 0             = 3,290
# maintenance: USDT 100,000*3% + 50,030*5% = 3,000 + 2,501.5 = 5,501.5
#              ETH  30,000*5% + 130,500*7% = 1,500 + 9,135   = 10,635      -> 16,136.5
# initial:     USDT 100,000*10% + 50,030*20% = 10,000 + 10,006 = 20,006
#              ETH  30,000*11.12% + 130,500*14.29% = 3,336 + 18,648.45 = 21,984.45 -> 41,990.45
PRO_EXPECTED = {
    "total_asset_usdt": 350_000,
    "total_liability_usdt": 310_530,
    "collateral_usdt": 334_500,
    "net_equity_usdt": 39_470,
    "net_collateral_usdt": 23_970,
    "maintenance_margin_usdt": 16_136.5,
    "initial_margin_usdt": 41_990.45,
    "open_order_loss_usdt": 3_290,
    "classic_margin_level": 350_000 / 310_530,  # 1.12710...
    "classic_collateral_margin_level": 334_500 / 310_530,  # 1.07719...
    "pro_margin_level_old": 39_470 / 16_136.5,  # 2.44601...
    "pro_margin_level_new": (23_970 - 3_290) / 16_136.5,  # 20,680 / 16,136.5 = 1.28157...
    "bad_debt_usdt": 0.0,
    "partial_repayment_usdt": 0.0,
    "switches_left_today": 5,
}


@pytest.mark.parametrize("as_of", [OLD, NEW], ids=["old", "new"])
def test_realistic_pro_account(as_of):
    r = run(ref_tables([account(10, "pro", 3)], PRO_BALANCES, PRO_ORDERS), as_of)
    row = one(r, 10)
    for col, value in PRO_EXPECTED.items():
        assert row[col] == pytest.approx(value, **R), col
    new = as_of == NEW
    level = PRO_EXPECTED["pro_margin_level_new" if new else "pro_margin_level_old"]
    assert row["pro_margin_level"] == pytest.approx(level, **R)
    assert row["margin_level"] == row["pro_margin_level"]
    # new: 1.2816 <= 1.5 -> margin call (not <= 1.0); old: 2.446 -> none. The new formula (haircuts and
    # open-order loss) is what puts this account into margin call, as the exchange's notice warns.
    assert row["margin_call"] is new
    assert row["liquidation"] is False
    # available margin: new max(23,970 - 3,290 - 41,990.45, 0) = 0; old max(23,970 - 41,990.45, 0) = 0
    assert row["pro_available_margin_usdt"] == 0.0
    assert row["borrow_blocked_reason"] == "no_available_margin"
    # back to 3x Classic: new needs collateral level 1.0772 > 1.5, old classic level 1.1271 > 1.5: no
    assert row["can_switch_to_classic"] is False
    assert row["eligible_for_pro"] is False and row["pro_ineligible_reasons"] == ["already_pro"]
    assert row["pro_compliant"] is True and row["due_for_migration"] is False
    expected = [("BORROW_BLOCKED", "no_available_margin", None)]
    if new:  # out of margin call at net collateral − loss = 1.5 · 16,136.5 = 24,204.75: 3,524.75 more USDT
        expected.insert(0, ("MARGIN_CALL", "pro", 3_524.75))
    assert sorted(actions_of(r, 10)) == sorted(expected)


def test_realistic_pro_account_with_more_collateral_has_available_margin():
    """Same account with 40,000 more USDT: net collateral 63,970; new available 63,970 - 3,290 - 41,990.45."""
    bals = [dict(b) for b in PRO_BALANCES]
    bals[0]["free"] = 190_000
    for as_of, avail in [(NEW, 63_970 - 3_290 - 41_990.45), (OLD, 63_970 - 41_990.45)]:
        row = one(run(ref_tables([account(10, "pro", 3)], bals, PRO_ORDERS), as_of), 10)
        assert row["pro_available_margin_usdt"] == pytest.approx(avail, **R)  # 18,689.55 / 21,979.55
        assert row["borrow_blocked"] is False and row["borrow_blocked_reason"] is None
        # new level (63,970 - 3,290)/16,136.5 = 3.7604: no margin call
        assert row["margin_call"] is False


# =============================================================================== realistic Classic account
CLASSIC_BALANCES = [
    balance(20, "USDT", free=2_000),
    balance(20, "BTC", free=0.5),  # 15,000 USDT, collateral 15,000*0.95 = 14,250
    balance(20, "ETH", borrowed=5, interest=0.02),  # debt 5.02 * 3,000 = 15,060
]
CLASSIC_ORDERS = [order(20, 21, "ETH", "USDT", "BUY", 3_100, 1)]  # given 3,100; received 2,700 -> loss 400
# total asset 17,000; liability 15,060; collateral 16,250; net equity 1,940; net collateral 1,190
# maintenance 15,060*5% = 753; initial 15,060*11.12% = 1,674.672
CLASSIC_EXPECTED = {
    "total_asset_usdt": 17_000,
    "total_liability_usdt": 15_060,
    "collateral_usdt": 16_250,
    "net_equity_usdt": 1_940,
    "net_collateral_usdt": 1_190,
    "maintenance_margin_usdt": 753,
    "initial_margin_usdt": 1_674.672,
    "open_order_loss_usdt": 400,
    "classic_margin_level": 17_000 / 15_060,  # 1.12882
    "classic_collateral_margin_level": 16_250 / 15_060,  # 1.07902
    "pro_margin_level_old": 1_940 / 753,  # 2.5764
    "pro_margin_level_new": (1_190 - 400) / 753,  # 1.0491
    "bad_debt_usdt": 0.0,
}


@pytest.mark.parametrize("as_of", [OLD, NEW], ids=["old", "new"])
def test_realistic_classic_account(as_of):
    r = run(ref_tables([account(20, "classic", 3)], CLASSIC_BALANCES, CLASSIC_ORDERS), as_of)
    row = one(r, 20)
    for col, value in CLASSIC_EXPECTED.items():
        assert row[col] == pytest.approx(value, **R), col
    # pro_margin_level follows the policy in force even for a Classic account; margin_level is Classic's
    pro = CLASSIC_EXPECTED["pro_margin_level_new" if as_of == NEW else "pro_margin_level_old"]
    assert row["pro_margin_level"] == pytest.approx(pro, **R)
    assert row["margin_level"] == pytest.approx(17_000 / 15_060, **R)
    # 1.1288: <= 1.3 margin call, > 1.1 no liquidation
    assert (row["margin_call"], row["liquidation"]) == (True, False)
    # collateral level 1.0790 <= IRR 1.5 -> borrowing blocked
    assert row["borrow_blocked_reason"] == "collateral_below_initial_risk_ratio"
    # Pro eligibility: new: level after switch 1.049 <= 2 and net equity 1,940 <= 5,000 fail;
    # old: collateral level 1.079 <= 1.25 fails
    reasons = (
        ["pro_margin_level_after_switch", "net_equity"]
        if as_of == NEW
        else ["classic_collateral_margin_level"]
    )
    assert row["pro_ineligible_reasons"] == reasons
    assert row["eligible_for_pro"] is False
    assert row["can_switch_to_classic"] is False
    assert row["due_for_migration"] is False and row["partial_repayment_usdt"] == 0.0
    assert sorted(actions_of(r, 20)) == [
        ("BORROW_BLOCKED", "collateral_below_initial_risk_ratio", None),
        ("MARGIN_CALL", "classic_3x", 2_578.0),  # out of margin call at 1.3 · 15,060 = 19,578: 2,578 more
    ]


def test_classic_5x_liquidation_without_margin_call_row():
    # 1 BTC (30,000) held, 28,000 USDT borrowed: level 30,000/28,000 = 1.0714 <= 1.1 -> liquidation
    # collateral 28,500 / 28,000 = 1.0179 <= IRR 1.25 -> borrow blocked; bad debt 0
    r = run(
        ref_tables(
            [account(30, "classic", 5)], [balance(30, "BTC", free=1), balance(30, "USDT", borrowed=28_000)]
        ),
        NEW,
    )
    row = one(r, 30)
    assert row["classic_margin_level"] == pytest.approx(30_000 / 28_000, **R)
    assert (row["margin_call"], row["liquidation"]) == (True, True)
    assert row["maintenance_margin_usdt"] == pytest.approx(840, **R)  # 28,000 * 3%
    assert actions_of(r, 30) == [
        ("BORROW_BLOCKED", "collateral_below_initial_risk_ratio", None),
        ("LIQUIDATION", "classic_5x", None),
    ]


def test_classic_eligible_for_pro_example():
    # 10,000 USDT + 1 BTC held, 2 ETH borrowed (6,000): net equity 34,000; collateral 38,500
    # maintenance 6,000*5% = 300; level after switching (38,500 - 6,000 - 0)/300 = 108.33 > 2
    r = run(
        ref_tables(
            [account(40, "classic", 5, country="DE")],
            [balance(40, "USDT", free=10_000), balance(40, "BTC", free=1), balance(40, "ETH", borrowed=2)],
        ),
        NEW,
    )
    row = one(r, 40)
    assert row["net_equity_usdt"] == 34_000
    assert row["pro_margin_level_new"] == pytest.approx(32_500 / 300, **R)
    assert row["eligible_for_pro"] is True and row["pro_ineligible_reasons"] == []
    assert actions_of(r, 40) == [("ELIGIBLE_FOR_PRO", None, None)]


# =============================================================================== partial repayment
def test_partial_repayment_5x_by_hand():
    """Non-compliant Pro 5x: 2 BTC held (60,000), 53,000 USDT borrowed.

    classic level 60,000/53,000 = 1.1321 < 1.15 (5x margin call) -> repay to the 5x IRR T = 1.25:
    x = (T*L - A)/(T - 1) = (66,250 - 60,000)/0.25 = 25,000 <= min(A, L) = 53,000.
    Check: (60,000 - 25,000)/(53,000 - 25,000) = 35,000/28,000 = 1.25.
    """
    acc = account(50, "pro", 5, questionnaire_completed_at=None)
    bals = [balance(50, "BTC", free=2), balance(50, "USDT", borrowed=53_000)]
    for as_of, why in [
        (ts("2025-01-10T00:00:00Z"), "pending"),
        (ts("2025-01-15T00:00:00Z"), "due"),
        (NEW, "due"),
    ]:
        r = run(ref_tables([acc], bals), as_of)
        row = one(r, 50)
        assert row["partial_repayment_usdt"] == pytest.approx(25_000, **R)
        assert row["migrate_now"] is (why == "due")
        # Pro level old: net equity 7,000 / maintenance (53,000*3% = 1,590) = 4.40;
        # new: collateral of 2 BTC 47,500 + 10,000*0.9 = 56,500 -> (56,500 - 53,000)/1,590 = 2.20
        assert row["margin_call"] is False
        assert sorted(actions_of(r, 50)) == sorted(
            [
                ("BORROW_BLOCKED", "pro_not_compliant", None),
                ("MIGRATE_TO_CLASSIC", why, None),
                ("PARTIAL_REPAYMENT", None, pytest.approx(25_000, **R)),
            ]
        )


def test_partial_repayment_3x_by_hand():
    """Non-compliant Pro 3x: 5,000 USDT + 10 ETH (30,000) held, 1 BTC (30,000) borrowed.

    classic level 35,000/30,000 = 1.1667 < 1.3 -> T = 1.5: x = (45,000 - 35,000)/0.5 = 20,000.
    Check: (35,000 - 20,000)/(30,000 - 20,000) = 1.5.
    """
    acc = account(60, "pro", 3, terms_agreed_at=None)
    bals = [balance(60, "USDT", free=5_000), balance(60, "ETH", free=10), balance(60, "BTC", borrowed=1)]
    r = run(ref_tables([acc], bals), NEW)
    row = one(r, 60)
    assert row["classic_margin_level"] == pytest.approx(35_000 / 30_000, **R)
    assert row["partial_repayment_usdt"] == pytest.approx(20_000, **R)
    assert ("PARTIAL_REPAYMENT", None, pytest.approx(20_000, **R)) in actions_of(r, 60)


def test_partial_repayment_clipped_to_assets_by_hand():
    """Non-compliant Pro 3x under water: 1 ETH (3,000) held, 5,000 USDT borrowed.

    x = (1.5*5,000 - 3,000)/0.5 = 9,000 -> clipped to min(A, L) = 3,000 (everything held is repaid);
    bad debt 5,000 - 3,000 = 2,000.
    """
    acc = account(70, "pro", 3, questionnaire_completed_at=None)
    r = run(ref_tables([acc], [balance(70, "ETH", free=1), balance(70, "USDT", borrowed=5_000)]), NEW)
    row = one(r, 70)
    assert row["partial_repayment_usdt"] == 3_000
    assert row["bad_debt_usdt"] == 2_000
    # Pro level new: (2,700 - 5,000)/150 = -15.33 -> liquidation, reason "pro", no MARGIN_CALL row
    assert row["pro_margin_level_new"] == pytest.approx(-2_300 / 150, **R)
    assert sorted(actions_of(r, 70)) == [
        ("BORROW_BLOCKED", "pro_not_compliant", None),
        ("LIQUIDATION", "pro", None),
        ("MIGRATE_TO_CLASSIC", "due", None),
        ("PARTIAL_REPAYMENT", None, 3_000.0),
    ]


# =============================================================================== many accounts, one run
def test_all_examples_in_one_run_match_the_single_runs():
    """The examples above, together in one frame (no cross-talk between accounts)."""
    accs = [account(10, "pro", 3), account(20, "classic", 3), account(30, "classic", 5)]
    bals = (
        PRO_BALANCES + CLASSIC_BALANCES + [balance(30, "BTC", free=1), balance(30, "USDT", borrowed=28_000)]
    )
    r = run(ref_tables(accs, bals, PRO_ORDERS + CLASSIC_ORDERS), NEW)
    assert r.account_risk["account_id"].to_list() == [10, 20, 30]
    assert r.data_issues.height == 0
    for col, value in PRO_EXPECTED.items():
        assert one(r, 10)[col] == pytest.approx(value, **R), col
    for col, value in CLASSIC_EXPECTED.items():
        assert one(r, 20)[col] == pytest.approx(value, **R), col
    assert one(r, 30)["liquidation"] is True
    assert r.actions["account_id"].to_list() == sorted(r.actions["account_id"].to_list())
    assert not math.isnan(r.account_risk["margin_level"].sum())
