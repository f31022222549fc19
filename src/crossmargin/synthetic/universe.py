"""The synthetic universe: assets with their reference prices and classes, trading pairs, countries,
the showcase instant and the id ranges (no randomness here; every other module builds on these).

Times are handled as microseconds since the epoch (int64) in the vectorized generators.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

UTC = dt.UTC
SHOWCASE_AS_OF = dt.datetime(2025, 1, 21, 10, 0, tzinfo=UTC)
FIRST_RANDOM_ID = 1_000_001  # random accounts start here; the showcase uses 1..61
PER_ACCOUNT_TABLES = ["accounts", "balances", "open_orders", "mode_switches"]
REFERENCE_TABLES = ["prices", "collateral_tiers", "liability_brackets"]


def epoch_us(ts: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return int((ts - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1))


def utc(text: str) -> dt.datetime:
    """'2025-01-21T10:00:00Z' -> an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).astimezone(UTC)  # Python >= 3.11 parses "Z"


US_SECOND = 1_000_000
US_HOUR = 3600 * US_SECOND
US_DAY = 24 * US_HOUR
AS_OF_US = epoch_us(SHOWCASE_AS_OF)
COMPLIANCE_FROM_US = epoch_us(utc("2024-12-17T00:00:00Z"))
TIER_V1 = utc("2024-06-01T00:00:00Z")
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
    (epoch_us(utc("2025-01-21T00:00:00Z")), 0.4),
    (epoch_us(utc("2025-01-20T00:00:00Z")), 0.15),
    (epoch_us(utc("2025-01-15T00:00:00Z")), 0.15),
    (epoch_us(utc("2024-12-19T00:00:00Z")), 0.15),
    (epoch_us(utc("2024-12-17T00:00:00Z")), 0.15),
]
