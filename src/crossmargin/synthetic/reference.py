"""Reference data of the synthetic universe: collateral tiers and liability brackets per asset class
(two `effective_from` versions each), the price history, and the assets that exist only to carry
injected faults. None of it depends on the seed, so the showcase holds for every seed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.synthetic.shapes import HALTED, SAMPLE, Shape, heartbeat_times
from crossmargin.synthetic.universe import (
    AS_OF_US,
    ASSET_CLASS,
    DAILY_VOL,
    IDX,
    REF_PRICE,
    SHOWCASE_AS_OF,
    SYMBOLS,
    TIER_V1,
    TIER_V2,
    US_DAY,
    US_HOUR,
    epoch_us,
    utc,
)

REFERENCE_SEED = 20250121  # reference data (prices, tiers) is the same for every --seed

# Assets that exist only to inject faults (written only when faults > 0):
# NOPRICE has tiers and brackets but no price; NOTIERS no collateral tiers; NOBRACKETS no liability
# brackets; GAPTIER a collateral tier table with a gap [100k, 150k); STALEPRICE a price 30 days old
# at the showcase as_of; TIEDPRICE two different prices at the same instant.
FAULT_ASSETS: list[tuple[str, float | None, bool, bool]] = [
    ("NOPRICE", None, True, True),
    ("NOTIERS", 2.0, False, True),
    ("NOBRACKETS", 3.0, True, False),
    ("GAPTIER", 4.0, True, True),
    ("STALEPRICE", 5.0, True, True),
    ("TIEDPRICE", 6.0, True, True),
]
# price rows of the fault assets beyond their one row a day before the showcase as_of: (asset, price, age)
FAULT_PRICE_ROWS = [("TIEDPRICE", 6.5, dt.timedelta(days=1))]
FAULT_PRICE_AGE = {"STALEPRICE": dt.timedelta(days=30)}

# Collateral tiers per class: (lower_usdt, upper_usdt or None, collateral_ratio); v1 then v2.
COLLATERAL_TIERS: dict[str, tuple[list[tuple[float, float | None, float]], ...]] = {
    "stable": (
        [(0, 5e6, 1.0), (5e6, None, 0.95)],
        [(0, 1e7, 1.0), (1e7, None, 0.95)],
    ),
    "major": (
        [(0, 1e6, 0.9), (1e6, 5e6, 0.85), (5e6, 2e7, 0.75), (2e7, None, 0.5)],
        [(0, 1e6, 0.95), (1e6, 5e6, 0.9), (5e6, 2e7, 0.8), (2e7, None, 0.5)],
    ),
    "large": (
        [(0, 2.5e5, 0.85), (2.5e5, 1e6, 0.75), (1e6, 5e6, 0.55), (5e6, None, 0.3)],
        [(0, 2.5e5, 0.9), (2.5e5, 1e6, 0.8), (1e6, 5e6, 0.6), (5e6, None, 0.3)],
    ),
    "mid": (
        [(0, 1e5, 0.7), (1e5, 5e5, 0.55), (5e5, 2e6, 0.35), (2e6, None, 0.1)],
        [(0, 1e5, 0.75), (1e5, 5e5, 0.6), (5e5, 2e6, 0.4), (2e6, None, 0.1)],
    ),
    "small": (
        [(0, 5e4, 0.5), (5e4, 2.5e5, 0.35), (2.5e5, 1e6, 0.15), (1e6, None, 0.05)],
        [(0, 5e4, 0.6), (5e4, 2.5e5, 0.4), (2.5e5, 1e6, 0.2), (1e6, None, 0.05)],
    ),
    "gap": (
        [(0, 1e5, 0.7), (1.5e5, None, 0.5)],
        [(0, 1e5, 0.75), (1.5e5, None, 0.5)],
    ),
}
# Liability brackets per class: (lower_usdt, upper_usdt or None, leverage, MMR, IMR); v1 then v2.
# BTC and ETH v1 give the textbook example: MM 31,330 / IM 75,327.1 for 13 BTC @30k + 13 ETH @3k.
LIABILITY_BRACKETS: dict[str, tuple[list[tuple[float, float | None, float, float, float]], ...]] = {
    "stable": (
        [(0, 1e6, 10, 0.05, 0.1112), (1e6, 5e6, 8, 0.07, 0.1429), (5e6, None, 5, 0.1, 0.25)],
        [(0, 1e6, 10, 0.05, 0.1), (1e6, 5e6, 8, 0.07, 0.1429), (5e6, None, 5, 0.1, 0.25)],
    ),
    "btc": (
        [(0, 5e4, 10, 0.05, 0.1112), (5e4, 1e5, 8, 0.07, 0.1429), (1e5, None, 6, 0.08, 0.2)],
        [
            (0, 2.5e5, 20, 0.03, 0.0527),
            (2.5e5, 1e6, 10, 0.05, 0.1112),
            (1e6, 5e6, 8, 0.07, 0.1429),
            (5e6, None, 5, 0.1, 0.25),
        ],
    ),
    "eth": (
        [(0, 3e4, 10, 0.05, 0.1112), (3e4, None, 8, 0.07, 0.1429)],
        [
            (0, 1.5e5, 20, 0.03, 0.0527),
            (1.5e5, 7.5e5, 10, 0.05, 0.1112),
            (7.5e5, 3e6, 8, 0.07, 0.1429),
            (3e6, None, 5, 0.1, 0.25),
        ],
    ),
    "large": (
        [(0, 5e4, 10, 0.05, 0.1112), (5e4, 2.5e5, 6, 0.08, 0.2), (2.5e5, None, 4, 0.12, 0.3334)],
        [(0, 1e5, 10, 0.05, 0.1112), (1e5, 5e5, 6, 0.08, 0.2), (5e5, None, 4, 0.12, 0.3334)],
    ),
    "mid": (
        [(0, 2.5e4, 5, 0.08, 0.25), (2.5e4, 1e5, 4, 0.1, 0.3334), (1e5, None, 3, 0.15, 0.5)],
        [(0, 5e4, 5, 0.08, 0.25), (5e4, 2.5e5, 4, 0.1, 0.3334), (2.5e5, None, 3, 0.15, 0.5)],
    ),
    "small": (
        [(0, 1e4, 4, 0.1, 0.3334), (1e4, 5e4, 3, 0.15, 0.5), (5e4, None, 2, 0.25, 1.0)],
        [(0, 2e4, 4, 0.1, 0.3334), (2e4, 1e5, 3, 0.15, 0.5), (1e5, None, 2, 0.25, 1.0)],
    ),
}


def _liability_class(symbol: str, klass: str) -> str:
    return {"BTC": "btc", "ETH": "eth"}.get(symbol, "large" if klass == "major" else klass)


# First-slice ratios / rates in force at the showcase as_of (v2), used to size random debt.
FIRST_RATIO = np.array([COLLATERAL_TIERS[c][1][0][2] for c in ASSET_CLASS])
FIRST_MMR = np.array(
    [LIABILITY_BRACKETS[_liability_class(s, c)][1][0][3] for s, c in zip(SYMBOLS, ASSET_CLASS, strict=False)]
)


# ------------------------------------------------------------------------- reference data
def _price_times(shape: Shape) -> tuple[np.ndarray, int]:
    """Price instants and the index of the one the walk is anchored at (exact reference prices).

    Sample shape: daily 00:00 from 2024-11-01 to 2025-02-15, hourly on 2025-01-20..22, anchored at
    the showcase as_of. Heartbeat shapes: daily 00:00, anchored at the last heartbeat.
    """
    if shape.heartbeat_days:
        return np.array(heartbeat_times(shape.heartbeat_days), dtype=np.int64), shape.heartbeat_days - 1
    daily = np.arange(
        epoch_us(utc("2024-11-01T00:00:00Z")), epoch_us(utc("2025-02-15T00:00:00Z")) + 1, US_DAY
    )
    hourly = np.arange(epoch_us(utc("2025-01-20T00:00:00Z")), epoch_us(utc("2025-01-23T00:00:00Z")), US_HOUR)
    times = np.unique(np.concatenate([daily, hourly]))
    anchor = int(np.searchsorted(times, AS_OF_US))
    assert times[anchor] == AS_OF_US
    return times, anchor


def round_sig(x: np.ndarray, digits: int) -> np.ndarray:
    """Round to `digits` significant digits (x > 0)."""
    exp = np.floor(np.log10(np.abs(x)))
    scale = 10.0 ** (digits - 1 - exp)
    return np.round(x * scale) / scale


def _walk_prices(
    rng: np.random.Generator,
    times: np.ndarray,
    anchor: int,
    ref_price: np.ndarray,
    daily_vol: np.ndarray,
    stable: np.ndarray,
) -> np.ndarray:
    """One Gaussian log-price walk per asset (rows) over `times`, exactly `ref_price` at `anchor`."""
    step_days = np.diff(times, prepend=times[0]) / US_DAY
    shocks = (
        rng.standard_normal((len(ref_price), len(times))) * np.sqrt(step_days)[None, :] * daily_vol[:, None]
    )
    walk = np.cumsum(shocks, axis=1)
    walk -= walk[:, [anchor]]
    prices = np.where(
        stable[:, None],
        np.round(ref_price[:, None] * (1.0 + walk), 4),  # stablecoins: small noise around 1
        round_sig(ref_price[:, None] * np.exp(walk), 6),
    )
    prices[:, anchor] = ref_price  # exact reference prices at the anchor
    return prices


def _price_frame(symbols: list[str], prices: np.ndarray, times: np.ndarray) -> pl.DataFrame:
    """Rows asset by asset, each asset's instants in order (prices: one row per asset)."""
    asset_col = np.repeat(np.arange(len(symbols)), len(times))
    return pl.DataFrame(
        {
            "asset": pl.Series(symbols).gather(asset_col),
            "price_usdt": prices.ravel(),
            "priced_at": pl.Series(np.tile(times, len(symbols))).cast(pl.Datetime("us", "UTC")),
        }
    )


def _universe_prices(shape: Shape) -> pl.DataFrame:
    """The price rows of the universe's assets (and, with a bad-price share, HALTED's: its last
    heartbeat null)."""
    rng = np.random.default_rng(REFERENCE_SEED)
    times, anchor = _price_times(shape)
    symbols, ref, vol = SYMBOLS, REF_PRICE, DAILY_VOL
    stable = np.array([c == "stable" for c in ASSET_CLASS])
    if shape.bad_price_share > 0:
        symbol, price, _, _, halted_vol = HALTED
        symbols = [*SYMBOLS, symbol]
        ref, vol = np.append(REF_PRICE, price), np.append(DAILY_VOL, halted_vol)
        stable = np.append(stable, False)
    prices = _walk_prices(rng, times, anchor, ref, vol, stable)
    prices[IDX["USDT"], :] = 1.0
    frame = _price_frame(symbols, prices, times)
    if shape.bad_price_share > 0:  # the last row is HALTED's last heartbeat
        frame = frame.with_columns(frame["price_usdt"].scatter(frame.height - 1, None))
    return frame


def reference_tables(include_fault_assets: bool = False, shape: Shape = SAMPLE) -> dict[str, pl.DataFrame]:
    """prices, collateral_tiers and liability_brackets (independent of the seed)."""
    price_frames = [_universe_prices(shape)]

    tier_rows: list[tuple[Any, ...]] = []
    bracket_rows: list[tuple[Any, ...]] = []
    tables = [(s, c, _liability_class(s, c), True, True) for s, c in zip(SYMBOLS, ASSET_CLASS, strict=False)]
    if shape.bad_price_share > 0:
        tables.append((HALTED[0], HALTED[2], HALTED[2], True, True))
    if include_fault_assets:
        day = dt.timedelta(days=1)
        fault_prices = [(s, p, FAULT_PRICE_AGE.get(s, day)) for s, p, _, _ in FAULT_ASSETS if p is not None]
        fault_prices += FAULT_PRICE_ROWS
        price_frames.append(
            pl.DataFrame(
                {
                    "asset": [s for s, _, _ in fault_prices],
                    "price_usdt": [p for _, p, _ in fault_prices],
                    "priced_at": [SHOWCASE_AS_OF - age for _, _, age in fault_prices],
                },
                schema=INPUT_SCHEMAS["prices"],
            )
        )
        tables += [
            (s, "gap" if s == "GAPTIER" else "mid", "mid", has_tiers, has_brackets)
            for s, _, has_tiers, has_brackets in FAULT_ASSETS
        ]
    for symbol, coll_class, liab_class, has_tiers, has_brackets in tables:
        for eff, tiers, brackets in zip(
            (TIER_V1, TIER_V2), COLLATERAL_TIERS[coll_class], LIABILITY_BRACKETS[liab_class], strict=False
        ):
            if has_tiers:
                tier_rows += [
                    (symbol, eff, float(lo), None if up is None else float(up), r) for lo, up, r in tiers
                ]
            if has_brackets:
                bracket_rows += [
                    (symbol, eff, float(lo), None if up is None else float(up), float(lev), mmr, imr)
                    for lo, up, lev, mmr, imr in brackets
                ]
    return {
        "prices": pl.concat(price_frames).cast(INPUT_SCHEMAS["prices"]).sort("asset", "priced_at"),
        "collateral_tiers": pl.DataFrame(tier_rows, schema=INPUT_SCHEMAS["collateral_tiers"], orient="row"),
        "liability_brackets": pl.DataFrame(
            bracket_rows, schema=INPUT_SCHEMAS["liability_brackets"], orient="row"
        ),
    }
