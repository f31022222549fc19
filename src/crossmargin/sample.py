"""Synthetic input generator: `crossmargin sample --accounts N --seed S --out DIR` (SPEC.md §6).

Writes the seven input tables of SPEC §4 (schemas.INPUT_SCHEMAS) for

* a fixed **showcase** block of hand-designed accounts (ids 1..60, always written first) that
  demonstrates every decision of SPEC §3 at ``SHOWCASE_AS_OF`` = 2025-01-21T10:00:00Z, boundary
  cases included (an account exactly at each threshold, another just past it), with the expected
  flags of each account in ``SHOWCASE`` (the golden test and data/sample/README.md use them);
* N **random** accounts (ids from ``FIRST_RANDOM_ID``), generated with numpy in chunks of
  ``CHUNK_ACCOUNTS`` accounts, each chunk from its own ``default_rng([seed, chunk])`` stream,
  written chunk by chunk with a pyarrow ParquetWriter (memory stays bounded whatever N is);
* the reference data (prices, collateral tiers, liability brackets): ~30 real assets with prices
  around 2025-01-21, hourly/daily snapshots before and after it, and two `effective_from` versions
  of every tier table (2024-06-01 and 2025-01-21T10:00Z). Reference data does not depend on the
  seed, so the showcase holds for every seed.

``faults > 0`` gives that share of random accounts one injected data fault each, cycling over
``FAULT_KINDS`` (every data-issue code of SPEC §4); `generate_with_faults` / `inject_faults`
also return the mapping account_id -> expected issue code.

The showcase is designed for the shipped default policy (policy.toml): its boundary accounts sit
exactly on the default thresholds, with exactly representable numbers (USDT-only balances with
integer amounts, USDT collateral ratio 1.0 and maintenance rate 0.05 on the first slice), so e.g.
1300/1000 == 1.3 in float64.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from crossmargin.schemas import INPUT_SCHEMAS, TABLES

UTC = dt.UTC
SHOWCASE_AS_OF = dt.datetime(2025, 1, 21, 10, 0, tzinfo=UTC)
FIRST_RANDOM_ID = 1_000_001
CHUNK_ACCOUNTS = 250_000
ROW_GROUP_ROWS = 1_000_000
FIRST_ORDER_ID = 100_000_001
FAULT_ORDER_ID_BASE = 9_000_000_000_001
REFERENCE_SEED = 20250121  # reference data (prices, tiers) is the same for every --seed
PER_ACCOUNT_TABLES = ["accounts", "balances", "open_orders", "mode_switches"]
REFERENCE_TABLES = ["prices", "collateral_tiers", "liability_brackets"]


def _us(ts: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return int((ts - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1))


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)  # Python >= 3.11 parses "Z"


US_SECOND = 1_000_000
US_HOUR = 3600 * US_SECOND
US_DAY = 24 * US_HOUR
AS_OF_US = _us(SHOWCASE_AS_OF)
COMPLIANCE_FROM_US = _us(_t("2024-12-17T00:00:00Z"))
TIER_V1 = _t("2024-06-01T00:00:00Z")
TIER_V2 = SHOWCASE_AS_OF  # the new tables take effect with the new Pro formula

# ------------------------------------------------------------------------------------ assets
# symbol, price in USDT at 2025-01-21T10:00Z (the showcase snapshot), class, quantity decimals,
# weight (how often accounts hold / trade it), daily volatility of the price walk
ASSETS: list[tuple[str, float, str, int, float, float]] = [
    ("USDT", 1.0, "stable", 2, 40.0, 0.0),
    ("USDC", 1.0, "stable", 2, 8.0, 0.0003),
    ("FDUSD", 1.0, "stable", 2, 4.0, 0.0006),
    ("BTC", 104_000.0, "major", 8, 24.0, 0.025),
    ("ETH", 3_300.0, "major", 6, 16.0, 0.035),
    ("BNB", 690.0, "large", 5, 8.0, 0.03),
    ("SOL", 250.0, "large", 4, 9.0, 0.05),
    ("XRP", 3.1, "large", 2, 7.0, 0.05),
    ("DOGE", 0.375, "large", 1, 6.0, 0.06),
    ("ADA", 0.98, "large", 2, 3.0, 0.05),
    ("TRX", 0.25, "mid", 1, 2.0, 0.035),
    ("AVAX", 37.5, "mid", 3, 2.0, 0.06),
    ("LINK", 24.5, "mid", 3, 2.0, 0.06),
    ("DOT", 6.5, "mid", 3, 1.5, 0.06),
    ("TON", 5.25, "mid", 3, 1.2, 0.05),
    ("SHIB", 0.0000215, "mid", 0, 1.5, 0.07),
    ("LTC", 112.0, "mid", 4, 1.2, 0.05),
    ("BCH", 445.0, "mid", 4, 0.8, 0.05),
    ("NEAR", 5.1, "mid", 3, 0.9, 0.07),
    ("UNI", 13.4, "mid", 3, 0.7, 0.06),
    ("APT", 8.9, "mid", 3, 0.7, 0.07),
    ("SUI", 4.55, "mid", 2, 1.3, 0.08),
    ("PEPE", 0.0000168, "small", 0, 1.6, 0.09),
    ("ATOM", 6.4, "mid", 3, 0.6, 0.06),
    ("ARB", 0.76, "small", 2, 0.7, 0.08),
    ("OP", 1.95, "small", 2, 0.6, 0.08),
    ("FIL", 5.0, "small", 3, 0.4, 0.07),
    ("INJ", 22.5, "small", 3, 0.4, 0.08),
    ("WIF", 1.35, "small", 2, 0.8, 0.11),
    ("ETC", 27.0, "small", 3, 0.4, 0.06),
    ("POL", 0.45, "small", 2, 0.4, 0.07),
]
SYMBOLS = [a[0] for a in ASSETS]
IDX = {s: i for i, s in enumerate(SYMBOLS)}
REF_PRICE = np.array([a[1] for a in ASSETS])
ASSET_CLASS = [a[2] for a in ASSETS]
DECIMALS = np.array([a[3] for a in ASSETS])
HOLD_WEIGHT = np.array([a[4] for a in ASSETS])
HOLD_CUM = np.cumsum(HOLD_WEIGHT)
BREADTH_WEIGHT = (HOLD_WEIGHT**0.7 / (HOLD_WEIGHT**0.7).sum()).astype(np.float32)
SCALE = 10.0**DECIMALS
DAILY_VOL = np.array([a[5] for a in ASSETS])

# Assets that exist only to inject faults (written only when faults > 0):
# NOPRICE has tiers and brackets but no price; NOTIERS no collateral tiers; NOBRACKETS no liability
# brackets; GAPTIER a collateral tier table with a gap [100k, 150k).
FAULT_ASSETS: list[tuple[str, float | None, bool, bool]] = [
    ("NOPRICE", None, True, True),
    ("NOTIERS", 2.0, False, True),
    ("NOBRACKETS", 3.0, True, False),
    ("GAPTIER", 4.0, True, True),
]

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
# BTC and ETH v1 are the worked example of SPEC §1 (MM 31,330 / IM 75,327.1 for 13 BTC @30k + 13 ETH @3k).
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

# fmt: off
# Trading pairs (base, quote, weight): mostly USDT-quoted, plus BTC, ETH, USDC and FDUSD quotes.
PAIRS: list[tuple[str, str, float]] = [
    *[
        (b, "USDT", w)
        for b, w in [
            ("BTC", 14), ("ETH", 10), ("BNB", 4), ("SOL", 6), ("XRP", 5), ("DOGE", 4), ("ADA", 2),
            ("TRX", 1.5), ("AVAX", 1.5), ("LINK", 1.5), ("DOT", 1), ("TON", 1), ("SHIB", 1), ("LTC", 1),
            ("BCH", 0.7), ("NEAR", 0.8), ("UNI", 0.6), ("APT", 0.6), ("SUI", 1.2), ("PEPE", 1.5),
            ("ATOM", 0.5), ("ARB", 0.6), ("OP", 0.5), ("FIL", 0.4), ("INJ", 0.4), ("WIF", 0.8),
            ("ETC", 0.4), ("POL", 0.4), ("USDC", 1.5), ("FDUSD", 1.0),
        ]
    ],
    *[
        (b, "BTC", w)
        for b, w in [("ETH", 2), ("BNB", 0.8), ("SOL", 0.8), ("XRP", 0.6), ("LINK", 0.3), ("ADA", 0.3),
                     ("DOGE", 0.3), ("LTC", 0.3), ("DOT", 0.2)]
    ],
    *[(b, "ETH", w) for b, w in [("BNB", 0.3), ("LINK", 0.2), ("SOL", 0.2)]],
    *[(b, "USDC", w) for b, w in [("BTC", 3), ("ETH", 2), ("SOL", 1), ("XRP", 0.5), ("DOGE", 0.4)]],
    *[(b, "FDUSD", w) for b, w in [("BTC", 2), ("ETH", 1), ("SOL", 0.5)]],
]
PAIR_BASE = np.array([IDX[p[0]] for p in PAIRS])
PAIR_QUOTE = np.array([IDX[p[1]] for p in PAIRS])
PAIR_CUM = np.cumsum([p[2] for p in PAIRS]) / sum(p[2] for p in PAIRS)

COUNTRIES: list[tuple[str, float]] = [
    ("TR", 9), ("BR", 7), ("VN", 6), ("IN", 6), ("ID", 5), ("NG", 5), ("UA", 5), ("RU", 4), ("FR", 4),
    ("DE", 4), ("ES", 3), ("IT", 3), ("PL", 3), ("AR", 3), ("PH", 3), ("TH", 3), ("KR", 2), ("JP", 2),
    ("GB", 3), ("AU", 2), ("AE", 2), ("SG", 1.5), ("ZA", 2), ("MX", 2), ("CO", 1.5), ("PK", 2),
    ("EG", 1.5), ("KZ", 1), ("US", 1.0), ("CA", 1.0), ("NL", 1.2),
]
# fmt: on
COUNTRY_CUM = np.cumsum([c[1] for c in COUNTRIES]) / sum(c[1] for c in COUNTRIES)

# Days on which some accounts switch mode 4+ times ("typical as_of dates"), with their weights.
BURST_DAYS = [
    (_us(_t("2025-01-21T00:00:00Z")), 0.4),
    (_us(_t("2025-01-20T00:00:00Z")), 0.15),
    (_us(_t("2025-01-15T00:00:00Z")), 0.15),
    (_us(_t("2024-12-19T00:00:00Z")), 0.15),
    (_us(_t("2024-12-17T00:00:00Z")), 0.15),
]


# ------------------------------------------------------------------------- reference data
def _price_times() -> np.ndarray:
    """Snapshot times: daily 00:00 from 2024-11-01 to 2025-02-15, hourly on 2025-01-20..22."""
    daily = np.arange(_us(_t("2024-11-01T00:00:00Z")), _us(_t("2025-02-15T00:00:00Z")) + 1, US_DAY)
    hourly = np.arange(_us(_t("2025-01-20T00:00:00Z")), _us(_t("2025-01-23T00:00:00Z")), US_HOUR)
    return np.unique(np.concatenate([daily, hourly]))


def _round_sig(x: np.ndarray, digits: int) -> np.ndarray:
    """Round to `digits` significant digits (x > 0)."""
    exp = np.floor(np.log10(np.abs(x)))
    scale = 10.0 ** (digits - 1 - exp)
    return np.round(x * scale) / scale


def reference_tables(include_fault_assets: bool = False) -> dict[str, pl.DataFrame]:
    """prices, collateral_tiers and liability_brackets (independent of the seed)."""
    rng = np.random.default_rng(REFERENCE_SEED)
    times = _price_times()
    anchor = int(np.searchsorted(times, AS_OF_US))
    assert times[anchor] == AS_OF_US
    step_days = np.diff(times, prepend=times[0]) / US_DAY
    # one Gaussian log-price walk per asset, anchored at the 2025-01-21T10:00Z snapshot
    shocks = rng.standard_normal((len(ASSETS), len(times))) * np.sqrt(step_days)[None, :] * DAILY_VOL[:, None]
    walk = np.cumsum(shocks, axis=1)
    walk -= walk[:, [anchor]]
    stable = np.array([c == "stable" for c in ASSET_CLASS])
    prices = np.where(
        stable[:, None],
        np.round(REF_PRICE[:, None] * (1.0 + walk), 4),  # stablecoins: small noise around 1
        _round_sig(REF_PRICE[:, None] * np.exp(walk), 6),
    )
    prices[:, anchor] = REF_PRICE  # exact reference prices at the showcase snapshot
    prices[IDX["USDT"], :] = 1.0
    asset_col = np.repeat(np.arange(len(ASSETS)), len(times))
    price_frames = [
        pl.DataFrame(
            {
                "asset": pl.Series(SYMBOLS).gather(asset_col),
                "price_usdt": prices.ravel(),
                "priced_at": pl.Series(np.tile(times, len(ASSETS))).cast(pl.Datetime("us", "UTC")),
            }
        )
    ]

    tier_rows: list[tuple[Any, ...]] = []
    bracket_rows: list[tuple[Any, ...]] = []
    tables = [(s, c, _liability_class(s, c), True, True) for s, c in zip(SYMBOLS, ASSET_CLASS, strict=False)]
    if include_fault_assets:
        fault_prices = [(s, p) for s, p, _, _ in FAULT_ASSETS if p is not None]
        price_frames.append(
            pl.DataFrame(
                {
                    "asset": [s for s, _ in fault_prices],
                    "price_usdt": [p for _, p in fault_prices],
                    "priced_at": [SHOWCASE_AS_OF - dt.timedelta(days=1)] * len(fault_prices),
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


# -------------------------------------------------------------------------------- showcase
Q0 = _t("2024-12-20T08:00:00Z")  # default questionnaire time (compliant)
T0 = _t("2024-12-20T08:05:00Z")  # default terms time (compliant)
_DEFAULT = object()


@dataclass(frozen=True)
class Showcase:
    """One hand-designed account: its input rows, what it shows, and its expected outputs at SHOWCASE_AS_OF."""

    account_id: int
    shows: str
    mode: str = "classic"
    leverage: int = 3
    activated: bool = True
    quiz: bool = True
    questionnaire_at: dt.datetime | None = Q0
    terms_at: dt.datetime | None = T0
    country: str = "SG"
    # (asset, free, locked, borrowed, interest)
    balances: tuple[tuple[str, float, float, float, float], ...] = ()
    # (base, quote, side, price, remaining_qty)
    orders: tuple[tuple[str, str, str, float, float], ...] = ()
    switches: tuple[dt.datetime, ...] = ()
    # expected outputs that differ from the defaults (see `expected`)
    expect: dict[str, Any] = field(default_factory=dict)

    def expected(self) -> dict[str, Any]:
        """Every asserted output of SPEC §3 for this account (defaults merged with `expect`)."""
        pro = self.mode == "pro"
        out: dict[str, Any] = {
            "margin_call": False,
            "liquidation": False,
            "borrow_blocked_reason": None,
            "due_for_migration": False,
            "migrate_now": False,
            "partial_repayment_usdt": 0.0,
            "bad_debt_usdt": 0.0,
            "switches_left_today": 5,
            "eligible_for_pro": False,
            "pro_ineligible_reasons": ["already_pro"] if pro else [],
            "can_switch_to_classic": False,
        }
        out.update(self.expect)
        if out["liquidation"]:
            out["margin_call"] = True
        return out

    def expected_actions(self) -> list[tuple[str, str | None, float | None]]:
        """(action, reason, amount_usdt) rows of actions.parquet implied by `expected` (SPEC §5)."""
        e = self.expected()
        level_reason = "pro" if self.mode == "pro" else f"classic_{self.leverage}x"
        rows: list[tuple[str, str | None, float | None]] = []
        if e["liquidation"]:
            rows.append(("LIQUIDATION", level_reason, None))
        elif e["margin_call"]:
            rows.append(("MARGIN_CALL", level_reason, None))
        if e["borrow_blocked_reason"] is not None:
            rows.append(("BORROW_BLOCKED", e["borrow_blocked_reason"], None))
        if e["due_for_migration"]:
            rows.append(("MIGRATE_TO_CLASSIC", "due" if e["migrate_now"] else "pending", None))
        if e["partial_repayment_usdt"] > 0:
            rows.append(("PARTIAL_REPAYMENT", None, e["partial_repayment_usdt"]))
        if e["eligible_for_pro"]:
            rows.append(("ELIGIBLE_FOR_PRO", None, None))
        return rows


def _usdt(free: float, borrowed: float = 0.0, interest: float = 0.0, locked: float = 0.0):
    return ("USDT", float(free), float(locked), float(borrowed), float(interest))


def _today(*hms: str) -> tuple[dt.datetime, ...]:
    return tuple(_t(f"2025-01-21T{x}Z") for x in hms)


FIVE_TODAY = _today("00:00:00", "02:00:00", "04:00:00", "06:00:00", "10:00:00")
CIRR = "collateral_below_initial_risk_ratio"
PNC = "pro_not_compliant"
NAM = "no_available_margin"
NE = "net_equity"
PML = "pro_margin_level_after_switch"
NONCOMPLIANT = {"due_for_migration": True, "migrate_now": True, "borrow_blocked_reason": PNC}

# fmt: off
SHOWCASE: list[Showcase] = [
    # --- A. Classic thresholds: USDT only, 1,000 USDT borrowed, margin level = free / 1000 -------------
    Showcase(1, "Classic 3x exactly at margin call (1300/1000 = 1.3 <= 1.3)", balances=(_usdt(1300, 1000),),
             expect={"margin_call": True, "borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE],
                     "margin_level": 1.3}),
    Showcase(2, "Classic 3x just above margin call (1.301)", balances=(_usdt(1301, 1000),),
             expect={"borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE]}),
    Showcase(3, "Classic 3x exactly at liquidation (1.1 <= 1.1); Pro level after switch exactly 2 fails",
             balances=(_usdt(1100, 1000),),
             expect={"liquidation": True, "borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [PML, NE],
                     "margin_level": 1.1, "pro_margin_level_new": 2.0}),
    Showcase(4, "Classic 3x just above liquidation (1.101): margin call only", balances=(_usdt(1101, 1000),),
             expect={"margin_call": True, "borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE]}),
    Showcase(5, "Classic 3x collateral level exactly at IRR 1.5: borrow blocked", balances=(_usdt(1500, 1000),),
             expect={"borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE],
                     "classic_collateral_margin_level": 1.5}),
    Showcase(6, "Classic 3x collateral level just above IRR (1.501): borrowing allowed",
             balances=(_usdt(1501, 1000),), expect={"pro_ineligible_reasons": [NE]}),
    Showcase(7, "Classic 5x exactly at margin call (1.15)", leverage=5, balances=(_usdt(1150, 1000),),
             expect={"margin_call": True, "borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE],
                     "margin_level": 1.15}),
    Showcase(8, "Classic 5x just above margin call (1.151)", leverage=5, balances=(_usdt(1151, 1000),),
             expect={"borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE]}),
    Showcase(9, "Classic 5x exactly at liquidation (1.1)", leverage=5, balances=(_usdt(1100, 1000),),
             expect={"liquidation": True, "borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [PML, NE],
                     "margin_level": 1.1}),
    Showcase(10, "Classic 5x just above liquidation (1.101): margin call only", leverage=5,
             balances=(_usdt(1101, 1000),),
             expect={"margin_call": True, "borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE]}),
    Showcase(11, "Classic 5x collateral level exactly at IRR 1.25: borrow blocked", leverage=5,
             balances=(_usdt(1250, 1000),), expect={"borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [NE],
                                             "classic_collateral_margin_level": 1.25}),
    Showcase(12, "Classic 5x collateral level just above IRR (1.251): borrowing allowed", leverage=5,
             balances=(_usdt(1251, 1000),), expect={"pro_ineligible_reasons": [NE]}),
    Showcase(13, "Classic 3x bad debt: liability 1000 > assets 900", balances=(_usdt(900, 1000),),
             expect={"liquidation": True, "borrow_blocked_reason": CIRR, "bad_debt_usdt": 100.0,
                     "pro_ineligible_reasons": [PML, NE]}),
    # --- B. Pro thresholds: compliant, 1,000 USDT borrowed: MM = 50, IM = 100, level = (free - 1000) / 50 ---
    Showcase(14, "Pro exactly at margin call 1.5 (75/50); no available margin", mode="pro",
             balances=(_usdt(1075, 1000),),
             expect={"margin_call": True, "borrow_blocked_reason": NAM, "margin_level": 1.5}),
    Showcase(15, "Pro just above margin call (1.52)", mode="pro", balances=(_usdt(1076, 1000),),
             expect={"borrow_blocked_reason": NAM}),
    Showcase(16, "Pro exactly at liquidation 1.0 (50/50)", mode="pro", balances=(_usdt(1050, 1000),),
             expect={"liquidation": True, "borrow_blocked_reason": NAM, "margin_level": 1.0}),
    Showcase(17, "Pro just above liquidation (1.02): margin call only", mode="pro", balances=(_usdt(1051, 1000),),
             expect={"margin_call": True, "borrow_blocked_reason": NAM}),
    Showcase(18, "Pro available margin exactly 0 (100 - 100): borrow blocked no_available_margin", mode="pro",
             balances=(_usdt(1100, 1000),),
             expect={"borrow_blocked_reason": NAM, "pro_available_margin_usdt": 0.0}),
    Showcase(19, "Pro available margin 1 USDT: not blocked", mode="pro", balances=(_usdt(1101, 1000),)),
    Showcase(20, "Pro 3x cannot switch to Classic: collateral level exactly IRR 1.5", mode="pro",
             balances=(_usdt(1500, 1000),), expect={"classic_collateral_margin_level": 1.5}),
    Showcase(21, "Pro 3x can switch to Classic: collateral level 1.501 > 1.5", mode="pro",
             balances=(_usdt(1501, 1000),), expect={"can_switch_to_classic": True}),
    Showcase(22, "Pro 5x cannot switch to Classic: collateral level exactly IRR 1.25", mode="pro", leverage=5,
             balances=(_usdt(1250, 1000),), expect={"classic_collateral_margin_level": 1.25}),
    Showcase(23, "Pro 5x can switch to Classic: 1.251 > 1.25", mode="pro", leverage=5,
             balances=(_usdt(1251, 1000),), expect={"can_switch_to_classic": True}),
    Showcase(24, "Pro with zero debt: every level +inf, can switch to Classic", mode="pro",
             balances=(_usdt(2000), ("BTC", 0.01, 0.0, 0.0, 0.0)),
             expect={"can_switch_to_classic": True, "margin_level": float("inf")}),
    Showcase(25, "Pro with 5 switches today (00:00 and 10:00 inclusive): cannot switch", mode="pro",
             balances=(_usdt(2000),), switches=FIVE_TODAY, expect={"switches_left_today": 0}),
    # --- C. Pro compliance, migration, partial repayment ----------------------------------------------
    Showcase(26, "Pro non-compliant (no questionnaire), no debt: blocked pro_not_compliant, migrate now",
             mode="pro", questionnaire_at=None, balances=(_usdt(2000),),
             expect={**NONCOMPLIANT, "can_switch_to_classic": True}),
    Showcase(27, "Pro non-compliant (questionnaire before 2024-12-17), 3x, level 1.2 < 1.3: repay 600",
             mode="pro", questionnaire_at=_t("2024-11-05T09:00:00Z"), terms_at=_t("2024-11-05T09:01:00Z"),
             balances=(_usdt(1200, 1000),), expect={**NONCOMPLIANT, "partial_repayment_usdt": 600.0}),
    Showcase(28, "Pro non-compliant (terms agreed after as_of), 5x, level 1.1 < 1.15: repay 600 (target 1.25)",
             mode="pro", leverage=5, terms_at=_t("2025-01-22T00:00:00Z"), balances=(_usdt(1100, 1000),),
             expect={**NONCOMPLIANT, "partial_repayment_usdt": 600.0}),
    Showcase(29, "Pro non-compliant, 3x, level exactly 1.3 (not < 1.3): no repayment", mode="pro",
             questionnaire_at=None, balances=(_usdt(1300, 1000),), expect=NONCOMPLIANT),
    Showcase(30, "Pro non-compliant, 3x, level 1.299 just below 1.3: repay 402", mode="pro", questionnaire_at=None,
             balances=(_usdt(1299, 1000),), expect={**NONCOMPLIANT, "partial_repayment_usdt": 402.0}),
    Showcase(31, "Pro non-compliant underwater: repayment clipped to min(A, L) = 500, bad debt, liquidation",
             mode="pro", questionnaire_at=None, balances=(_usdt(500, 1000),),
             expect={**NONCOMPLIANT, "liquidation": True, "partial_repayment_usdt": 500.0, "bad_debt_usdt": 500.0}),
    Showcase(32, "Pro compliant with both timestamps exactly 2024-12-17T00:00Z (inclusive)", mode="pro",
             questionnaire_at=_t("2024-12-17T00:00:00Z"), terms_at=_t("2024-12-17T00:00:00Z"),
             balances=(_usdt(3000),), expect={"can_switch_to_classic": True}),
    Showcase(33, "Pro questionnaire 1 us before 2024-12-17: non-compliant", mode="pro",
             questionnaire_at=_t("2024-12-16T23:59:59.999999Z"), balances=(_usdt(3000),),
             expect={**NONCOMPLIANT, "can_switch_to_classic": True}),
    # --- D. Classic -> Pro eligibility (new policy) ---------------------------------------------------
    Showcase(34, "Classic eligible for Pro (no debt, net equity > 5000)",
             balances=(_usdt(6000), ("BTC", 0.05, 0.0, 0.0, 0.0)), expect={"eligible_for_pro": True}),
    Showcase(35, "Classic net equity exactly 5000: not eligible", balances=(_usdt(5000),),
             expect={"pro_ineligible_reasons": [NE], "net_equity_usdt": 5000.0}),
    Showcase(36, "Classic net equity 5000.5: eligible", balances=(_usdt(5000.5),), expect={"eligible_for_pro": True}),
    Showcase(37, "Classic Pro level after switch exactly 2 ((33000-30000)/1500; TRX at 0.25, ratio 0.75): fails",
             balances=(("TRX", 176000.0, 0.0, 0.0, 0.0), _usdt(0, 30000)),
             expect={"borrow_blocked_reason": CIRR, "pro_ineligible_reasons": [PML], "pro_margin_level_new": 2.0,
                     "collateral_usdt": 33000.0}),
    Showcase(38, "Classic Pro level after switch 2.125 > 2: eligible (while borrowing is blocked)",
             balances=(("TRX", 177000.0, 0.0, 0.0, 0.0), _usdt(0, 30000)),
             expect={"borrow_blocked_reason": CIRR, "eligible_for_pro": True}),
    Showcase(39, "Classic not activated", activated=False, balances=(_usdt(6000),),
             expect={"pro_ineligible_reasons": ["cross_margin_activated"]}),
    Showcase(40, "Classic quiz not passed", quiz=False, balances=(_usdt(6000),),
             expect={"pro_ineligible_reasons": ["pro_quiz_passed"]}),
    Showcase(41, "Classic terms never agreed", terms_at=None, balances=(_usdt(6000),),
             expect={"pro_ineligible_reasons": ["terms_agreed"]}),
    Showcase(42, "Classic terms agreed 1 us after as_of", terms_at=_t("2025-01-21T10:00:00.000001Z"),
             balances=(_usdt(6000),), expect={"pro_ineligible_reasons": ["terms_agreed"]}),
    Showcase(43, "Classic terms agreed exactly at as_of: eligible", terms_at=SHOWCASE_AS_OF,
             balances=(_usdt(6000),), expect={"eligible_for_pro": True}),
    Showcase(44, "Classic in US (restricted)", country="US", balances=(_usdt(6000),),
             expect={"pro_ineligible_reasons": ["country_not_restricted"]}),
    Showcase(45, "Classic in CA (restricted)", country="CA", balances=(_usdt(6000),),
             expect={"pro_ineligible_reasons": ["country_not_restricted"]}),
    Showcase(46, "Classic in NL (restricted)", country="NL", balances=(_usdt(6000),),
             expect={"pro_ineligible_reasons": ["country_not_restricted"]}),
    Showcase(47, "Classic with 5 switches today, window ends inclusive: no switch left", balances=(_usdt(6000),),
             switches=FIVE_TODAY, expect={"switches_left_today": 0, "pro_ineligible_reasons": ["switches_left_today"]}),
    Showcase(48, "Classic with 4 switches today, one 1 us before the day, one 1 us after as_of: 1 left, eligible",
             balances=(_usdt(6000),),
             switches=(_t("2025-01-20T23:59:59.999999Z"), *_today("00:00:00", "03:00:00", "06:00:00", "09:59:59"),
                       _t("2025-01-21T10:00:00.000001Z")),
             expect={"switches_left_today": 1, "eligible_for_pro": True}),
    Showcase(49, "Classic with 7 switches today: switches left floored at 0", balances=(_usdt(6000),),
             switches=(*FIVE_TODAY, *_today("01:00:00", "03:00:00")),
             expect={"switches_left_today": 0, "pro_ineligible_reasons": ["switches_left_today"]}),
    Showcase(50, "Classic failing every condition but the level (listed in condition order)", activated=False,
             quiz=False, terms_at=None, country="US", balances=(_usdt(100),), switches=FIVE_TODAY,
             expect={"switches_left_today": 0, "pro_ineligible_reasons": [
                 "cross_margin_activated", "pro_quiz_passed", "terms_agreed", NE, "country_not_restricted",
                 "switches_left_today"]}),
    # --- E. Levels, open orders, reference data -----------------------------------------------------
    Showcase(51, "Classic with only interest owed (1 USDT): a liability asset, finite level 10000",
             balances=(_usdt(10000, 0, 1),),
             expect={"eligible_for_pro": True, "total_liability_usdt": 1.0, "margin_level": 10000.0}),
    Showcase(52, "Classic with open orders only, no balance rows: OOL 52 but levels +inf (0 denominators)",
             orders=(("BTC", "USDT", "BUY", 104000.0, 0.01), ("ETH", "USDT", "SELL", 3300.0, 1.0)),
             expect={"pro_ineligible_reasons": [NE], "open_order_loss_usdt": 52.0,
                     "pro_margin_level_new": float("inf"), "margin_level": float("inf")}),
    Showcase(53, "Classic with no balances and no orders: valid, zeros and +inf levels",
             expect={"pro_ineligible_reasons": [NE], "total_asset_usdt": 0.0, "margin_level": float("inf")}),
    Showcase(54, "Pro whose open-order loss (26) moves the new level to 1.48 (old formula: 2.0): margin call",
             mode="pro", balances=(_usdt(580, 1000, 0, 520),), orders=(("BTC", "USDT", "BUY", 104000.0, 0.005),),
             expect={"margin_call": True, "borrow_blocked_reason": NAM, "open_order_loss_usdt": 26.0,
                     "pro_margin_level_old": 2.0}),
    Showcase(55, "Classic with BTC-, ETH- and USDC-quoted orders, BUY and SELL, not netted (OOL 76+8+51.6)",
             balances=(("BTC", 0.5, 0.0, 0.0, 0.0), ("ETH", 3.0, 0.0, 0.0, 0.0), ("USDC", 2000.0, 0.0, 0.0, 0.0)),
             orders=(("ETH", "BTC", "BUY", 0.0325, 1.0), ("BTC", "USDC", "SELL", 98000.0, 0.01),
                     ("SOL", "ETH", "BUY", 0.08, 2.0), ("BNB", "ETH", "SELL", 0.25, 1.0)),
             expect={"eligible_for_pro": True, "open_order_loss_usdt": 135.6}),
    Showcase(56, "Price and tier version as of 10:00: 1 BTC = 104000 (10:00 snapshot), collateral 0.95 (v2)",
             balances=(("BTC", 1.0, 0.0, 0.0, 0.0),),
             expect={"eligible_for_pro": True, "total_asset_usdt": 104000.0, "collateral_usdt": 98800.0}),
    Showcase(57, "Whale: 250 BTC across all four collateral slices: 950k + 3.6M + 12M + 3M",
             balances=(("BTC", 250.0, 0.0, 0.0, 0.0),),
             expect={"eligible_for_pro": True, "collateral_usdt": 19_550_000.0}),
    Showcase(58, "Pro whale owing 20 BTC across three liability brackets: MM 120,600, IM 250,907", mode="pro",
             leverage=5, balances=(_usdt(5_000_000), ("BTC", 0.0, 0.0, 20.0, 0.0)),
             expect={"can_switch_to_classic": True, "maintenance_margin_usdt": 120_600.0,
                     "initial_margin_usdt": 250_907.0}),
    Showcase(59, "Classic with an all-zero balance row of an unpriced, untiered asset (LUNA): valid",
             balances=(_usdt(6000), ("LUNA", 0.0, 0.0, 0.0, 0.0)), expect={"eligible_for_pro": True}),
    Showcase(60, "Pro in a restricted country (NL): country only matters for Classic eligibility", mode="pro",
             country="NL", balances=(_usdt(3000),), expect={"can_switch_to_classic": True}),
]
# fmt: on
SHOWCASE_IDS = [s.account_id for s in SHOWCASE]
# asserted numbers besides the flags (compared with a relative tolerance of 1e-9)
NUMERIC_EXPECTATIONS = [
    "margin_level",
    "classic_collateral_margin_level",
    "net_equity_usdt",
    "pro_available_margin_usdt",
    "total_asset_usdt",
    "total_liability_usdt",
    "collateral_usdt",
    "open_order_loss_usdt",
    "maintenance_margin_usdt",
    "initial_margin_usdt",
    "pro_margin_level_old",
    "pro_margin_level_new",
]


def showcase_tables() -> dict[str, pl.DataFrame]:
    """The showcase block's accounts, balances, open_orders and mode_switches (ids 1..60)."""
    accounts = pl.DataFrame(
        [
            (s.account_id, s.mode, s.leverage, s.activated, s.quiz, s.questionnaire_at, s.terms_at, s.country)
            for s in SHOWCASE
        ],
        schema=INPUT_SCHEMAS["accounts"],
        orient="row",
    )
    balances = pl.DataFrame(
        [(s.account_id, *b) for s in SHOWCASE for b in s.balances],
        schema=INPUT_SCHEMAS["balances"],
        orient="row",
    )
    order_rows = [(s.account_id, *o) for s in SHOWCASE for o in s.orders]
    open_orders = pl.DataFrame(
        [(a, i + 1, b, q, side, p, qty) for i, (a, b, q, side, p, qty) in enumerate(order_rows)],
        schema=INPUT_SCHEMAS["open_orders"],
        orient="row",
    )
    switches = pl.DataFrame(
        [(s.account_id, t) for s in SHOWCASE for t in s.switches],
        schema=INPUT_SCHEMAS["mode_switches"],
        orient="row",
    )
    return {"accounts": accounts, "balances": balances, "open_orders": open_orders, "mode_switches": switches}


def _flags_text(s: Showcase) -> str:
    e = s.expected()
    bits = [k for k in ("liquidation", "margin_call") if e[k]][:1]
    if e["borrow_blocked_reason"]:
        bits.append(f"blocked: {e['borrow_blocked_reason']}")
    if e["due_for_migration"]:
        bits.append("migrate_now" if e["migrate_now"] else "due_for_migration")
    if e["partial_repayment_usdt"]:
        bits.append(f"repay {e['partial_repayment_usdt']:g}")
    if e["bad_debt_usdt"]:
        bits.append(f"bad debt {e['bad_debt_usdt']:g}")
    if e["switches_left_today"] != 5:
        bits.append(f"switches left {e['switches_left_today']}")
    if e["eligible_for_pro"]:
        bits.append("eligible_for_pro")
    elif s.mode == "classic":
        bits.append("not eligible: " + ", ".join(e["pro_ineligible_reasons"]))
    if e["can_switch_to_classic"]:
        bits.append("can_switch_to_classic")
    elif s.mode == "pro":
        bits.append("cannot switch to classic")
    bits += [f"{k} {e[k]:g}" for k in NUMERIC_EXPECTATIONS if k in e]
    return "; ".join(bits)


def showcase_markdown() -> str:
    """The showcase table of data/sample/README.md (account_id, mode, what it shows, expected flags)."""
    lines = ["| account_id | mode | what it shows | expected at 2025-01-21T10:00:00Z |", "|---|---|---|---|"]
    lines += [f"| {s.account_id} | {s.mode} {s.leverage}x | {s.shows} | {_flags_text(s)} |" for s in SHOWCASE]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- random accounts
def _ts_series(us: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    s = pl.Series(us.astype(np.int64)).cast(pl.Datetime("us", "UTC"))
    if null is not None and null.any():
        s = s.scatter(np.flatnonzero(null), None)
    return s


def _uniform_us(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    """Uniform times in [lo, hi], whole seconds."""
    return lo + rng.integers(0, (hi - lo) // US_SECOND + 1, size=n, dtype=np.int64) * US_SECOND


def _round_to(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Round to a grid of 1/scale (scale = 10**decimals of the asset)."""
    return np.rint(x * scale) / scale


def _accounts(rng: np.random.Generator, ids: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
    n = len(ids)
    u = rng.random((8, n))
    is_pro = u[0] < 0.25
    leverage = np.where(u[1] < 0.65, 3, 5)
    activated = is_pro | (u[2] < 0.88)
    interested = ~is_pro & (u[3] < 0.3)
    quiz = is_pro | (interested & (u[4] < 0.92)) | (~interested & (u[4] < 0.04))

    compliance_lo, recent_hi = COMPLIANCE_FROM_US, AS_OF_US - US_HOUR
    old_lo, late_hi = _us(_t("2024-06-01T00:00:00Z")), _us(_t("2025-02-15T00:00:00Z"))
    recent = _uniform_us(rng, compliance_lo, recent_hi, n)
    old = _uniform_us(rng, old_lo, compliance_lo - US_SECOND, n)
    late = _uniform_us(rng, AS_OF_US + US_SECOND, late_hi, n)
    lag = rng.integers(0, 3 * 24 * 3600, size=n, dtype=np.int64) * US_SECOND
    # Pro: 78% compliant, 9% no questionnaire, 6% questionnaire before 2024-12-17, 7% answered after as_of
    cat = np.searchsorted([0.78, 0.87, 0.93], u[5], side="right")
    q_pro = np.select([cat == 0, cat == 2, cat == 3], [recent, old, late], 0)
    t_pro = np.select(
        [cat == 0, cat == 1, cat == 2, cat == 3],
        [
            np.minimum(recent + lag, AS_OF_US - 60 * US_SECOND),
            recent,
            np.where(u[6] < 0.3, recent, old + lag),
            late + lag,
        ],
    )
    q_pro_null = cat == 1
    t_pro_null = (cat == 1) & (u[6] < 0.5)
    # Classic: interested accounts mostly did the questionnaire / terms, the others rarely
    q_cls = np.where(interested, recent, old)
    q_cls_null = np.where(interested, u[6] >= 0.7, u[6] >= 0.03)
    t_cls = np.where(u[7] < 0.05, late, recent)
    t_cls_null = np.where(interested, u[7] >= 0.9, u[7] >= 0.03)
    q = np.where(is_pro, q_pro, q_cls)
    t = np.where(is_pro, t_pro, t_cls)
    q_null = np.where(is_pro, q_pro_null, q_cls_null)
    t_null = np.where(is_pro, t_pro_null, t_cls_null)
    country = np.searchsorted(COUNTRY_CUM, rng.random(n) * COUNTRY_CUM[-1], side="right")
    df = pl.DataFrame(
        {
            "account_id": ids,
            "margin_mode": pl.Series(["classic", "pro"]).gather(is_pro.astype(np.uint32)),
            "classic_leverage": leverage.astype(np.int64),
            "cross_margin_activated": activated,
            "pro_quiz_passed": quiz,
            "questionnaire_completed_at": _ts_series(q, q_null),
            "terms_agreed_at": _ts_series(t, t_null),
            "country": pl.Series([c for c, _ in COUNTRIES]).gather(country.astype(np.uint32)),
        }
    )
    return df, is_pro


def _balances(
    rng: np.random.Generator, ids: np.ndarray, is_pro: np.ndarray
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Balance rows (grouped by account), the number of rows per account and each account's wealth."""
    n, na = len(ids), len(ASSETS)
    wealth = np.clip(np.exp(rng.normal(np.log(1500.0), 1.7, n)), 1.0, 3e8)
    # Which assets an account holds: a main asset (drawn by weight) plus each other asset independently
    # with probability 1 - exp(-breadth * w), breadth heavy-tailed per account: median 3 assets,
    # ~65% hold 1-4, ~1% hold 20+. 1% of the accounts are empty (no balance rows).
    breadth = np.exp(rng.normal(1.05, 1.25, n)).astype(np.float32)
    main = np.searchsorted(HOLD_CUM, rng.random(n) * HOLD_CUM[-1], side="right")
    held = rng.random((n, na), dtype=np.float32) < -np.expm1(-breadth[:, None] * BREADTH_WEIGHT[None, :])
    held[np.arange(n), main] = True
    held[rng.random(n) < 0.01] = False
    acc, asset = np.nonzero(held)  # row-major: grouped by account
    n_assets = held.sum(axis=1)
    del held
    rows = len(asset)
    starts = np.concatenate([[0], np.cumsum(n_assets)[:-1]])
    u = rng.random((6, rows))
    share = rng.standard_exponential(rows) * np.where(asset == main[acc], 3.0, 1.0)
    share[u[0] < 0.04] *= 1e-5  # dust
    share[u[1] < 0.02] = 0.0  # an emptied asset: the row stays, all zeros
    total = np.bincount(acc, weights=share, minlength=n)
    hold_usd = wealth[acc] * share / np.where(total[acc] > 0, total[acc], 1.0)
    price, scale = REF_PRICE[asset], SCALE[asset]
    qty = _round_to(hold_usd / price, scale)
    locked = np.where(u[2] < 0.25, np.minimum(_round_to(qty * u[3], scale), qty), 0.0)
    free = _round_to(qty - locked, scale)

    # debt: 50% of Classic and 90% of Pro accounts borrow; size it from a target level
    ua = rng.random((4, n))
    indebted = (n_assets > 0) & (ua[0] < np.where(is_pro, 0.9, 0.5))
    underwater = ua[1] < 0.003
    assets_usd = np.bincount(acc, weights=hold_usd, minlength=n)
    collateral_usd = np.bincount(acc, weights=hold_usd * FIRST_RATIO[asset], minlength=n)
    # one primary debt asset per account: USDT for 70% of those that hold it, else a random held asset
    prefers_usdt = ua[2] < 0.7
    score = u[4] + 2.0 * ((asset == IDX["USDT"]) & prefers_usdt[acc])
    nonempty = n_assets > 0
    best = np.full(n, np.inf)
    best[nonempty] = np.maximum.reduceat(score, starts[nonempty])
    primary = score == best[acc]
    weight = np.where(primary, 1.0, np.where(u[5] < 0.04, u[5] * 5.0, 0.0))
    wsum = np.bincount(acc, weights=weight, minlength=n)
    # Classic: classic margin level m ~ 1 + LN(0.98, 1.4) (~6% <= 1.3, ~1% <= 1.1)
    level_classic = np.where(underwater, rng.uniform(0.75, 1.0, n), 1.0 + np.exp(rng.normal(0.98, 1.4, n)))
    # Pro: target Pro level t ~ LN(1.5, 0.6) (before open-order losses and haircuts beyond the first
    # slice), from C = L (1 + mmr t)
    primary_mmr = np.zeros(n)
    primary_mmr[acc[primary]] = FIRST_MMR[asset[primary]]
    level_pro = np.where(underwater, rng.uniform(-4.0, 0.0, n), np.exp(rng.normal(1.5, 0.6, n)))
    liab_usd = np.where(is_pro, collateral_usd / (1.0 + primary_mmr * level_pro), assets_usd / level_classic)
    liab_usd = np.where(indebted, liab_usd, 0.0)
    debt_usd = liab_usd[acc] * weight / np.where(wsum[acc] > 0, wsum[acc], 1.0)
    borrowed = _round_to(debt_usd / price, scale)
    interest = _round_to(borrowed * rng.uniform(0.0, 0.002, rows), scale)
    # 2% of debt-free accounts still owe some interest on one asset
    interest_only = (~indebted & (ua[3] < 0.02))[acc] & primary
    interest = np.where(interest_only, _round_to(np.maximum(qty, 1.0 / scale) * 1e-3, scale), interest)
    df = pl.DataFrame(
        {
            "account_id": ids[acc],
            "asset": pl.Series(SYMBOLS).gather(asset.astype(np.uint32)),
            "free": free,
            "locked": locked,
            "borrowed": borrowed,
            "interest": interest,
        }
    )
    return df, n_assets, wealth


def _orders(
    rng: np.random.Generator, ids: np.ndarray, wealth: np.ndarray, first_order_id: int
) -> pl.DataFrame:
    n = len(ids)
    count = np.where(rng.random(n) < 0.42, np.minimum(rng.geometric(0.42, n), 200), 0)
    rows = int(count.sum())
    acc = np.repeat(np.arange(n), count)
    pair = np.searchsorted(PAIR_CUM, rng.random(rows) * PAIR_CUM[-1], side="right")
    base, quote = PAIR_BASE[pair], PAIR_QUOTE[pair]
    u = rng.random((3, rows))
    buy = u[0] < 0.52
    market = REF_PRICE[base] / REF_PRICE[quote]
    # resting orders away from the market; 10% cross it (marketable limit orders)
    away = np.where(u[1] < 0.1, -u[2] * 0.01, np.abs(rng.normal(0.0, 0.025, rows)))
    price = _round_sig(market * np.where(buy, 1.0 - away, 1.0 + away), 5)
    notional = wealth[acc] * rng.uniform(0.01, 0.25, rows)
    qty = np.maximum(_round_to(notional / REF_PRICE[base], SCALE[base]), 1.0 / SCALE[base])
    return pl.DataFrame(
        {
            "account_id": ids[acc],
            "order_id": first_order_id + np.arange(rows, dtype=np.int64),
            "base_asset": pl.Series(SYMBOLS).gather(base.astype(np.uint32)),
            "quote_asset": pl.Series(SYMBOLS).gather(quote.astype(np.uint32)),
            "side": pl.Series(["SELL", "BUY"]).gather(buy.astype(np.uint32)),
            "price": price,
            "remaining_qty": qty,
        }
    )


def _switches(rng: np.random.Generator, ids: np.ndarray, is_pro: np.ndarray) -> pl.DataFrame:
    n = len(ids)
    u = rng.random((3, n))
    regular = np.where(
        is_pro, 1 + (u[0] < 0.25) * rng.geometric(0.6, n), (u[0] < 0.12) * rng.geometric(0.6, n)
    )
    burst = np.where(u[1] < 0.005, 3 + rng.geometric(0.45, n), 0)  # 4+ switches on one day
    acc_r = np.repeat(np.arange(n), regular)
    t_r = _uniform_us(rng, _us(_t("2024-09-01T00:00:00Z")), _us(_t("2025-02-01T00:00:00Z")), len(acc_r))
    acc_b = np.repeat(np.arange(n), burst)
    days = np.array([d for d, _ in BURST_DAYS])
    day_cum = np.cumsum([w for _, w in BURST_DAYS])
    day = days[np.searchsorted(day_cum, u[2] * day_cum[-1], side="right")]
    t_b = (
        day[acc_b] + rng.integers(0, 10 * 3600 + 1, len(acc_b), dtype=np.int64) * US_SECOND
    )  # [00:00, 10:00]
    acc_all = np.concatenate([acc_r, acc_b])
    t_all = np.concatenate([t_r, t_b])
    o = np.lexsort((t_all, acc_all))
    return pl.DataFrame({"account_id": ids[acc_all[o]], "switched_at": _ts_series(t_all[o])})


# ---------------------------------------------------------------------------------- faults
# kind -> (expected issue code, table the fault is in)
FAULT_KINDS: list[tuple[str, str, str]] = [
    ("missing_price", "missing_price", "balances"),
    ("negative_free", "negative_quantity", "balances"),
    ("duplicate_balance", "duplicate_row", "balances"),
    ("duplicate_account", "duplicate_row", "accounts"),
    ("unknown_account_balances", "unknown_account", "balances"),
    ("unknown_account_orders", "unknown_account", "open_orders"),
    ("unknown_mode", "unknown_mode", "accounts"),
    ("bad_leverage", "bad_value", "accounts"),
    ("bad_side", "bad_value", "open_orders"),
    ("missing_collateral_tiers", "missing_collateral_tiers", "balances"),
    ("missing_liability_brackets", "missing_liability_brackets", "balances"),
    ("bad_tier_table", "bad_tier_table", "collateral_tiers"),
    ("nan_free", "non_finite_value", "balances"),
    ("negative_order_qty", "negative_quantity", "open_orders"),
    ("inf_borrowed", "non_finite_value", "balances"),
]
FAULT_ISSUES_SCHEMA = {
    "account_id": pl.Int64(),
    "kind": pl.String(),
    "code": pl.String(),
    "table": pl.String(),
}


def _member(ids: np.ndarray) -> pl.Expr:
    """account_id is one of `ids`."""
    return pl.col("account_id").is_in(pl.Series(ids, dtype=pl.Int64()).implode())


def _inject(
    tables: dict[str, pl.DataFrame], pool: np.ndarray, k: int, first: int, rng: np.random.Generator
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Give k accounts of `pool` (accounts with balance rows) one fault each, kinds cycling from index `first`.

    Vectorized per kind (15 kinds, not per account). Returns the new tables and the expected issues.
    """
    k = min(k, len(pool))
    chosen = np.sort(rng.choice(pool, size=k, replace=False)) if k else np.empty(0, np.int64)
    kind_no = (first + np.arange(k)) % len(FAULT_KINDS)
    expected = pl.DataFrame(
        {
            "account_id": chosen,
            "kind": pl.Series([f[0] for f in FAULT_KINDS]).gather(kind_no.astype(np.uint32)),
            "code": pl.Series([f[1] for f in FAULT_KINDS]).gather(kind_no.astype(np.uint32)),
            "table": pl.Series([f[2] for f in FAULT_KINDS]).gather(kind_no.astype(np.uint32)),
        },
        schema=FAULT_ISSUES_SCHEMA,
    )
    if k == 0:
        return tables, expected
    ids = {f[0]: chosen[kind_no == i] for i, f in enumerate(FAULT_KINDS)}
    acc, bal, orders = tables["accounts"], tables["balances"], tables["open_orders"]
    order_id0 = FAULT_ORDER_ID_BASE + first

    def new_balances(who: np.ndarray, asset: str, free: float, borrowed: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "account_id": who,
                "asset": [asset] * len(who),
                "free": np.full(len(who), free),
                "locked": 0.0,
                "borrowed": borrowed,
                "interest": 0.0,
            },
            schema=INPUT_SCHEMAS["balances"],
        )

    def new_orders(who: np.ndarray, offset: int, side: str, qty: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "account_id": who,
                "order_id": order_id0 + offset * 1_000_000 + np.arange(len(who)),
                "base_asset": "BTC",
                "quote_asset": "USDT",
                "side": side,
                "price": 95_000.0,
                "remaining_qty": qty,
            },
            schema=INPUT_SCHEMAS["open_orders"],
        )

    first_row = pl.col("account_id").is_first_distinct()

    def on_first_row(kind: str) -> pl.Expr:
        return first_row & _member(ids[kind])

    bal = bal.with_columns(
        free=pl.when(on_first_row("negative_free"))
        .then(-(pl.col("free").abs() + 1.0))
        .when(on_first_row("nan_free"))
        .then(float("nan"))
        .otherwise(pl.col("free")),
        borrowed=pl.when(on_first_row("inf_borrowed")).then(float("inf")).otherwise(pl.col("borrowed")),
    )
    dup_bal = bal.filter(on_first_row("duplicate_balance"))
    gone = np.concatenate([ids["unknown_account_balances"], ids["unknown_account_orders"]])
    bal = pl.concat(
        [
            bal.filter(~_member(ids["unknown_account_orders"])),
            dup_bal,
            new_balances(ids["missing_price"], "NOPRICE", 10.0, 0.0),
            new_balances(ids["missing_collateral_tiers"], "NOTIERS", 10.0, 0.0),
            new_balances(ids["missing_liability_brackets"], "NOBRACKETS", 10.0, 5.0),
            new_balances(ids["bad_tier_table"], "GAPTIER", 10.0, 0.0),
        ]
    ).sort("account_id", maintain_order=True)
    orders = pl.concat(
        [
            orders,
            new_orders(ids["unknown_account_orders"], 0, "BUY", 0.001),
            new_orders(ids["bad_side"], 1, "LONG", 0.001),
            new_orders(ids["negative_order_qty"], 2, "SELL", -0.001),
        ]
    ).sort("account_id", maintain_order=True)

    def in_(kind: str) -> pl.Expr:
        return _member(ids[kind])

    acc = acc.with_columns(
        margin_mode=pl.when(in_("unknown_mode")).then(pl.lit("portfolio")).otherwise(pl.col("margin_mode")),
        classic_leverage=pl.when(in_("bad_leverage")).then(10).otherwise(pl.col("classic_leverage")),
    )
    acc = pl.concat([acc.filter(~_member(gone)), acc.filter(in_("duplicate_account"))]).sort(
        "account_id", maintain_order=True
    )
    return {**tables, "accounts": acc, "balances": bal, "open_orders": orders}, expected


def inject_faults(
    tables: dict[str, pl.DataFrame], share: float, seed: int = 0
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Give `share` of the random accounts (ids >= FIRST_RANDOM_ID with balance rows) one fault each.

    Returns (tables, expected) where expected has one row per faulted account: account_id, kind, code
    (the SPEC §4 issue code the engine must report for it) and table. Reference rows for the fault
    assets are added to prices / collateral_tiers / liability_brackets when missing.
    """
    bal = tables["balances"]
    pool = (
        bal.filter(pl.col("account_id") >= FIRST_RANDOM_ID)
        .select(pl.col("account_id").unique(maintain_order=True))
        .to_series()
        .to_numpy()
    )
    n_random = tables["accounts"].filter(pl.col("account_id") >= FIRST_RANDOM_ID).height
    out, expected = _inject(tables, pool, round(share * n_random), 0, np.random.default_rng([seed, 999_983]))
    ref = reference_tables(include_fault_assets=True)
    fault_symbols = [f[0] for f in FAULT_ASSETS]
    for name in REFERENCE_TABLES:
        if not out[name].filter(pl.col("asset").is_in(fault_symbols)).height:
            out[name] = pl.concat([out[name], ref[name].filter(pl.col("asset").is_in(fault_symbols))])
    return out, expected


# ------------------------------------------------------------------------------- generation
@dataclass
class _Counter:
    accounts: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    faults: int = 0


def _chunks(
    accounts: int, seed: int, faults: float
) -> Iterator[tuple[dict[str, pl.DataFrame], pl.DataFrame]]:
    """Per-account tables chunk by chunk: the showcase first, then random accounts in CHUNK_ACCOUNTS."""
    if accounts < 0 or seed < 0:
        raise ValueError("accounts and seed must be >= 0")
    if not 0.0 <= faults <= 1.0:
        raise ValueError("faults must be a share in [0, 1]")
    yield showcase_tables(), pl.DataFrame(schema=FAULT_ISSUES_SCHEMA)
    next_order = FIRST_ORDER_ID
    for c, start in enumerate(range(0, accounts, CHUNK_ACCOUNTS)):
        end = min(start + CHUNK_ACCOUNTS, accounts)
        rng = np.random.default_rng([seed, c])
        ids = FIRST_RANDOM_ID + np.arange(start, end, dtype=np.int64)
        acc, is_pro = _accounts(rng, ids)
        bal, n_assets, wealth = _balances(rng, ids, is_pro)
        orders = _orders(rng, ids, wealth, next_order)
        next_order += orders.height
        tables = {
            "accounts": acc,
            "balances": bal,
            "open_orders": orders,
            "mode_switches": _switches(rng, ids, is_pro),
        }
        expected = pl.DataFrame(schema=FAULT_ISSUES_SCHEMA)
        if faults > 0:
            first, last = round(faults * start), round(faults * end)
            tables, expected = _inject(tables, ids[n_assets > 0], last - first, first, rng)
        yield tables, expected


def generate_with_faults(
    accounts: int, seed: int, faults: float = 0.0
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """All 7 tables in memory (showcase + `accounts` random accounts) and the expected fault issues."""
    parts, expected = [], []
    for tables, exp in _chunks(accounts, seed, faults):
        parts.append(tables)
        expected.append(exp)
    out = {name: pl.concat([p[name] for p in parts]) for name in PER_ACCOUNT_TABLES}
    out.update(reference_tables(include_fault_assets=faults > 0))
    return {name: out[name] for name in TABLES}, pl.concat(expected)


def generate(accounts: int, seed: int, faults: float = 0.0) -> dict[str, pl.DataFrame]:
    """All 7 input tables (schemas.INPUT_SCHEMAS) for the showcase + `accounts` random accounts."""
    return generate_with_faults(accounts, seed, faults)[0]


def _arrow_schema(name: str) -> pa.Schema:
    to_arrow = {
        pl.Int64(): pa.int64(),
        pl.Float64(): pa.float64(),
        pl.String(): pa.string(),
        pl.Boolean(): pa.bool_(),
        pl.Datetime("us", "UTC"): pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(col, to_arrow[dtype]) for col, dtype in INPUT_SCHEMAS[name].items()])


class _Sink:
    """One output file per table, appended chunk by chunk (parquet via pyarrow, or csv).

    Parquet rows are buffered per table and written in row groups of exactly ROW_GROUP_ROWS rows
    (the last one shorter); dictionary encoding only for the string columns; zstd.
    """

    def __init__(self, out: Path, fmt: str) -> None:
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"format must be parquet or csv, not {fmt!r}")
        self.out, self.fmt = out, fmt
        self.writers: dict[str, Any] = {}
        self.buffers: dict[str, list[pl.DataFrame]] = {}

    def write(self, name: str, df: pl.DataFrame) -> None:
        df = df.select(list(INPUT_SCHEMAS[name])).cast(INPUT_SCHEMAS[name])
        if self.fmt == "csv":
            first = name not in self.writers
            if first:
                self.writers[name] = (self.out / f"{name}.csv").open("w", encoding="utf-8", newline="")
            df.write_csv(self.writers[name], include_header=first, datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ")
            return
        buf = self.buffers.setdefault(name, [])
        buf.append(df)
        rows = sum(b.height for b in buf)
        if rows >= ROW_GROUP_ROWS:
            whole = pl.concat(buf)
            cut = rows - rows % ROW_GROUP_ROWS
            self._write_parquet(name, whole.slice(0, cut))
            self.buffers[name] = [whole.slice(cut)] if cut < rows else []

    def _write_parquet(self, name: str, df: pl.DataFrame) -> None:
        schema = _arrow_schema(name)
        if name not in self.writers:
            strings = [c for c, t in INPUT_SCHEMAS[name].items() if t == pl.String()]
            self.writers[name] = pq.ParquetWriter(
                self.out / f"{name}.parquet", schema, compression="zstd", use_dictionary=strings
            )
        self.writers[name].write_table(df.to_arrow().cast(schema), row_group_size=ROW_GROUP_ROWS)

    def close(self) -> None:
        for name, buf in self.buffers.items():
            if buf:  # the remainder (or a table with no rows at all: an empty file with the schema)
                self._write_parquet(name, pl.concat(buf))
        for w in self.writers.values():
            w.close()


def write_sample(out: Path, accounts: int, seed: int, faults: float = 0.0, fmt: str = "parquet") -> str:
    """Write the 7 input tables into `out` chunk by chunk (bounded memory); return a one-line summary.

    Any existing NAME.parquet / NAME.csv of the 7 tables in `out` is replaced. Same arguments, same bytes.
    """
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        for ext in ("parquet", "csv"):
            (out / f"{name}.{ext}").unlink(missing_ok=True)
    sink = _Sink(out, fmt)
    count = _Counter()
    try:
        for name, df in reference_tables(include_fault_assets=faults > 0).items():
            sink.write(name, df)
            count.rows[name] += df.height
        for tables, expected in _chunks(accounts, seed, faults):
            count.faults += expected.height
            count.accounts += tables["accounts"].height
            for name in PER_ACCOUNT_TABLES:
                count.rows[name] += tables[name].height
                sink.write(name, tables[name])
    finally:
        sink.close()
    rows = ", ".join(f"{name} {count.rows[name]:,}" for name in TABLES)
    return (
        f"wrote {out} ({fmt}): {len(SHOWCASE)} showcase + {accounts:,} random accounts (seed {seed}, "
        f"{count.faults:,} injected faults); rows: {rows}; {time.perf_counter() - started:.1f}s; "
        f"showcase as_of {SHOWCASE_AS_OF.isoformat().replace('+00:00', 'Z')}"
    )
