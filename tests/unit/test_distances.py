"""Distances to thresholds (docs/rules.md §8.2): liquidation_drop/_rise, margin_call_drop/_rise, on
hand-worked Classic and Pro accounts (tests/property/test_distances.py checks them against the scalar
reference). Every price is fresh: priced one hour before as_of.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from crossmargin.rules.distances import DISTANCE_COLUMNS
from support.inputs import (
    NEW,
    account,
    balance,
    brackets,
    fresh_prices,
    one_bracket,
    one_slice,
    order,
    run,
    tables,
    threshold_policy,
    tiers,
)

COLUMNS = DISTANCE_COLUMNS


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


# ----------------------------------------------------------------------------- hand-worked edges


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
