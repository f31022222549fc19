"""The engine's tier lookup (rules/tiers.py) against the docs/rules.md §1 sum, to the last bit.

The engine evaluates `tiered(x)` as `below_k + rate_k · (x − lower_k)` for the slice k holding x;
The rule writes `Σ_k rate_k · clip(x − lower_k, 0, upper_k − lower_k)`. They add the same terms in the
same order, so they must agree bit for bit — including exactly at every slice boundary, past the
last bound, at 0, and for assets with fewer slices than the widest table. Worked by hand here; any
table and any amount in tests/property/test_tiers.py.
"""

from __future__ import annotations

import math

import polars as pl

from crossmargin.rules import tiers
from support.kernels import check_lookup, engine_tiered, parts_of

# ------------------------------------------------------------------ worked by hand

EXAMPLE_BRACKETS = [(0.0, 100.0, 1.0), (100.0, 500.0, 0.5), (500.0, None, 0.25)]


def test_hand_worked_values() -> None:
    got = engine_tiered({"BTC": EXAMPLE_BRACKETS}, "BTC", [0.0, 50.0, 100.0, 600.0, 5000.0])
    # 100·1 = 100; + 400·0.5 = 300; + 100·0.25 = 325; 5000: 300 + 4500·0.25 = 1425
    assert got == [0.0, 50.0, 100.0, 325.0, 1425.0]


def test_boundaries_exactly_at_just_below_just_above() -> None:
    xs = []
    for b in (100.0, 500.0):
        xs += [b, math.nextafter(b, 0.0), math.nextafter(b, math.inf)]
    check_lookup({"BTC": EXAMPLE_BRACKETS}, "BTC", xs)


def test_asset_with_fewer_slices_than_the_widest_table() -> None:
    tables = {"BTC": EXAMPLE_BRACKETS, "USDT": [(0.0, None, 0.95)]}
    assert engine_tiered(tables, "USDT", [0.0, 1e6, 1e300]) == [0.0, 0.95e6, 0.95e300]
    check_lookup(tables, "USDT", [0.0, 1e6, 1e300])


def test_asset_without_a_table_gives_zero() -> None:
    index = pl.DataFrame({"asset": ["BTC", "LUNA"]}).with_row_index("asset_idx")
    rows = pl.DataFrame(
        {"asset": ["BTC"], "lower_usdt": [0.0], "upper_usdt": [None], "collateral_ratio": [0.9]},
        schema={
            "asset": pl.String,
            "lower_usdt": pl.Float64,
            "upper_usdt": pl.Float64,
            "collateral_ratio": pl.Float64,
        },
    )
    s = tiers.flat(rows, index, ["collateral_ratio"])
    lower, rate, below = s.arrays("collateral_ratio")
    got = [tiers.tiered_at(5.0, tiers.slice_at(5.0, a, lower, s.k_max), lower, rate, below) for a in (0, 1)]
    assert got == [4.5, 0.0]


# ------------------------------------------------------------------ the slices an amount uses (explain)


def test_slice_parts_worked_by_hand() -> None:
    tables = {"BTC": EXAMPLE_BRACKETS, "USDT": [(0.0, None, 0.95)]}
    inf = float("inf")
    assert parts_of(tables, "BTC", 600.0) == [
        (0.0, 100.0, 1.0, 100.0, 100.0),
        (100.0, 500.0, 0.5, 400.0, 200.0),
        (500.0, inf, 0.25, 100.0, 25.0),
    ]
    assert parts_of(tables, "BTC", 100.0) == [(0.0, 100.0, 1.0, 100.0, 100.0)]  # a bound starts no slice
    assert parts_of(tables, "BTC", 0.0) == [(0.0, 100.0, 1.0, 0.0, 0.0)]
    assert parts_of(tables, "USDT", 1e6) == [(0.0, inf, 0.95, 1e6, 0.95e6)]  # padded slices are not used
