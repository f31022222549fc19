"""account_sums.segment_sums: per-account sums that do not depend on how the rows are chunked.

The streaming engine hands the per-row values back in chunks whose boundaries depend on its
morsels; the sums are reduced chunk by chunk (runs crossing a boundary are gathered). Each account's
sum must be the same bits as numpy's reduction of that account's rows in one contiguous array,
however the rows are split.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.account_sums import segment_sums


def _frame(ids: list[int], values: list[float], keys: list[int] | None = None) -> pl.DataFrame:
    keys = keys if keys is not None else list(range(len(ids)))
    return pl.DataFrame(
        {
            "account_id": pl.Series(ids, dtype=pl.Int64),
            "x": pl.Series(values, dtype=pl.Float64),
            "key_bit": pl.Series([1 << (k % 64) for k in keys], dtype=pl.UInt64),
        }
    )


def _chunked(frame: pl.DataFrame, cuts: list[int]) -> pl.DataFrame:
    """The same rows split into chunks at `cuts` (row positions)."""
    edges = [0, *sorted(set(c for c in cuts if 0 < c < frame.height)), frame.height]
    return pl.concat([frame[lo:hi] for lo, hi in itertools.pairwise(edges)], rechunk=False)


def _expected(frame: pl.DataFrame) -> dict[int, float]:
    """Per account: `np.add.reduceat` of its rows alone, copied into a fresh array (a loop in the test
    only). reduceat is not `np.add.reduce` (their results differ in their last bits for most runs
    longer than 8 rows) but depends only on the run's values, not on where they sit in memory."""
    out = {}
    for (acct,), rows in frame.group_by("account_id", maintain_order=True):
        out[acct] = float(np.add.reduceat(rows["x"].to_numpy().copy(), [0])[0])
    return out


def test_hand_worked_runs_across_chunks() -> None:
    # account 1: rows 0-1 (chunk 0); account 2: rows 2-6, crossing chunks 0, 1 and 2; account 3: row 7
    frame = _frame([1, 1, 2, 2, 2, 2, 2, 3], [1.0, 2.0, 10.0, 20.0, 30.0, 40.0, 50.0, 0.5])
    got = segment_sums(_chunked(frame, [3, 5]), ["x"], "n")
    assert got.n_chunks() == 1
    assert got["account_id"].to_list() == [1, 2, 3]
    assert got["x"].to_list() == [3.0, 150.0, 0.5]
    assert got["n"].to_list() == [2, 5, 1]
    assert got["maybe_repeat"].to_list() == [False, False, False]


def test_chunk_boundary_exactly_between_accounts() -> None:
    frame = _frame([1, 1, 2, 2], [1.0, 2.0, 3.0, 4.0])
    for cuts in ([], [1], [2], [3], [1, 2, 3]):
        got = segment_sums(_chunked(frame, cuts), ["x"], "n")
        assert got["x"].to_list() == [3.0, 7.0], cuts
        assert got["n"].to_list() == [2, 2], cuts


def test_repeated_key_is_flagged_across_a_chunk_boundary() -> None:
    frame = _frame([7, 7, 7, 8], [1.0, 1.0, 1.0, 1.0], keys=[3, 5, 3, 3])
    got = segment_sums(_chunked(frame, [2]), ["x"], "n")
    assert got["maybe_repeat"].to_list() == [True, False]


def test_unsorted_rows_and_null_account_ids() -> None:
    frame = _frame([2, 1, 2, 1], [1.0, 2.0, 3.0, 4.0]).vstack(
        pl.DataFrame({"account_id": [None], "x": [100.0], "key_bit": [1]}, schema=_frame([1], [1.0]).schema)
    )
    got = segment_sums(frame, ["x"], "n")
    assert got.to_dict(as_series=False) == {
        "account_id": [1, 2],
        "x": [6.0, 4.0],
        "n": [2, 2],
        "maybe_repeat": [False, False],
    }


def test_no_rows() -> None:
    got = segment_sums(_frame([], []), ["x"], "n")
    assert got.height == 0
    assert got.schema == {"account_id": pl.Int64, "x": pl.Float64, "n": pl.Int64, "maybe_repeat": pl.Boolean}


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=30),
    seed=st.integers(0, 2**32 - 1),
    n_cuts=st.integers(0, 60),
)
def test_sums_do_not_depend_on_chunking(counts: list[int], seed: int, n_cuts: int) -> None:
    """Bit-identical to one contiguous reduction per account, for any split into chunks (runs longer
    than 8 rows are where a different grouping of the additions would show in the last bits)."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(len(counts)) * 3 + 1, counts)
    values = rng.standard_normal(ids.size) * 10.0 ** rng.integers(-8, 12, ids.size)
    frame = _frame(ids.tolist(), values.tolist())
    cuts = rng.integers(1, max(2, ids.size), n_cuts).tolist()
    got = segment_sums(_chunked(frame, cuts), ["x"], "n")
    want = _expected(frame)
    assert got["account_id"].to_list() == list(want)
    assert got["x"].to_list() == list(want.values())
    assert got["n"].to_list() == counts


@pytest.mark.parametrize("size", [1, 2, 7, 8, 9, 130, 300])
def test_one_long_run_split_everywhere(size: int) -> None:
    """One account whose rows cross every chunk boundary: still one contiguous reduction."""
    values = np.random.default_rng(size).standard_normal(size) * 1e6
    frame = _frame([5] * size, values.tolist())
    want = float(np.add.reduceat(values, [0])[0])
    for step in (1, 2, 3, 7, 64):
        got = segment_sums(_chunked(frame, list(range(step, size, step))), ["x"], "n")
        assert got["x"].to_list() == [want], step
