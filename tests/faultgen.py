"""Input builders for the robustness tests (bad input, data issues, atomic outputs, numeric edge cases).

- `clean_tables(n, seed)`: a valid input (SPEC.md §4) of n accounts, generated vectorized with numpy,
  with exactly the dtypes of schemas.INPUT_SCHEMAS. Every account is valid: no data issue expected.
- `inject_faults(tables, seed)`: the same input with faults of every data-issue kind injected into
  disjoint sets of accounts; returns the faulty tables and the expected {account_id: {(table, code)}}.
- `write_inputs(tables, directory, fmt)`: one NAME.parquet / NAME.csv per table.
- `literal(...)`: a tiny literal input (a handful of rows) for one-case-per-code tests.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crossmargin.schemas import INPUT_SCHEMAS

UTC = dt.UTC
EPOCH = dt.datetime(2020, 1, 1, tzinfo=UTC)
AS_OF = dt.datetime(2025, 1, 21, 10, tzinfo=UTC)
AS_OF_TEXT = "2025-01-21T10:00:00Z"
COMPLIANT = dt.datetime(2024, 12, 17, tzinfo=UTC)

# good assets: price, one-or-two-slice collateral tiers, liability brackets
GOOD = {"USDT": 1.0, "BTC": 100_000.0, "ETH": 4_000.0, "BNB": 700.0, "DOGE": 0.25}
# reference-data faults: each asset is broken in exactly one way
NO_PRICE = "NOPRICE"  # tiers and brackets, no price row at all
LATE_PRICE = "LATEPRICE"  # only a price priced after as_of
NO_TIERS = "NOTIERS"  # price and brackets, no collateral tiers
NO_BRACKETS = "NOBRK"  # price and tiers, no liability brackets
GAP = "GAPT"  # collateral tiers with a gap
OVERLAP = "OVLT"  # collateral tiers overlapping
BAD_RATE = "RATET"  # collateral ratio 1.5
NOT_AT_ZERO = "ZEROT"  # collateral tiers starting at 100
BAD_BRACKET = "BRKT"  # liability brackets with maintenance rate -0.1
INF_PRICE = "INFP"  # price +inf
NAN_PRICE = "NANP"  # price NaN
NEG_PRICE = "NEGP"  # price -1
UNTOUCHED = "UNTOUCHED"  # no price, no tiers, no brackets, nobody holds it: never an issue


def _frame(name: str, data: dict[str, Any]) -> pl.DataFrame:
    schema = INPUT_SCHEMAS[name]
    return pl.DataFrame(data, schema=schema) if data else pl.DataFrame(schema=schema)


def _rows(name: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=INPUT_SCHEMAS[name])


def tier_rows(
    asset: str, slices: list[tuple[float, float | None, float]], eff: dt.datetime = EPOCH
) -> list[dict]:
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
    asset: str, slices: list[tuple[float, float | None, float, float]], eff: dt.datetime = EPOCH
) -> list[dict]:
    return [
        {
            "asset": asset,
            "effective_from": eff,
            "lower_usdt": float(lo),
            "upper_usdt": None if up is None else float(up),
            "leverage": 5.0,
            "maintenance_margin_rate": float(mmr),
            "initial_margin_rate": float(imr),
        }
        for lo, up, mmr, imr in slices
    ]


def reference_tables(faulty_assets: bool = False) -> dict[str, pl.DataFrame]:
    """prices, collateral_tiers, liability_brackets for GOOD (and, if asked, the broken assets)."""
    prices = [{"asset": a, "price_usdt": p, "priced_at": EPOCH} for a, p in GOOD.items()]
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
    if faulty_assets:
        for a in [NO_TIERS, NO_BRACKETS, GAP, OVERLAP, BAD_RATE, NOT_AT_ZERO, BAD_BRACKET]:
            prices.append({"asset": a, "price_usdt": 2.0, "priced_at": EPOCH})
        prices += [
            {"asset": LATE_PRICE, "price_usdt": 2.0, "priced_at": AS_OF + dt.timedelta(seconds=1)},
            {"asset": INF_PRICE, "price_usdt": float("inf"), "priced_at": EPOCH},
            {"asset": NAN_PRICE, "price_usdt": float("nan"), "priced_at": EPOCH},
            {"asset": NEG_PRICE, "price_usdt": -1.0, "priced_at": EPOCH},
        ]
        ok_t = [(0, None, 0.9)]
        ok_b = [(0, None, 0.05, 0.1)]
        for a in [NO_PRICE, LATE_PRICE, NO_BRACKETS, BAD_BRACKET, INF_PRICE, NAN_PRICE, NEG_PRICE]:
            tiers += tier_rows(a, ok_t)
        for a in [
            NO_PRICE,
            LATE_PRICE,
            NO_TIERS,
            GAP,
            OVERLAP,
            BAD_RATE,
            NOT_AT_ZERO,
            INF_PRICE,
            NAN_PRICE,
            NEG_PRICE,
        ]:
            brackets += bracket_rows(a, ok_b)
        tiers += tier_rows(GAP, [(0, 100, 0.9), (200, None, 0.8)])
        tiers += tier_rows(OVERLAP, [(0, 100, 0.9), (50, None, 0.8)])
        tiers += tier_rows(BAD_RATE, [(0, None, 1.5)])
        tiers += tier_rows(NOT_AT_ZERO, [(100, None, 0.9)])
        brackets += bracket_rows(BAD_BRACKET, [(0, None, -0.1, 0.1)])
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
        **reference_tables(faulty_assets=False),
    }


# ---------------------------------------------------------------- fault injection

FAULT_KINDS = [
    # name, expected (table, code)
    ("missing_price", ("prices", "missing_price")),
    ("late_price", ("prices", "missing_price")),
    ("negative_free", ("balances", "negative_quantity")),
    ("negative_interest", ("balances", "negative_quantity")),
    ("negative_order_price", ("open_orders", "negative_quantity")),
    ("negative_order_qty", ("open_orders", "negative_quantity")),
    ("negative_price", ("prices", "negative_quantity")),
    ("duplicate_account", ("accounts", "duplicate_row")),
    ("duplicate_balance", ("balances", "duplicate_row")),
    ("unknown_mode", ("accounts", "unknown_mode")),
    ("bad_leverage", ("accounts", "bad_value")),
    ("bad_side", ("open_orders", "bad_value")),
    ("missing_collateral_tiers", ("collateral_tiers", "missing_collateral_tiers")),
    ("order_missing_collateral_tiers", ("collateral_tiers", "missing_collateral_tiers")),
    ("missing_liability_brackets", ("liability_brackets", "missing_liability_brackets")),
    ("tier_gap", ("collateral_tiers", "bad_tier_table")),
    ("tier_overlap", ("collateral_tiers", "bad_tier_table")),
    ("tier_rate", ("collateral_tiers", "bad_tier_table")),
    ("tier_not_at_zero", ("collateral_tiers", "bad_tier_table")),
    ("bracket_rate", ("liability_brackets", "bad_tier_table")),
    ("nan_quantity", ("balances", "non_finite_value")),
    ("inf_quantity", ("balances", "non_finite_value")),
    ("inf_order_qty", ("open_orders", "non_finite_value")),
    ("inf_price", ("prices", "non_finite_value")),
    ("nan_price", ("prices", "non_finite_value")),
    ("overflow", ("balances", "non_finite_value")),
]
UNKNOWN_KINDS = [
    ("unknown_balance", "balances"),
    ("unknown_order", "open_orders"),
    ("unknown_switch", "mode_switches"),
]


def inject_faults(
    tables: dict[str, pl.DataFrame], seed: int = 0, per_kind: int = 3
) -> tuple[dict[str, pl.DataFrame], dict[int, set[tuple[str, str]]], set[int]]:
    """Faulty copy of a clean input: (tables, expected issues per input account, unknown account ids).

    Each fault kind of FAULT_KINDS hits `per_kind` distinct accounts (disjoint across kinds). Unknown
    accounts (rows of balances / open_orders / mode_switches whose account is not in accounts) get
    ids that are not input accounts. Reference data gets the broken assets of this module, plus
    UNTOUCHED-style broken assets that no account uses (no issue expected for them).
    """
    rng = np.random.default_rng(seed)
    ids = tables["accounts"]["account_id"].to_numpy()
    pick = rng.choice(ids, size=per_kind * len(FAULT_KINDS), replace=False)
    victims = {
        kind: [int(x) for x in pick[i * per_kind : (i + 1) * per_kind]]
        for i, (kind, _) in enumerate(FAULT_KINDS)
    }
    expected: dict[int, set[tuple[str, str]]] = {}
    for kind, issue in FAULT_KINDS:
        for a in victims[kind]:
            expected.setdefault(a, set()).add(issue)

    accounts = tables["accounts"]
    balances = tables["balances"]
    orders = tables["open_orders"]
    switches = tables["mode_switches"]
    ref = reference_tables(faulty_assets=True)

    def bal(
        a: int,
        asset: str,
        free: float = 1.0,
        locked: float = 0.0,
        borrowed: float = 0.0,
        interest: float = 0.0,
    ):
        return {
            "account_id": a,
            "asset": asset,
            "free": free,
            "locked": locked,
            "borrowed": borrowed,
            "interest": interest,
        }

    new_bal: list[dict] = []
    new_ord: list[dict] = []
    next_order = int(orders["order_id"].max() or 0) + 1

    def order(a: int, base: str, quote: str, side: str = "BUY", price: float = 1.0, qty: float = 1.0):
        nonlocal next_order
        next_order += 1
        return {
            "account_id": a,
            "order_id": next_order,
            "base_asset": base,
            "quote_asset": quote,
            "side": side,
            "price": price,
            "remaining_qty": qty,
        }

    v = victims
    new_bal += [bal(a, NO_PRICE) for a in v["missing_price"]]
    new_bal += [bal(a, LATE_PRICE) for a in v["late_price"]]
    new_bal += [bal(a, "DOGE", free=-1.0) for a in v["negative_free"]]
    new_bal += [bal(a, "DOGE", free=1.0, borrowed=1.0, interest=-0.5) for a in v["negative_interest"]]
    new_ord += [order(a, "BTC", "USDT", price=-5.0) for a in v["negative_order_price"]]
    new_ord += [order(a, "BTC", "USDT", qty=-1.0) for a in v["negative_order_qty"]]
    new_bal += [bal(a, NEG_PRICE) for a in v["negative_price"]]
    # a duplicated (account_id, asset) balance: USDT is held by every clean account already
    new_bal += [bal(a, "USDT", free=3.0) for a in v["duplicate_balance"]]
    new_ord += [order(a, "BTC", "USDT", side="HOLD") for a in v["bad_side"]]
    new_bal += [bal(a, NO_TIERS) for a in v["missing_collateral_tiers"]]
    new_ord += [order(a, NO_TIERS, "USDT") for a in v["order_missing_collateral_tiers"]]
    new_bal += [bal(a, NO_BRACKETS, free=0.0, borrowed=1.0) for a in v["missing_liability_brackets"]]
    new_bal += [bal(a, GAP, free=1000.0) for a in v["tier_gap"]]
    new_bal += [bal(a, OVERLAP) for a in v["tier_overlap"]]
    new_bal += [bal(a, BAD_RATE) for a in v["tier_rate"]]
    new_bal += [bal(a, NOT_AT_ZERO) for a in v["tier_not_at_zero"]]
    new_bal += [bal(a, BAD_BRACKET, free=0.0, borrowed=2.0) for a in v["bracket_rate"]]
    new_bal += [bal(a, "ETH", free=float("nan")) for a in v["nan_quantity"]]
    new_bal += [bal(a, "ETH", free=1.0, locked=float("inf")) for a in v["inf_quantity"]]
    new_ord += [order(a, "BTC", "USDT", qty=float("inf")) for a in v["inf_order_qty"]]
    new_bal += [bal(a, INF_PRICE) for a in v["inf_price"]]
    new_bal += [bal(a, NAN_PRICE) for a in v["nan_price"]]
    # finite rows whose USDT value overflows float64 (1e306 * 1e5 BTC price)
    new_bal += [bal(a, "BTC", free=1e306) for a in v["overflow"]]

    # faults that replace rows rather than add them: drop the clean rows of the assets re-added above
    touched = (
        [(a, "DOGE") for a in v["negative_free"] + v["negative_interest"]]
        + [(a, "ETH") for a in v["nan_quantity"] + v["inf_quantity"]]
        + [(a, "BTC") for a in v["overflow"]]
    )
    drop = pl.DataFrame(touched, schema={"account_id": pl.Int64, "asset": pl.String}, orient="row")
    balances = pl.concat(
        [balances.join(drop, on=["account_id", "asset"], how="anti"), _rows("balances", new_bal)]
    )
    orders = pl.concat([orders, _rows("open_orders", new_ord)])

    accounts = accounts.with_columns(
        pl.when(pl.col("account_id").is_in(v["unknown_mode"]))
        .then(pl.lit("isolated"))
        .otherwise(pl.col("margin_mode"))
        .alias("margin_mode"),
        pl.when(pl.col("account_id").is_in(v["bad_leverage"]))
        .then(pl.lit(10, pl.Int64))
        .otherwise(pl.col("classic_leverage"))
        .alias("classic_leverage"),
    )
    accounts = pl.concat([accounts, accounts.filter(pl.col("account_id").is_in(v["duplicate_account"]))])

    # rows for accounts that are not in accounts (odd ids are never input accounts)
    unknown = {"balances": 1_000_001, "open_orders": 1_000_003, "mode_switches": 1_000_005}
    balances = pl.concat([balances, _rows("balances", [bal(unknown["balances"], "USDT")])])
    orders = pl.concat([orders, _rows("open_orders", [order(unknown["open_orders"], "BTC", "USDT")])])
    switches = pl.concat(
        [switches, _rows("mode_switches", [{"account_id": unknown["mode_switches"], "switched_at": AS_OF}])]
    )

    # broken reference data for an asset nobody touches: must not produce any issue
    ref["collateral_tiers"] = pl.concat(
        [ref["collateral_tiers"], _rows("collateral_tiers", tier_rows(UNTOUCHED, [(5, 1, 7.0)]))]
    )
    ref["liability_brackets"] = pl.concat(
        [ref["liability_brackets"], _rows("liability_brackets", bracket_rows(UNTOUCHED, [(0, 10, 2.0, 3.0)]))]
    )

    # shuffle rows: nothing may depend on input order
    def shuffle(df: pl.DataFrame) -> pl.DataFrame:
        return df.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(0, 2**31)))

    out = {
        "accounts": shuffle(accounts),
        "balances": shuffle(balances),
        "open_orders": shuffle(orders),
        "mode_switches": shuffle(switches),
        **ref,
    }
    unknown_ids = set(unknown.values())
    return out, expected, unknown_ids


# ---------------------------------------------------------------- files


def write_inputs(tables: dict[str, pl.DataFrame], directory: Path, fmt: str = "parquet") -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if fmt == "parquet":
            df.write_parquet(directory / f"{name}.parquet")
        else:
            to_csv(df).write_csv(directory / f"{name}.csv")
    return directory


def to_csv(df: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as ISO-8601 with Z (what a CSV export from the upstream feed looks like)."""
    return df.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        for c, t in df.schema.items()
        if isinstance(t, pl.Datetime)
    )


def literal(
    accounts: list[dict] | None = None,
    balances: list[dict] | None = None,
    open_orders: list[dict] | None = None,
    mode_switches: list[dict] | None = None,
    prices: list[dict] | None = None,
    collateral_tiers: list[dict] | None = None,
    liability_brackets: list[dict] | None = None,
) -> dict[str, pl.DataFrame]:
    """Literal tables; reference tables default to reference_tables(faulty_assets=True)."""
    ref = reference_tables(faulty_assets=True)
    return {
        "accounts": _rows("accounts", accounts or []),
        "balances": _rows("balances", balances or []),
        "open_orders": _rows("open_orders", open_orders or []),
        "mode_switches": _rows("mode_switches", mode_switches or []),
        "prices": ref["prices"] if prices is None else _rows("prices", prices),
        "collateral_tiers": ref["collateral_tiers"]
        if collateral_tiers is None
        else _rows("collateral_tiers", collateral_tiers),
        "liability_brackets": ref["liability_brackets"]
        if liability_brackets is None
        else _rows("liability_brackets", liability_brackets),
    }


def acct(account_id: int, mode: str = "classic", leverage: int = 3, **kw: Any) -> dict[str, Any]:
    row = {
        "account_id": account_id,
        "margin_mode": mode,
        "classic_leverage": leverage,
        "cross_margin_activated": True,
        "pro_quiz_passed": True,
        "questionnaire_completed_at": COMPLIANT,
        "terms_agreed_at": COMPLIANT,
        "country": "FR",
    }
    row.update(kw)
    return row


def bal(
    account_id: int,
    asset: str,
    free: float = 0.0,
    locked: float = 0.0,
    borrowed: float = 0.0,
    interest: float = 0.0,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "asset": asset,
        "free": float(free),
        "locked": float(locked),
        "borrowed": float(borrowed),
        "interest": float(interest),
    }


def order(account_id: int, order_id: int, base: str, quote: str, side: str, price: float, qty: float) -> dict:
    return {
        "account_id": account_id,
        "order_id": order_id,
        "base_asset": base,
        "quote_asset": quote,
        "side": side,
        "price": float(price),
        "remaining_qty": float(qty),
    }
