"""The showcase: hand-designed accounts 1..61 (INPUT rows only), written first by every
`crossmargin sample` run whatever --accounts / --seed.

Each account sits exactly on (or just past) one threshold of the default policy at SHOWCASE_AS_OF =
2025-01-21T10:00:00Z, with exactly representable numbers (USDT-only balances with integer amounts, USDT
collateral ratio 1.0 and maintenance rate 0.05 on the first slice), so e.g. 1300/1000 == 1.3 in float64.
`shows` says what the account demonstrates; the outputs expected for it are the tests' business.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.synthetic.universe import SHOWCASE_AS_OF, utc

Q0 = utc("2024-12-20T08:00:00Z")  # default questionnaire time (compliant)
T0 = utc("2024-12-20T08:05:00Z")  # default terms time (compliant)


@dataclass(frozen=True)
class Showcase:
    """One hand-designed account: its input rows and what it shows at SHOWCASE_AS_OF."""

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


def _usdt(free: float, borrowed: float = 0.0, interest: float = 0.0, locked: float = 0.0):
    return ("USDT", float(free), float(locked), float(borrowed), float(interest))


def _today(*hms: str) -> tuple[dt.datetime, ...]:
    return tuple(utc(f"2025-01-21T{x}Z") for x in hms)


FIVE_TODAY = _today("00:00:00", "02:00:00", "04:00:00", "06:00:00", "10:00:00")

# fmt: off
SHOWCASE: list[Showcase] = [
    # --- A. Classic thresholds: USDT only, 1,000 USDT borrowed, margin level = free / 1000 -------------
    Showcase(1, "Classic 3x exactly at margin call (1300/1000 = 1.3 <= 1.3)", balances=(_usdt(1300, 1000),)),
    Showcase(2, "Classic 3x just above margin call (1.301)", balances=(_usdt(1301, 1000),)),
    Showcase(3, "Classic 3x exactly at liquidation (1.1 <= 1.1); Pro level after switch exactly 2 fails",
             balances=(_usdt(1100, 1000),)),
    Showcase(4, "Classic 3x just above liquidation (1.101): margin call only", balances=(_usdt(1101, 1000),)),
    Showcase(5, "Classic 3x collateral level exactly at IRR 1.5: borrow blocked", balances=(_usdt(1500, 1000),)),
    Showcase(6, "Classic 3x collateral level just above IRR (1.501): borrowing allowed",
             balances=(_usdt(1501, 1000),)),
    Showcase(7, "Classic 5x exactly at margin call (1.15)", leverage=5, balances=(_usdt(1150, 1000),)),
    Showcase(8, "Classic 5x just above margin call (1.151)", leverage=5, balances=(_usdt(1151, 1000),)),
    Showcase(9, "Classic 5x exactly at liquidation (1.1)", leverage=5, balances=(_usdt(1100, 1000),)),
    Showcase(10, "Classic 5x just above liquidation (1.101): margin call only", leverage=5,
             balances=(_usdt(1101, 1000),)),
    Showcase(11, "Classic 5x collateral level exactly at IRR 1.25: borrow blocked", leverage=5,
             balances=(_usdt(1250, 1000),)),
    Showcase(12, "Classic 5x collateral level just above IRR (1.251): borrowing allowed", leverage=5,
             balances=(_usdt(1251, 1000),)),
    Showcase(13, "Classic 3x bad debt: liability 1000 > assets 900", balances=(_usdt(900, 1000),)),
    # --- B. Pro thresholds: compliant, 1,000 USDT borrowed: MM = 50, IM = 100, level = (free - 1000) / 50 ---
    Showcase(14, "Pro exactly at margin call 1.5 (75/50); no available margin", mode="pro",
             balances=(_usdt(1075, 1000),)),
    Showcase(15, "Pro just above margin call (1.52)", mode="pro", balances=(_usdt(1076, 1000),)),
    Showcase(16, "Pro exactly at liquidation 1.0 (50/50)", mode="pro", balances=(_usdt(1050, 1000),)),
    Showcase(17, "Pro just above liquidation (1.02): margin call only", mode="pro", balances=(_usdt(1051, 1000),)),
    Showcase(18, "Pro available margin exactly 0 (100 - 100): borrow blocked no_available_margin", mode="pro",
             balances=(_usdt(1100, 1000),)),
    Showcase(19, "Pro available margin 1 USDT: not blocked", mode="pro", balances=(_usdt(1101, 1000),)),
    Showcase(20, "Pro 3x cannot switch to Classic: collateral level exactly IRR 1.5", mode="pro",
             balances=(_usdt(1500, 1000),)),
    Showcase(21, "Pro 3x can switch to Classic: collateral level 1.501 > 1.5", mode="pro",
             balances=(_usdt(1501, 1000),)),
    Showcase(22, "Pro 5x cannot switch to Classic: collateral level exactly IRR 1.25", mode="pro", leverage=5,
             balances=(_usdt(1250, 1000),)),
    Showcase(23, "Pro 5x can switch to Classic: 1.251 > 1.25", mode="pro", leverage=5,
             balances=(_usdt(1251, 1000),)),
    Showcase(24, "Pro with zero debt: every level +inf, can switch to Classic", mode="pro",
             balances=(_usdt(2000), ("BTC", 0.01, 0.0, 0.0, 0.0))),
    Showcase(25, "Pro with 5 switches today (00:00 and 10:00 inclusive): cannot switch", mode="pro",
             balances=(_usdt(2000),), switches=FIVE_TODAY),
    # --- C. Pro compliance, migration, partial repayment ----------------------------------------------
    Showcase(26, "Pro non-compliant (no questionnaire), no debt: blocked pro_not_compliant, migrate now",
             mode="pro", questionnaire_at=None, balances=(_usdt(2000),)),
    Showcase(27, "Pro non-compliant (questionnaire before 2024-12-17), 3x, level 1.2 < 1.3: repay 600",
             mode="pro", questionnaire_at=utc("2024-11-05T09:00:00Z"), terms_at=utc("2024-11-05T09:01:00Z"),
             balances=(_usdt(1200, 1000),)),
    Showcase(28, "Pro non-compliant (terms agreed after as_of), 5x, level 1.1 < 1.15: repay 600 (target 1.25)",
             mode="pro", leverage=5, terms_at=utc("2025-01-22T00:00:00Z"), balances=(_usdt(1100, 1000),)),
    Showcase(29, "Pro non-compliant, 3x, level exactly 1.3 (not < 1.3): no repayment", mode="pro",
             questionnaire_at=None, balances=(_usdt(1300, 1000),)),
    Showcase(30, "Pro non-compliant, 3x, level 1.299 just below 1.3: repay 402", mode="pro", questionnaire_at=None,
             balances=(_usdt(1299, 1000),)),
    Showcase(31, "Pro non-compliant underwater: repayment clipped to min(A, L) = 500, bad debt, liquidation",
             mode="pro", questionnaire_at=None, balances=(_usdt(500, 1000),)),
    Showcase(32, "Pro compliant with both timestamps exactly 2024-12-17T00:00Z (inclusive)", mode="pro",
             questionnaire_at=utc("2024-12-17T00:00:00Z"), terms_at=utc("2024-12-17T00:00:00Z"),
             balances=(_usdt(3000),)),
    Showcase(33, "Pro questionnaire 1 us before 2024-12-17: non-compliant", mode="pro",
             questionnaire_at=utc("2024-12-16T23:59:59.999999Z"), balances=(_usdt(3000),)),
    # --- D. Classic -> Pro eligibility (new policy) ---------------------------------------------------
    Showcase(34, "Classic eligible for Pro (no debt, net equity > 5000)",
             balances=(_usdt(6000), ("BTC", 0.05, 0.0, 0.0, 0.0))),
    Showcase(35, "Classic net equity exactly 5000: not eligible", balances=(_usdt(5000),)),
    Showcase(36, "Classic net equity 5000.5: eligible", balances=(_usdt(5000.5),)),
    Showcase(37, "Classic Pro level after switch exactly 2 ((33000-30000)/1500; TRX at 0.25, ratio 0.75): fails",
             balances=(("TRX", 176000.0, 0.0, 0.0, 0.0), _usdt(0, 30000))),
    Showcase(38, "Classic Pro level after switch 2.125 > 2: eligible (while borrowing is blocked)",
             balances=(("TRX", 177000.0, 0.0, 0.0, 0.0), _usdt(0, 30000))),
    Showcase(39, "Classic not activated", activated=False, balances=(_usdt(6000),)),
    Showcase(40, "Classic quiz not passed", quiz=False, balances=(_usdt(6000),)),
    Showcase(41, "Classic terms never agreed", terms_at=None, balances=(_usdt(6000),)),
    Showcase(42, "Classic terms agreed 1 us after as_of", terms_at=utc("2025-01-21T10:00:00.000001Z"),
             balances=(_usdt(6000),)),
    Showcase(43, "Classic terms agreed exactly at as_of: eligible", terms_at=SHOWCASE_AS_OF,
             balances=(_usdt(6000),)),
    Showcase(44, "Classic in US (restricted)", country="US", balances=(_usdt(6000),)),
    Showcase(45, "Classic in CA (restricted)", country="CA", balances=(_usdt(6000),)),
    Showcase(46, "Classic in NL (restricted)", country="NL", balances=(_usdt(6000),)),
    Showcase(47, "Classic with 5 switches today, window ends inclusive: no switch left", balances=(_usdt(6000),),
             switches=FIVE_TODAY),
    Showcase(48, "Classic with 4 switches today, one 1 us before the day, one 1 us after as_of: 1 left, eligible",
             balances=(_usdt(6000),),
             switches=(utc("2025-01-20T23:59:59.999999Z"), *_today("00:00:00", "03:00:00", "06:00:00", "09:59:59"),
                       utc("2025-01-21T10:00:00.000001Z"))),
    Showcase(49, "Classic with 7 switches today: switches left floored at 0", balances=(_usdt(6000),),
             switches=(*FIVE_TODAY, *_today("01:00:00", "03:00:00"))),
    Showcase(50, "Classic failing every condition but the level (listed in condition order)", activated=False,
             quiz=False, terms_at=None, country="US", balances=(_usdt(100),), switches=FIVE_TODAY),
    # --- E. Levels, open orders, reference data -----------------------------------------------------
    Showcase(51, "Classic with only interest owed (1 USDT): a liability asset, finite level 10000",
             balances=(_usdt(10000, 0, 1),)),
    Showcase(52, "Classic with open orders only, no balance rows: OOL 52 but levels +inf (0 denominators)",
             orders=(("BTC", "USDT", "BUY", 104000.0, 0.01), ("ETH", "USDT", "SELL", 3300.0, 1.0))),
    Showcase(53, "Classic with no balances and no orders: valid, zeros and +inf levels"),
    Showcase(54, "Pro whose open-order loss (26) moves the new level to 1.48 (old formula: 2.0): margin call",
             mode="pro", balances=(_usdt(580, 1000, 0, 520),), orders=(("BTC", "USDT", "BUY", 104000.0, 0.005),)),
    Showcase(55, "Classic with BTC-, ETH- and USDC-quoted orders, BUY and SELL, not netted (OOL 76+8+51.6)",
             balances=(("BTC", 0.5, 0.0, 0.0, 0.0), ("ETH", 3.0, 0.0, 0.0, 0.0), ("USDC", 2000.0, 0.0, 0.0, 0.0)),
             orders=(("ETH", "BTC", "BUY", 0.0325, 1.0), ("BTC", "USDC", "SELL", 98000.0, 0.01),
                     ("SOL", "ETH", "BUY", 0.08, 2.0), ("BNB", "ETH", "SELL", 0.25, 1.0))),
    Showcase(56, "Price and tier version as of 10:00: 1 BTC = 104000 (10:00 snapshot), collateral 0.95 (v2)",
             balances=(("BTC", 1.0, 0.0, 0.0, 0.0),)),
    Showcase(57, "Whale: 250 BTC across all four collateral slices: 950k + 3.6M + 12M + 3M",
             balances=(("BTC", 250.0, 0.0, 0.0, 0.0),)),
    Showcase(58, "Pro whale owing 20 BTC across three liability brackets: MM 120,600, IM 250,907", mode="pro",
             leverage=5, balances=(_usdt(5_000_000), ("BTC", 0.0, 0.0, 20.0, 0.0))),
    Showcase(59, "Classic with an all-zero balance row of an unpriced, untiered asset (LUNA): valid",
             balances=(_usdt(6000), ("LUNA", 0.0, 0.0, 0.0, 0.0))),
    Showcase(60, "Pro in a restricted country (NL): country only matters for Classic eligibility", mode="pro",
             country="NL", balances=(_usdt(3000),)),
    # --- F. What it would take ----------------------------------------------------------------------
    Showcase(61, "Classic whose open orders (loss 52+260+130+260) hold the Pro level after switch below 2: "
                 "cancel 2 (the tied 260s, smaller order_id first)",
             balances=(_usdt(1540, 1000),),
             orders=(("BTC", "USDT", "BUY", 104000.0, 0.01), ("BTC", "USDT", "BUY", 104000.0, 0.05),
                     ("BTC", "USDT", "BUY", 104000.0, 0.025), ("BTC", "USDT", "BUY", 104000.0, 0.05))),
]
# fmt: on
SHOWCASE_IDS = [s.account_id for s in SHOWCASE]


def showcase_tables() -> dict[str, pl.DataFrame]:
    """The showcase block's accounts, balances, open_orders and mode_switches (ids 1..61)."""
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
