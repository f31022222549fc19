"""The engine's tier lookup (rules/tiers.py) against the docs/rules.md §1 sum, to the last bit.

The engine evaluates `tiered(x)` as `below_k + rate_k · (x − lower_k)` for the slice k holding x;
The rule writes `Σ_k rate_k · clip(x − lower_k, 0, upper_k − lower_k)`. They add the same terms in the
same order, so they must agree bit for bit — including exactly at every slice boundary, past the
last bound, at 0, and for assets with fewer slices than the widest table. Here for any table and any
amount (hypothesis); worked by hand in tests/unit/test_tiers.py.
"""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.rules import tiers
from support.kernels import bits, check_lookup, flat_tables, parts_of, spec_tiered

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
    check_lookup(tables, asset, xs)


@settings(max_examples=100, deadline=None)
@given(
    tables=st.dictionaries(st.sampled_from(["ADA", "BTC", "ETH", "USDT"]), table(), min_size=1, max_size=4)
)
def test_zero_debt_skips_the_lookup_with_the_same_bits(tables) -> None:
    """quantities.debt_margins_usdt returns (0.0, 0.0) for a debt of exactly 0 without a lookup: the
    lookup of 0 (and of -0.0) gives those very bits in every table (each starts at 0)."""
    from crossmargin.rules.quantities import debt_margins_usdt

    slices, index = flat_tables(tables)
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
    parts = parts_of(tables, asset, x)
    assert len(parts) == max(1, sum(lo < x for lo in edges))  # every slice that starts below x
    assert parts[0][0] == 0.0 and all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert parts[-1][0] <= x <= parts[-1][1]
    for lower, upper, rate, amount, value in parts:
        assert amount == min(x, upper) - lower and value == rate * amount
    assert math.isclose(sum(p[4] for p in parts), spec_tiered(x, tables[asset]), rel_tol=1e-9, abs_tol=1e-9)
