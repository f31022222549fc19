"""The one valuation (kernels/valuation.py) and the runs it is applied over (kernels/runs.py).

The streaming engine hands the rows over in chunks whose boundaries depend on its morsels; the kernels
value them chunk by chunk (runs crossing a boundary are gathered) on several threads. Each account's
sums must be its rows' values added left to right in input order, the same bits however the rows are
split and whatever the thread count: here for random rows and chunks. The expected values are
computed row by row in plain Python (support/kernels.py: expected): the textbook tiered sum of
docs/rules.md §1.2 and a left-to-right addition.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.kernels.runs import Runs
from support.kernels import N_KEYS, PRICES, bits_of, chunked, expected, rows_frame, sums

# ------------------------------------------------------------------ runs


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 5), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 150), max_size=12),
)
def test_runs_of_a_chunked_column(lengths: list[int], cuts: list[int]) -> None:
    """Runs.of gives each run of equal ids its first row, one past its last and its id, whatever the
    chunks: a run may cross chunk boundaries or fill whole chunks (checked against numpy on the
    column in one piece)."""
    ids = np.repeat(np.arange(len(lengths), dtype=np.int64) * 3 - 7, lengths)
    runs = Runs.of(chunked(pl.DataFrame({"account_id": ids}), cuts)["account_id"])
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    assert runs.starts.tolist() == starts.tolist()
    assert runs.ends.tolist() == [*starts[1:].tolist(), ids.size]
    assert runs.ids.tolist() == ids[starts].tolist()


# ------------------------------------------------------------------ the sums


@st.composite
def books(draw):
    counts = draw(st.lists(st.integers(1, 20), min_size=1, max_size=25))
    rows = []
    for account, n in enumerate(counts):
        for _ in range(n):
            asset = draw(st.integers(0, N_KEYS - 1))
            amount = st.one_of(st.just(0.0), st.floats(0.0, 1e4, allow_subnormal=False))
            rows.append((account * 3 + 1, asset, draw(amount), draw(amount)))
    return rows, draw(st.lists(st.integers(1, max(1, len(rows))), max_size=8))


@settings(max_examples=150, deadline=None)
@given(books())
def test_sums_are_row_values_added_in_order_whatever_the_chunks(book) -> None:
    """Every sum of every account: its rows' values (the textbook tiered sums) added left to right,
    the same bits for any split into chunks."""
    rows, cuts = book
    want = expected(rows, PRICES)
    got = sums(chunked(rows_frame(rows), cuts))
    assert got["account_id"].to_list() == list(want)
    for k, name in enumerate(["a", "l", "c", "mm", "im"]):
        assert bits_of(got[name].to_list()) == bits_of([w[k] for w in want.values()]), name
