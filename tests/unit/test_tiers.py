"""The engine's tier lookup (rules/tiers.py) against the docs/rules.md §1 sum, to the last bit.

The engine evaluates `tiered(x)` as `below_k + rate_k · (x − lower_k)` for the slice k holding x;
The rule writes `Σ_k rate_k · clip(x − lower_k, 0, upper_k − lower_k)`. They add the same terms in the
same order, so they must agree bit for bit — including exactly at every slice boundary, past the
last bound, at 0, and for assets with fewer slices than the widest table.
"""

from __future__ import annotations

import itertools
import math
import struct

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.rules import tiers


def spec_tiered(x: float, table: list[tuple[float, float | None, float]]) -> float:
    """docs/rules.md §1 literally: the sum over slices in ascending order, left to right."""
    total = None
    for lower, upper, rate in table:
        width = (upper - lower) if upper is not None else float("inf")
        term = rate * min(max(x - lower, 0.0), width)
        total = term if total is None else total + term
    return total


def _flat(tables: dict[str, list[tuple[float, float | None, float]]]) -> tuple[tiers.Slices, pl.DataFrame]:
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
    slices, index = _flat(tables)
    lower, rate, below = slices.arrays("collateral_ratio")
    idx = index.filter(pl.col("asset") == asset)["asset_idx"].item()
    return [tiers.tiered_at(x, tiers.slice_at(x, idx, lower, slices.k_max), lower, rate, below) for x in xs]


def bits(v: float) -> bytes:
    return struct.pack("<d", v)


def check(tables, asset, xs):
    got = engine_tiered(tables, asset, xs)
    for x, g in zip(xs, got, strict=True):
        want = spec_tiered(x, tables[asset])
        # one slice: the rule's sum is the single term; with more, a +0.0 term turns -0.0 into 0.0
        assert bits(g) == bits(want) or (g == 0.0 and want == 0.0), (x, g, want, tables[asset])


# ------------------------------------------------------------------ worked by hand

EXAMPLE_BRACKETS = [(0.0, 100.0, 1.0), (100.0, 500.0, 0.5), (500.0, None, 0.25)]


def test_hand_worked_values() -> None:
    got = engine_tiered({"BTC": EXAMPLE_BRACKETS}, "BTC", [0.0, 50.0, 100.0, 600.0, 5000.0])
    # 100·1 = 100; + 400·0.5 = 300; + 100·0.25 = 325; 5000: 300 + 4500·0.25 = 1425
    assert got == [0.0, 50.0, 100.0, 325.0, 1425.0]


def test_boundaries_exactly_at_just_below_just_above() -> None:
    import math

    xs = []
    for b in (100.0, 500.0):
        xs += [b, math.nextafter(b, 0.0), math.nextafter(b, math.inf)]
    check({"BTC": EXAMPLE_BRACKETS}, "BTC", xs)


def test_asset_with_fewer_slices_than_the_widest_table() -> None:
    tables = {"BTC": EXAMPLE_BRACKETS, "USDT": [(0.0, None, 0.95)]}
    assert engine_tiered(tables, "USDT", [0.0, 1e6, 1e300]) == [0.0, 0.95e6, 0.95e300]
    check(tables, "USDT", [0.0, 1e6, 1e300])


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


# ------------------------------------------------------------------ property: any table, any amount

rates = st.floats(0.0, 1.0, allow_nan=False)
bounds = st.lists(
    st.floats(1e-6, 1e12, allow_nan=False, allow_infinity=False), min_size=0, max_size=6, unique=True
)


@st.composite
def table(draw) -> list[tuple[float, float | None, float]]:
    cuts = sorted(draw(bounds))
    lowers = [0.0, *cuts]
    uppers: list[float | None] = [*cuts, None]
    return [(lo, up, draw(rates)) for lo, up in zip(lowers, uppers, strict=True)]


@settings(max_examples=300, deadline=None)
@given(
    tables=st.dictionaries(st.sampled_from(["ADA", "BTC", "ETH", "USDT"]), table(), min_size=1, max_size=4),
    data=st.data(),
)
def test_lookup_is_the_spec_sum_bit_for_bit(tables, data) -> None:
    asset = data.draw(st.sampled_from(sorted(tables)))
    edges = [lo for lo, _, _ in tables[asset]]
    xs = data.draw(
        st.lists(
            st.one_of(st.sampled_from(edges), st.floats(0.0, 1e13, allow_nan=False, allow_infinity=False)),
            min_size=1,
            max_size=20,
        )
    )
    check(tables, asset, xs)


@settings(max_examples=100, deadline=None)
@given(
    tables=st.dictionaries(st.sampled_from(["ADA", "BTC", "ETH", "USDT"]), table(), min_size=1, max_size=4)
)
def test_zero_debt_skips_the_lookup_with_the_same_bits(tables) -> None:
    """quantities.debt_margins_usdt returns (0.0, 0.0) for a debt of exactly 0 without a lookup: the
    lookup of 0 (and of -0.0) gives those very bits in every table (each starts at 0)."""
    from crossmargin.rules.quantities import debt_margins_usdt

    slices, index = _flat(tables)
    lower, rate, below = slices.arrays("collateral_ratio")
    liab = (slices.k_max, lower, rate, below, rate, below)
    for idx in range(index.height):
        for zero in (0.0, -0.0):
            looked_up = tiers.tiered_at(
                zero, tiers.slice_at(zero, idx, lower, slices.k_max), lower, rate, below
            )
            assert bits(looked_up) == bits(0.0)
            assert [bits(m) for m in debt_margins_usdt(zero, idx, liab)] == [bits(0.0), bits(0.0)]


# ------------------------------------------------------------------ the slices an amount uses (explain)


def _parts(tables, asset: str, x: float) -> list[tuple[float, float, float, float, float]]:
    slices, index = _flat(tables)
    idx = index.filter(pl.col("asset") == asset)["asset_idx"].item()
    keys = ["lower_usdt", "upper_usdt", "rate", "amount_usdt", "value_usdt"]
    return [tuple(p[k] for k in keys) for p in tiers.slice_parts(x, idx, slices, "collateral_ratio")]


def test_slice_parts_worked_by_hand() -> None:
    tables = {"BTC": EXAMPLE_BRACKETS, "USDT": [(0.0, None, 0.95)]}
    inf = float("inf")
    assert _parts(tables, "BTC", 600.0) == [
        (0.0, 100.0, 1.0, 100.0, 100.0),
        (100.0, 500.0, 0.5, 400.0, 200.0),
        (500.0, inf, 0.25, 100.0, 25.0),
    ]
    assert _parts(tables, "BTC", 100.0) == [(0.0, 100.0, 1.0, 100.0, 100.0)]  # a bound starts no slice
    assert _parts(tables, "BTC", 0.0) == [(0.0, 100.0, 1.0, 0.0, 0.0)]
    assert _parts(tables, "USDT", 1e6) == [(0.0, inf, 0.95, 1e6, 0.95e6)]  # padded slices are not used


@settings(max_examples=200, deadline=None)
@given(
    tables=st.dictionaries(st.sampled_from(["ADA", "BTC", "ETH", "USDT"]), table(), min_size=1, max_size=4),
    data=st.data(),
)
def test_slice_parts_cover_the_amount_and_add_up_to_the_tiered_value(tables, data) -> None:
    asset = data.draw(st.sampled_from(sorted(tables)))
    edges = [lo for lo, _, _ in tables[asset]]
    x = data.draw(
        st.one_of(st.sampled_from(edges), st.floats(1e-3, 1e13, allow_nan=False, allow_infinity=False))
    )
    parts = _parts(tables, asset, x)
    assert len(parts) == max(1, sum(lo < x for lo in edges))  # every slice that starts below x
    assert parts[0][0] == 0.0 and all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert parts[-1][0] <= x <= parts[-1][1]
    for lower, upper, rate, amount, value in parts:
        assert amount == min(x, upper) - lower and value == rate * amount
    assert math.isclose(sum(p[4] for p in parts), spec_tiered(x, tables[asset]), rel_tol=1e-9, abs_tol=1e-9)
