"""The compiled kernels driven directly, with what the tests compare them with.

Tier lookups (crossmargin.rules.tiers): `flat_tables` lays tables of slices (lower, upper or None,
rate) out as the engine does, `engine_tiered` looks amounts up with the kernels' pair (slice_at,
tiered_at), `spec_tiered` is docs/rules.md §1 literally, and `check_lookup` asserts both agree to the
bit. The valuation of balance rows (crossmargin.kernels.valuation, crossmargin.engine.rows): a market
of N_KEYS assets (USDT the stable one) with the same tiers and brackets for each, `rows_frame` /
`chunked` the row pass's input split into chunks, `sums` its per-account frame, and `expected` the
sums added up row by row in plain Python (the textbook tiered sum of §1.2, `textbook`).
"""

from __future__ import annotations

import itertools
import struct

import numpy as np
import polars as pl

from crossmargin.engine import rows as rows_
from crossmargin.engine.rows import Rows
from crossmargin.kernels.valuation import Market
from crossmargin.rules import tiers

# ------------------------------------------------------------------ tier lookups


def spec_tiered(x: float, table: list[tuple[float, float | None, float]]) -> float:
    """docs/rules.md §1 literally: the sum over slices in ascending order, left to right."""
    total = None
    for lower, upper, rate in table:
        width = (upper - lower) if upper is not None else float("inf")
        term = rate * min(max(x - lower, 0.0), width)
        total = term if total is None else total + term
    return total


def flat_tables(
    tables: dict[str, list[tuple[float, float | None, float]]],
) -> tuple[tiers.Slices, pl.DataFrame]:
    rows = pl.DataFrame(
        [(a, lo, up, r) for a, t in tables.items() for lo, up, r in t],
        schema={
            "asset": pl.String,
            "lower_usdt": pl.Float64,
            "upper_usdt": pl.Float64,
            "collateral_ratio": pl.Float64,
        },
        orient="row",
    )
    index = pl.DataFrame({"asset": sorted(tables)}).with_row_index("asset_idx")
    return tiers.flat(rows, index, ["collateral_ratio"]), index


def engine_tiered(
    tables: dict[str, list[tuple[float, float | None, float]]], asset: str, xs: list[float]
) -> list[float]:
    """The engine's tiered sums of `xs` for `asset`: the compiled per-amount pair the kernels use
    (slice_at, tiered_at) over the flat tables."""
    slices, index = flat_tables(tables)
    lower, rate, below = slices.arrays("collateral_ratio")
    idx = index.filter(pl.col("asset") == asset)["asset_idx"].item()
    return [tiers.tiered_at(x, tiers.slice_at(x, idx, lower, slices.k_max), lower, rate, below) for x in xs]


def bits(v: float) -> bytes:
    return struct.pack("<d", v)


def check_lookup(tables, asset, xs):
    got = engine_tiered(tables, asset, xs)
    for x, g in zip(xs, got, strict=True):
        want = spec_tiered(x, tables[asset])
        # one slice: the rule's sum is the single term; with more, a +0.0 term turns -0.0 into 0.0
        assert bits(g) == bits(want) or (g == 0.0 and want == 0.0), (x, g, want, tables[asset])


def parts_of(tables, asset: str, x: float) -> list[tuple[float, float, float, float, float]]:
    slices, index = flat_tables(tables)
    idx = index.filter(pl.col("asset") == asset)["asset_idx"].item()
    keys = ["lower_usdt", "upper_usdt", "rate", "amount_usdt", "value_usdt"]
    return [tuple(p[k] for k in keys) for p in tiers.slice_parts(x, idx, slices, "collateral_ratio")]


# ------------------------------------------------------------------ the valuation of balance rows

N_KEYS = 8  # assets 0..7; 7 is USDT (a stable asset), the others move
USDT = 7
PRICES = [2.0, 0.5, 3.0, 10.0, 1e-3, 7.0, 1.5, 1.0]
COLL = [(0.0, 100.0, 1.0), (100.0, 1000.0, 0.5), (1000.0, None, 0.25)]  # every asset's collateral tiers
LIAB = [(0.0, 50.0, 0.1, 0.2), (50.0, None, 0.2, 0.5)]  # every asset's brackets (mm, im)


def _slices(table: list[tuple], rates: int) -> tuple:
    """(k_max, lower, rate..., below...) flat over the N_KEYS assets, as tiers.Slices lays it out."""
    k = len(table)
    lower = np.array([row[0] for row in table] * N_KEYS)
    out = [k, lower]
    for r in range(rates):
        rate = [row[2 + r] for row in table]
        widths = [(row[1] - row[0]) if row[1] is not None else np.inf for row in table]
        below, total = [], 0.0
        for rt, w in zip(rate, widths, strict=True):
            below.append(total)
            total = total + rt * w
        out += [np.array(rate * N_KEYS), np.array(below * N_KEYS)]
    return tuple(out)


def market(prices: list[float] | None = None, usdt: int = USDT) -> Market:
    coll = _slices(COLL, 1)
    k, lower, mm, below_mm, im, below_im = (*_slices(LIAB, 2),)
    return Market(
        np.array([prices or PRICES]),
        np.array([a != USDT for a in range(N_KEYS)]),
        np.array([COLL[0][2]] * N_KEYS),
        coll,
        (k, lower, mm, below_mm, im, below_im),
        usdt,
    )


def textbook(x: float, table: list[tuple], rate: int = 2) -> float:
    """docs/rules.md §1.2 literally: Σ rate_k · clip(x − lower_k, 0, width_k), slices ascending."""
    total = 0.0
    for row in table:
        width = (row[1] - row[0]) if row[1] is not None else np.inf
        total = total + row[rate] * min(max(x - row[0], 0.0), width)
    return total


def expected(rows: list[tuple[int, int, float, float]], prices: list[float]) -> dict[int, list[float]]:
    """Per account: [total_asset, total_liability, collateral, maintenance, initial], each row's value
    added left to right in row order from -0.0."""
    out: dict[int, list[float]] = {}
    for account, asset, holding, debt in rows:
        sums = out.setdefault(account, [-0.0] * 5)
        value, debt_value = holding * prices[asset], debt * prices[asset]
        parts = [value, debt_value, textbook(value, COLL)]
        parts += [textbook(debt_value, LIAB, 2), textbook(debt_value, LIAB, 3)] if debt_value else [0.0, 0.0]
        out[account] = [s + p for s, p in zip(sums, parts, strict=True)]
    return out


def rows_frame(rows: list[tuple[int, int, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"account_id": pl.Int64, "asset_idx": pl.UInt32, "holding": pl.Float64, "debt": pl.Float64},
        orient="row",
    )


def chunked(f: pl.DataFrame, cuts: list[int]) -> pl.DataFrame:
    """The same rows split into chunks at `cuts` (row positions)."""
    edges = [0, *sorted({c for c in cuts if 0 < c < f.height}), f.height]
    return pl.concat([f[lo:hi] for lo, hi in itertools.pairwise(edges)], rechunk=False)


def sums(f: pl.DataFrame, m: Market | None = None) -> pl.DataFrame:
    """The row pass's per-account frame of the balance rows `f`."""
    m = m or market()
    table = Rows.of(f)
    out, key_bits = rows_.balance_sums_at(table, m, m.prices)
    return rows_.per_account(table, out, key_bits, ["a", "l", "c", "mm", "im"], "n")


def bits_of(values: list[float]) -> list[bytes]:
    return [struct.pack("<d", v) for v in values]
