"""The small universe of the robustness tests: five good assets (USDT, BTC, ETH, BNB, DOGE) with
hand-set reference data, one broken asset per way reference data can be wrong, and `clean_tables(n,
seed)`, a valid input of n accounts generated vectorized with numpy, with exactly the dtypes of
schemas.INPUT_SCHEMAS (no data issue expected). Faults go in with faults.inject_faults(...,
reference=reference_tables(broken=True)).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl

from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.synthetic.faults import (
    BAD_BRACKET,
    BAD_RATE,
    GAP,
    INF_PRICE,
    LATE_PRICE,
    NAN_PRICE,
    NEG_PRICE,
    NO_BRACKETS,
    NO_PRICE,
    NO_TIERS,
    NOT_AT_ZERO,
    NULL_PRICE,
    OVERLAP,
    STALE_PRICE,
    TIED_PRICE,
)

UTC = dt.UTC
EPOCH = dt.datetime(2020, 1, 1, tzinfo=UTC)
AS_OF = dt.datetime(2025, 1, 21, 10, tzinfo=UTC)
AS_OF_TEXT = "2025-01-21T10:00:00Z"
COMPLIANT = dt.datetime(2024, 12, 17, tzinfo=UTC)

# good assets: price, one-or-two-slice collateral tiers, liability brackets
GOOD = {"USDT": 1.0, "BTC": 100_000.0, "ETH": 4_000.0, "BNB": 700.0, "DOGE": 0.25}
UNTOUCHED = "UNTOUCHED"  # broken tiers and brackets, no price; nobody holds it: never an issue


def _frame(name: str, data: dict[str, Any]) -> pl.DataFrame:
    schema = INPUT_SCHEMAS[name]
    return pl.DataFrame(data, schema=schema) if data else pl.DataFrame(schema=schema)


def _rows(name: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=INPUT_SCHEMAS[name])


def tier_rows(
    asset: str, slices: Iterable[tuple[float, float | None, float]], eff: dt.datetime = EPOCH
) -> list[dict[str, Any]]:
    """Collateral tier rows of one asset: slices (lower_usdt, upper_usdt or None, collateral_ratio)."""
    return [
        {
            "asset": asset,
            "effective_from": eff,
            "lower_usdt": float(lo),
            "upper_usdt": None if up is None else float(up),
            "collateral_ratio": float(r),
        }
        for lo, up, r in slices
    ]


def bracket_rows(
    asset: str, slices: Iterable[tuple[float, float | None, float, float]], eff: dt.datetime = EPOCH
) -> list[dict[str, Any]]:
    """Liability bracket rows of one asset: slices (lower_usdt, upper_usdt or None, mmr, imr).

    `leverage` is informational (no formula reads it): 1 / imr.
    """
    return [
        {
            "asset": asset,
            "effective_from": eff,
            "lower_usdt": float(lo),
            "upper_usdt": None if up is None else float(up),
            "leverage": (1.0 / imr) if imr else 1.0,
            "maintenance_margin_rate": float(mmr),
            "initial_margin_rate": float(imr),
        }
        for lo, up, mmr, imr in slices
    ]


# a price feed that keeps ticking: the same value every 12 hours over the window the tests value at,
# so a price is in effect and fresh (at most 12 h old) at any as_of in it
HEARTBEAT = [dt.datetime(2024, 12, 1, tzinfo=UTC) + dt.timedelta(hours=12 * i) for i in range(125)]


def ticking(asset: str, price_usdt: float | None) -> list[dict]:
    """Price rows of one asset at every HEARTBEAT instant (2024-12-01 .. 2025-02-01)."""
    return [{"asset": asset, "price_usdt": price_usdt, "priced_at": at} for at in HEARTBEAT]


def reference_tables(broken: bool = False) -> dict[str, pl.DataFrame]:
    """prices, collateral_tiers, liability_brackets for GOOD (and, if `broken`, the broken assets)."""
    prices = [row for a, p in GOOD.items() for row in ticking(a, p)]
    # an older and a future price for BTC: the job must take the latest priced_at <= as_of
    prices += [
        {"asset": "BTC", "price_usdt": 1.0, "priced_at": EPOCH - dt.timedelta(days=1)},
        {"asset": "BTC", "price_usdt": 7.0, "priced_at": AS_OF + dt.timedelta(microseconds=1)},
    ]
    tiers: list[dict] = []
    brackets: list[dict] = []
    for a in GOOD:
        if a == "USDT":
            tiers += tier_rows(a, [(0, None, 1.0)])
            brackets += bracket_rows(a, [(0, None, 0.125, 0.25)])
        else:
            tiers += tier_rows(a, [(0, 1e6, 0.95), (1e6, None, 0.5)])
            brackets += bracket_rows(a, [(0, 1e6, 0.05, 0.1), (1e6, None, 0.1, 0.2)])
    if broken:
        for a in [NO_TIERS, NO_BRACKETS, GAP, OVERLAP, BAD_RATE, NOT_AT_ZERO, BAD_BRACKET]:
            prices += ticking(a, 2.0)
        prices += [
            {"asset": LATE_PRICE, "price_usdt": 2.0, "priced_at": AS_OF + dt.timedelta(seconds=1)},
            *ticking(INF_PRICE, float("inf")),
            *ticking(NAN_PRICE, float("nan")),
            *ticking(NEG_PRICE, -1.0),
            {"asset": STALE_PRICE, "price_usdt": 2.0, "priced_at": EPOCH},  # a feed that stopped long ago
            *ticking(TIED_PRICE, 2.0),
            *ticking(TIED_PRICE, 2.5),  # two values at every instant: ambiguous
            *ticking(NULL_PRICE, None),
        ]
        ok_t = [(0, None, 0.9)]
        ok_b = [(0, None, 0.05, 0.1)]
        price_faults = [INF_PRICE, NAN_PRICE, NEG_PRICE, STALE_PRICE, TIED_PRICE, NULL_PRICE]
        for a in [NO_PRICE, LATE_PRICE, NO_BRACKETS, BAD_BRACKET, *price_faults]:
            tiers += tier_rows(a, ok_t)
        for a in [
            NO_PRICE,
            LATE_PRICE,
            NO_TIERS,
            GAP,
            OVERLAP,
            BAD_RATE,
            NOT_AT_ZERO,
            *price_faults,
        ]:
            brackets += bracket_rows(a, ok_b)
        tiers += tier_rows(GAP, [(0, 100, 0.9), (200, None, 0.8)])
        tiers += tier_rows(OVERLAP, [(0, 100, 0.9), (50, None, 0.8)])
        tiers += tier_rows(BAD_RATE, [(0, None, 1.5)])
        tiers += tier_rows(NOT_AT_ZERO, [(100, None, 0.9)])
        brackets += bracket_rows(BAD_BRACKET, [(0, None, -0.1, 0.1)])
        # broken tables of an asset nobody holds, owes or trades: never an issue
        tiers += tier_rows(UNTOUCHED, [(5, 1, 7.0)])
        brackets += bracket_rows(UNTOUCHED, [(0, 10, 2.0, 3.0)])
    return {
        "prices": _rows("prices", prices),
        "collateral_tiers": _rows("collateral_tiers", tiers),
        "liability_brackets": _rows("liability_brackets", brackets),
    }


def clean_tables(n: int, seed: int = 0, first_id: int = 1_000) -> dict[str, pl.DataFrame]:
    """A valid input of n accounts (ids first_id, first_id+2, ...): no data issue expected."""
    rng = np.random.default_rng(seed)
    ids = first_id + 2 * np.arange(n, dtype=np.int64)
    pro = rng.random(n) < 0.4
    t_q = pl.Series(
        np.where(
            rng.random(n) < 0.8,
            np.datetime64(COMPLIANT.replace(tzinfo=None), "us"),
            np.datetime64("NaT", "us"),
        )
    ).dt.replace_time_zone("UTC")
    accounts = _frame(
        "accounts",
        {
            "account_id": ids,
            "margin_mode": np.where(pro, "pro", "classic"),
            "classic_leverage": np.where(rng.random(n) < 0.5, 3, 5).astype(np.int64),
            "cross_margin_activated": rng.random(n) < 0.9,
            "pro_quiz_passed": rng.random(n) < 0.8,
            "questionnaire_completed_at": t_q,
            "terms_agreed_at": t_q,
            "country": rng.choice(np.array(["FR", "DE", "SG", "US", "JP"]), n),
        },
    )
    # balances: every account holds USDT; each other asset with probability 0.3, owed with 0.3 of that
    assets = list(GOOD)
    parts = []
    for _j, a in enumerate(assets):
        take = np.ones(n, bool) if a == "USDT" else rng.random(n) < 0.3
        m = int(take.sum())
        scale = 1e5 / GOOD[a]
        owed = rng.random(m) < 0.3
        parts.append(
            pl.DataFrame(
                {
                    "account_id": ids[take],
                    "asset": [a] * m,
                    "free": np.round(rng.random(m) * scale, 6),
                    "locked": np.where(rng.random(m) < 0.2, np.round(rng.random(m) * scale / 10, 6), 0.0),
                    "borrowed": np.where(owed, np.round(rng.random(m) * scale / 2, 6), 0.0),
                    "interest": np.where(owed, np.round(rng.random(m) * scale / 1000, 6), 0.0),
                },
                schema=INPUT_SCHEMAS["balances"],
            )
        )
    balances = pl.concat(parts).sort("account_id", "asset")
    # open orders on BTC/USDT and ETH/BTC for ~20% of accounts
    has = rng.random(n) < 0.2
    m = int(has.sum())
    pair = rng.random(m) < 0.7
    orders = _frame(
        "open_orders",
        {
            "account_id": ids[has],
            "order_id": np.arange(m, dtype=np.int64) + 1,
            "base_asset": np.where(pair, "BTC", "ETH"),
            "quote_asset": np.where(pair, "USDT", "BTC"),
            "side": np.where(rng.random(m) < 0.5, "BUY", "SELL"),
            "price": np.where(pair, 90_000.0 + rng.integers(0, 20_000, m), 0.04),
            "remaining_qty": np.round(rng.random(m), 4) + 0.001,
        },
    )
    sw = rng.random(n) < 0.1
    k = int(sw.sum())
    switches = _frame(
        "mode_switches",
        {
            "account_id": ids[sw],
            "switched_at": np.datetime64(AS_OF.replace(tzinfo=None), "us")
            - rng.integers(0, 30 * 3600, k).astype("timedelta64[s]"),
        },
    )
    return {
        "accounts": accounts,
        "balances": balances,
        "open_orders": orders,
        "mode_switches": switches,
        **reference_tables(broken=False),
    }
