"""account_sums: per-account sums that do not depend on how the rows are chunked.

The streaming engine hands the rows over in chunks whose boundaries depend on its morsels; the
kernels reduce them chunk by chunk (runs crossing a boundary are gathered). Each account's sum must
be the same bits as numpy's reduction of that account's rows in one contiguous array, however the
rows are split. The first tests drive the balance kernel with price 1 and no tiers, so an account's
total asset value is the plain sum of its `x` (x · 1.0 = x exactly).
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin import account_sums, quantities
from crossmargin.reference_data import AssetTerms
from crossmargin.tiers import Slices

N_KEYS = 200  # assets (the row key of a balance); price 1, one slice at rate 0


def _terms() -> AssetTerms:
    zeros = pl.Series([0.0] * N_KEYS)
    frame = pl.DataFrame({"asset": [f"A{i:03d}" for i in range(N_KEYS)], "first_collateral_ratio": zeros})
    collateral = Slices(1, zeros, {"collateral_ratio": zeros}, {"collateral_ratio": zeros})
    rates = {"maintenance_margin_rate": zeros, "initial_margin_rate": zeros}
    return AssetTerms(frame, collateral, Slices(1, zeros, rates, rates))


def sums_of_x(rows: pl.DataFrame, _columns: list[str], count_name: str) -> pl.DataFrame:
    """account_id, x (the sum of the rows' x), `count_name`, maybe_repeat: the row pass's frame."""
    balances = rows.select(
        "account_id",
        pl.col("key").cast(pl.UInt32).alias("asset_idx"),
        pl.col("x").alias("holding"),
        pl.lit(0.0).alias("debt"),
    )
    prices = np.ones((1, N_KEYS))
    got = account_sums.balance_sums(balances, _terms(), pl.Series([False] * N_KEYS), prices)
    names = ["x", *[f"_{i}" for i in range(6)]]  # total asset value first
    return account_sums.account_frame(*got, names, count_name).select(
        "account_id", "x", count_name, "maybe_repeat"
    )


def _frame(ids: list[int], values: list[float], keys: list[int] | None = None) -> pl.DataFrame:
    keys = keys if keys is not None else list(range(len(ids)))
    return pl.DataFrame(
        {
            "account_id": pl.Series(ids, dtype=pl.Int64),
            "x": pl.Series(values, dtype=pl.Float64),
            "key": pl.Series([k % N_KEYS for k in keys], dtype=pl.Int64),
        }
    )


def _chunked(frame: pl.DataFrame, cuts: list[int]) -> pl.DataFrame:
    """The same rows split into chunks at `cuts` (row positions)."""
    edges = [0, *sorted(set(c for c in cuts if 0 < c < frame.height)), frame.height]
    return pl.concat([frame[lo:hi] for lo, hi in itertools.pairwise(edges)], rechunk=False)


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
    runs = account_sums.Runs.of(_chunked(pl.DataFrame({"account_id": ids}), cuts)["account_id"])
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    assert runs.starts.tolist() == starts.tolist()
    assert runs.ends.tolist() == [*starts[1:].tolist(), ids.size]
    assert runs.ids.tolist() == ids[starts].tolist()


def test_runs_of_hand_worked() -> None:
    """Chunks [1 1 2] [2 2 3] [3] [5]: run 1 is rows 0-1, run 2 rows 2-4 (across the first boundary),
    run 3 rows 5-6 (across the second), run 5 row 7."""
    column = pl.concat([pl.Series("account_id", c) for c in ([1, 1, 2], [2, 2, 3], [3], [5])], rechunk=False)
    runs = account_sums.Runs.of(column)
    assert (runs.starts.tolist(), runs.ends.tolist(), runs.ids.tolist()) == (
        [0, 2, 5, 7],
        [2, 5, 7, 8],
        [1, 2, 3, 5],
    )


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
    got = sums_of_x(_chunked(frame, [3, 5]), ["x"], "n")
    assert got.n_chunks() == 1
    assert got["account_id"].to_list() == [1, 2, 3]
    assert got["x"].to_list() == [3.0, 150.0, 0.5]
    assert got["n"].to_list() == [2, 5, 1]
    assert got["maybe_repeat"].to_list() == [False, False, False]


def test_chunk_boundary_exactly_between_accounts() -> None:
    frame = _frame([1, 1, 2, 2], [1.0, 2.0, 3.0, 4.0])
    for cuts in ([], [1], [2], [3], [1, 2, 3]):
        got = sums_of_x(_chunked(frame, cuts), ["x"], "n")
        assert got["x"].to_list() == [3.0, 7.0], cuts
        assert got["n"].to_list() == [2, 2], cuts


def test_repeated_key_is_flagged_across_a_chunk_boundary() -> None:
    frame = _frame([7, 7, 7, 8], [1.0, 1.0, 1.0, 1.0], keys=[3, 5, 3, 3])
    got = sums_of_x(_chunked(frame, [2]), ["x"], "n")
    assert got["maybe_repeat"].to_list() == [True, False]


def test_unsorted_rows_and_null_account_ids() -> None:
    frame = _frame([2, 1, 2, 1], [1.0, 2.0, 3.0, 4.0]).vstack(
        pl.DataFrame({"account_id": [None], "x": [100.0], "key": [1]}, schema=_frame([1], [1.0]).schema)
    )
    got = sums_of_x(frame, ["x"], "n")
    assert got.to_dict(as_series=False) == {
        "account_id": [1, 2],
        "x": [6.0, 4.0],
        "n": [2, 2],
        "maybe_repeat": [False, False],
    }


def test_no_rows() -> None:
    got = sums_of_x(_frame([], []), ["x"], "n")
    assert got.height == 0
    assert got.schema == {"account_id": pl.Int64, "x": pl.Float64, "n": pl.Int64, "maybe_repeat": pl.Boolean}


def test_sums_placed_at_the_accounts_asked_for() -> None:
    """With `accounts`, each run's sums land at its account's place among them, across chunks: an
    account without rows gets 0, and the rows of an account not asked for (2) are left out."""
    frame = _frame([1, 1, 2, 4, 4, 4], [1.0, 2.0, 50.0, 10.0, 20.0, 30.0])
    balances = _chunked(frame, [1, 4]).select(
        "account_id",
        pl.col("key").cast(pl.UInt32).alias("asset_idx"),
        pl.col("x").alias("holding"),
        pl.lit(0.0).alias("debt"),
    )
    prices = np.array([np.ones(N_KEYS), np.full(N_KEYS, 2.0)])
    stable = pl.Series([False] * N_KEYS)
    accounts = np.array([0, 1, 3, 4])
    _, out, bits = account_sums.balance_sums(balances, _terms(), stable, prices, n_sums=1, accounts=accounts)
    assert out.shape == (1, 4, 2)
    assert out[0].tolist() == [[0.0, 0.0], [3.0, 6.0], [0.0, 0.0], [60.0, 120.0]]
    assert bits.tolist() == [0, 0b11, 0, 0b111000]
    _, none, _ = account_sums.balance_sums(balances[:0], _terms(), stable, prices, accounts=accounts)
    assert none.shape == (7, 4, 2)
    assert not none.any()


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
    got = sums_of_x(_chunked(frame, cuts), ["x"], "n")
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
        got = sums_of_x(_chunked(frame, list(range(step, size, step))), ["x"], "n")
        assert got["x"].to_list() == [want], step


# ------------------------------------------------------------------ the compiled summation and kernels


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 700), seed=st.integers(0, 2**32 - 1))
def test_run_sum_is_numpy_reduceat_bit_for_bit(n: int, seed: int) -> None:
    """run_sum (the kernels' summation) adds a run exactly as numpy.add.reduceat does: up to 8 values
    left to right, eight accumulators up to 128, halves beyond (lengths up to 700 reach three levels)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 12, n)
    want = float(np.add.reduceat(values, [0])[0])
    assert account_sums.run_sum(values.copy(), n) == want


def test_run_sum_long_run_and_signed_zero() -> None:
    values = np.random.default_rng(0).standard_normal(100_000) * 1e6
    assert account_sums.run_sum(values.copy(), values.size) == float(np.add.reduceat(values, [0])[0])
    zeros = np.array([-0.0, -0.0, -0.0])
    assert np.signbit(account_sums.run_sum(zeros.copy(), 3)) == np.signbit(np.add.reduceat(zeros, [0])[0])


def test_run_sum_counts_nan_as_zero_and_keeps_inf() -> None:
    assert account_sums.run_sum(np.array([np.nan, 2.0, np.nan]), 3) == 2.0
    assert account_sums.run_sum(np.array([1.0, np.inf]), 2) == np.inf


# two assets (index 0 and 1; index 2 is "no price or table"), collateral tiers of up to 3 slices
_C_LOWER = np.array([0.0, 100.0, 1000.0, 0.0, 50.0, np.inf])
_C_RATE = np.array([1.0, 0.5, 0.25, 0.9, 0.8, 0.0])
_L_LOWER = np.array([0.0, 500.0, np.inf, 0.0, np.inf, np.inf])
_L_MM = np.array([0.1, 0.2, 0.0, 0.05, 0.0, 0.0])
_L_IM = np.array([0.2, 0.3, 0.0, 0.1, 0.0, 0.0])


def _below(lower: np.ndarray, rate: np.ndarray, k: int) -> np.ndarray:
    """below_k per asset: the full slices under slice k, added in ascending order."""
    below = np.zeros_like(lower)
    for a in range(lower.size // k):
        for j in range(1, k):
            i = a * k + j
            if not np.isfinite(lower[i]):  # a padded slice (lower = inf) is never reached
                break
            below[i] = below[i - 1] + rate[i - 1] * (lower[i] - lower[i - 1])
    return below


def _balance_params(prices: np.ndarray) -> tuple:
    coll = (3, _C_LOWER, _C_RATE, _below(_C_LOWER, _C_RATE, 3))
    liab = (3, _L_LOWER, _L_MM, _below(_L_LOWER, _L_MM, 3), _L_IM, _below(_L_LOWER, _L_IM, 3))
    return prices, np.array([False, True]), coll, liab


def _row_values_numpy(asset: np.ndarray, q: list[np.ndarray], price: np.ndarray) -> np.ndarray:
    """The seven per-row values with vectorized numpy (independent of the kernel's code path)."""
    known = asset < 2
    a = np.where(known, asset, 0)
    p = np.where(known, price[a], np.nan)
    av, dv = (q[0] + q[1]) * p, (q[2] + q[3]) * p

    def tiered(x: np.ndarray, lower: np.ndarray, rate: np.ndarray) -> np.ndarray:
        below = _below(lower, rate, 3)
        k = (x >= lower[a * 3 + 1]).astype(int) + (x >= lower[a * 3 + 2]).astype(int)
        at = a * 3 + k
        return below[at] + rate[at] * (x - lower[at])

    stable = np.array([False, True])[a]
    out = np.stack(
        [
            av,
            dv,
            tiered(av, _C_LOWER, _C_RATE),
            tiered(dv, _L_LOWER, _L_MM),
            tiered(dv, _L_LOWER, _L_IM),
            np.where(stable, av, 0.0),
            np.where(stable, dv, 0.0),
        ]
    )
    out[:, ~known] = np.nan
    return np.nan_to_num(out, nan=0.0, posinf=np.inf, neginf=-np.inf)


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(st.integers(1, 20), min_size=1, max_size=25),
    seed=st.integers(0, 2**32 - 1),
    n_cuts=st.integers(0, 30),
)
def test_balance_kernel_is_row_values_then_reduceat(counts: list[int], seed: int, n_cuts: int) -> None:
    """The fused kernel = every row valued (vectorized numpy here), then each account's run reduced by
    numpy.add.reduceat: bit for bit, for any chunking, at two price vectors in one call; amounts land
    exactly on tier bounds too."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(len(counts)) * 2 + 1, counts)
    n = ids.size
    asset = rng.integers(0, 3, n).astype(np.uint32)
    q = [
        rng.choice([0.0, 1.0, 2.5, 50.0, 100.0, 1234.5], n) * rng.choice([1.0, rng.random()], n)
        for _ in range(4)
    ]
    prices = np.array([[1.0, 2.0], [0.7, 2.0]])
    rows = pl.DataFrame(
        {
            "account_id": ids,
            "asset_idx": asset,
            **{c: v for c, v in zip(["free", "locked", "borrowed", "interest"], q, strict=True)},
        }
    ).select(  # as the row pass hands them over (account_sums.balance_inputs)
        "account_id", "asset_idx", quantities.holding().alias("holding"), quantities.debt().alias("debt")
    )
    cuts = rng.integers(1, max(2, n), n_cuts).tolist()
    runs = account_sums.Runs.of(_chunked(rows, cuts)["account_id"])
    params = _balance_params(prices)
    out, bits = runs.apply(
        account_sums._balance_kernel,
        _chunked(rows, cuts),
        account_sums.BALANCE_COLUMNS[1:],
        (7, runs.starts.size, 2),
        *params,
    )
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    for p in range(2):
        want = np.add.reduceat(_row_values_numpy(asset, q, prices[p]), starts, axis=1)
        assert out[:, :, p].tobytes() == want.tobytes(), p
    assert bits.tolist() == [
        int(np.bitwise_or.reduce(np.uint64(1) << asset[s:e].astype(np.uint64)))
        for s, e in zip(starts, np.r_[starts[1:], n], strict=True)
    ]


def test_order_kernel_hand_worked() -> None:
    """BUY 2 @ 30 of asset 0 (index 60, ratio 0.5) for asset 1 (price 1, ratio 1): gives the quote leg
    2·30·1·1 = 60, receives the base leg 2·60·0.5 = 60 -> loss 0; SELL gives 60, receives 60 -> 0; at
    a base price of 40: BUY gives 60, receives 40 -> 20; SELL gives 40 < 60 -> 0. An order on an asset
    no price names adds 0."""
    rows = pl.DataFrame(
        {
            "account_id": [1, 1, 2],
            "order_id": [10, 11, 12],
            "asset_idx_base": pl.Series([0, 0, 2], dtype=pl.UInt32),
            "asset_idx_quote": pl.Series([1, 1, 1], dtype=pl.UInt32),
            "is_buy": [True, False, True],
            "remaining_qty": [2.0, 2.0, 5.0],
            "price": [30.0, 30.0, 1.0],
        }
    )
    runs = account_sums.Runs.of(rows["account_id"])
    prices = np.array([[60.0, 1.0], [40.0, 1.0]])
    out, bits = runs.apply(
        account_sums._order_kernel,
        rows,
        ["order_id", "asset_idx_base", "asset_idx_quote", "is_buy", "remaining_qty", "price"],
        (1, runs.starts.size, 2),
        prices,
        np.array([0.5, 1.0]),
    )
    assert out[0, :, 0].tolist() == [0.0, 0.0]
    assert out[0, :, 1].tolist() == [20.0, 0.0]
    assert bits.tolist() == [(1 << 10) | (1 << 11), 1 << 12]


def test_kernels_cache_where_the_user_can_write() -> None:
    """Compiled kernels are cached under compiled.cache_dir() (~/.cache/crossmargin/numba, or
    $XDG_CACHE_HOME/crossmargin/numba) unless NUMBA_CACHE_DIR says otherwise, whatever imported numba
    first."""
    import os
    from pathlib import Path

    from crossmargin import compiled, distances

    want = Path(os.environ.get("NUMBA_CACHE_DIR") or compiled.cache_dir())
    for kernel in (account_sums._balance_kernel, account_sums._order_kernel, distances._pro_kernel):
        assert Path(kernel._cache._cache_path).is_relative_to(want)


def test_kernel_bits_do_not_depend_on_the_thread_count() -> None:
    import numba

    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(5000), rng.integers(1, 40, 5000))
    frame = _frame(ids.tolist(), (rng.standard_normal(ids.size) * 1e9).tolist(), keys=ids.tolist())
    before = numba.get_num_threads()
    try:
        got = []
        for threads in (1, before):
            numba.set_num_threads(threads)
            got.append(sums_of_x(_chunked(frame, [1000, 77_000]), ["x"], "n")["x"].to_numpy().tobytes())
    finally:
        numba.set_num_threads(before)
    assert got[0] == got[1]
