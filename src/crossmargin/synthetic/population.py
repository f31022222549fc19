"""Random accounts, balances, open orders and mode switches (numpy, vectorized), chunk by chunk.

Random account ids start at FIRST_RANDOM_ID. Accounts are generated in chunks of CHUNK_ACCOUNTS,
each chunk from its own `default_rng([seed, chunk])` stream, so memory stays bounded whatever N is
and the rows do not depend on how they are written. `chunks()` yields the showcase first. A shape
(shapes.py) sets the shares and means the draws use, never the order of the draws.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from crossmargin.io.schemas import TABLES
from crossmargin.synthetic.faults import FAULT_ISSUES_SCHEMA, inject_chunk
from crossmargin.synthetic.reference import FIRST_MMR, FIRST_RATIO, reference_tables, round_sig
from crossmargin.synthetic.shapes import HALTED, SAMPLE, Shape
from crossmargin.synthetic.showcase import showcase_tables
from crossmargin.synthetic.universe import (
    AS_OF_US,
    ASSETS,
    BREADTH_WEIGHT,
    BURST_DAYS,
    COMPLIANCE_FROM_US,
    COUNTRIES,
    COUNTRY_CUM,
    FIRST_RANDOM_ID,
    HOLD_CUM,
    IDX,
    PAIR_BASE,
    PAIR_CUM,
    PAIR_QUOTE,
    PER_ACCOUNT_TABLES,
    REF_PRICE,
    SCALE,
    SYMBOLS,
    US_HOUR,
    US_SECOND,
    epoch_us,
    utc,
)

CHUNK_ACCOUNTS = 250_000
FIRST_ORDER_ID = 100_000_001


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


def _accounts(rng: np.random.Generator, ids: np.ndarray, shape: Shape) -> tuple[pl.DataFrame, np.ndarray]:
    n = len(ids)
    u = rng.random((8, n))
    is_pro = u[0] < shape.pro_share
    leverage = np.where(u[1] < 0.65, 3, 5)
    activated = is_pro | (u[2] < 0.88)
    interested = ~is_pro & (u[3] < 0.3)
    quiz = is_pro | (interested & (u[4] < 0.92)) | (~interested & (u[4] < 0.04))

    compliance_lo, recent_hi = COMPLIANCE_FROM_US, AS_OF_US - US_HOUR
    old_lo, late_hi = epoch_us(utc("2024-06-01T00:00:00Z")), epoch_us(utc("2025-02-15T00:00:00Z"))
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
    rng: np.random.Generator, ids: np.ndarray, is_pro: np.ndarray, shape: Shape
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Balance rows (grouped by account), the number of rows per account and each account's wealth."""
    n, na = len(ids), len(ASSETS)
    wealth = np.clip(np.exp(rng.normal(np.log(1500.0), 1.7, n)), 1.0, 3e8)
    # Which assets an account holds: a main asset (drawn by weight) plus each other asset independently
    # with probability 1 - exp(-breadth * w), breadth heavy-tailed per account (sample shape: median 3
    # assets, ~65% hold 1-4, ~1% hold 20+). 1% of the accounts are empty (no balance rows).
    breadth = np.exp(rng.normal(shape.breadth_mu, 1.25, n)).astype(np.float32)
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
    rng: np.random.Generator, ids: np.ndarray, wealth: np.ndarray, first_order_id: int, shape: Shape
) -> pl.DataFrame:
    n = len(ids)
    holds = rng.random(n) < shape.order_holders
    count = np.where(holds, np.minimum(rng.geometric(shape.orders_p, n), 200), 0)
    rows = int(count.sum())
    acc = np.repeat(np.arange(n), count)
    pair = np.searchsorted(PAIR_CUM, rng.random(rows) * PAIR_CUM[-1], side="right")
    base, quote = PAIR_BASE[pair], PAIR_QUOTE[pair]
    u = rng.random((3, rows))
    buy = u[0] < 0.52
    market = REF_PRICE[base] / REF_PRICE[quote]
    # resting orders away from the market; 10% cross it (marketable limit orders)
    away = np.where(u[1] < 0.1, -u[2] * 0.01, np.abs(rng.normal(0.0, 0.025, rows)))
    price = round_sig(market * np.where(buy, 1.0 - away, 1.0 + away), 5)
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


def _switches(rng: np.random.Generator, ids: np.ndarray, is_pro: np.ndarray, shape: Shape) -> pl.DataFrame:
    n = len(ids)
    u = rng.random((3, n))
    regular = np.where(
        is_pro,
        1 + (u[0] < shape.pro_more_switches) * rng.geometric(shape.switches_p, n),
        (u[0] < shape.classic_switchers) * rng.geometric(shape.switches_p, n),
    )
    burst = np.where(u[1] < 0.005, 3 + rng.geometric(0.45, n), 0)  # 4+ switches on one day
    acc_r = np.repeat(np.arange(n), regular)
    t_r = _uniform_us(
        rng, epoch_us(utc("2024-09-01T00:00:00Z")), epoch_us(utc("2025-02-01T00:00:00Z")), len(acc_r)
    )
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


def _halted_balances(
    rng: np.random.Generator, ids: np.ndarray, wealth: np.ndarray, balances: pl.DataFrame, share: float
) -> pl.DataFrame:
    """`balances` with one more row, in the null-priced HALTED asset, for `share` of the accounts
    (a few percent of their wealth, free; still grouped by account: the new row comes last)."""
    picked = np.flatnonzero(rng.random(len(ids)) < share)
    symbol, price, _, decimals, _ = HALTED
    scale = 10.0**decimals
    usd = wealth[picked] * rng.uniform(0.005, 0.05, len(picked))
    zeros = np.zeros(len(picked))
    halted = pl.DataFrame(
        {
            "account_id": ids[picked],
            "asset": pl.Series([symbol] * len(picked), dtype=pl.String),
            "free": np.maximum(_round_to(usd / price, scale), 1.0 / scale),
            "locked": zeros,
            "borrowed": zeros,
            "interest": zeros,
        }
    )
    return pl.concat([balances, halted]).sort("account_id", maintain_order=True)


def _chunk_tables(
    rng: np.random.Generator, ids: np.ndarray, first_order_id: int, shape: Shape
) -> tuple[dict[str, pl.DataFrame], np.ndarray]:
    """The per-account tables of one chunk of random accounts, and each account's balance rows."""
    acc, is_pro = _accounts(rng, ids, shape)
    bal, n_assets, wealth = _balances(rng, ids, is_pro, shape)
    orders = _orders(rng, ids, wealth, first_order_id, shape)
    switches = _switches(rng, ids, is_pro, shape)
    if shape.bad_price_share > 0:
        bal = _halted_balances(rng, ids, wealth, bal, shape.bad_price_share)
    tables = {"accounts": acc, "balances": bal, "open_orders": orders, "mode_switches": switches}
    return tables, n_assets


def chunks(
    accounts: int, seed: int, faults: float, shape: Shape = SAMPLE
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
        tables, n_assets = _chunk_tables(rng, ids, next_order, shape)
        next_order += tables["open_orders"].height
        expected = pl.DataFrame(schema=FAULT_ISSUES_SCHEMA)
        if faults > 0:
            first, last = round(faults * start), round(faults * end)
            tables, expected = inject_chunk(tables, ids[n_assets > 0], last - first, first, rng)
        yield tables, expected


def generate_with_faults(
    accounts: int, seed: int, faults: float = 0.0, shape: Shape = SAMPLE
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """All 7 tables in memory (showcase + `accounts` random accounts) and the expected fault issues."""
    parts, expected = [], []
    for tables, exp in chunks(accounts, seed, faults, shape):
        parts.append(tables)
        expected.append(exp)
    out = {name: pl.concat([p[name] for p in parts]) for name in PER_ACCOUNT_TABLES}
    out.update(reference_tables(include_fault_assets=faults > 0, shape=shape))
    return {name: out[name] for name in TABLES}, pl.concat(expected)


def generate(accounts: int, seed: int, faults: float = 0.0, shape: Shape = SAMPLE) -> dict[str, pl.DataFrame]:
    """All 7 input tables (schemas.INPUT_SCHEMAS) for the showcase + `accounts` random accounts."""
    return generate_with_faults(accounts, seed, faults, shape)[0]
