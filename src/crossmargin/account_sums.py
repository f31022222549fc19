"""Per-account sums that are the same to the last bit on every run: one compiled pass over the rows.

The row pass hands over the input rows (balances, open orders) with their asset indices, in account
order — a stable sort if the input is not, as exports already are — and in the chunks the streaming
engine returned them in. A compiled kernel (numba, compiled.py) walks each account's contiguous run
of rows once: it values every row (the per-row quantities of quantities.py, for one price vector or
one per scenario), and reduces each value over the run, and ORs the rows' key bits. Nothing per row
is materialised.

The sums: a run's values are added exactly as `numpy.add.reduceat` adds them (`run_sum`: the first
value plus numpy's pairwise sum of the rest — eight accumulators in blocks of up to 128, halves
beyond), so the kernel gives the bits of the vectorized reduction it replaced; a run's result
depends only on its values in input order, never on threads, chunks or buckets. The scalar
reference in tests/ sums left to right and agrees within 1e-9 relative; tests/test_account_sums.py
checks `run_sum` against numpy bit for bit.

Chunks: a run inside one chunk is reduced in place (a zero-copy view of the chunk); the few runs that
cross a chunk boundary are gathered into one small contiguous frame and reduced there (`Runs`).
Threads: each kernel call splits its runs into contiguous blocks over the cores (`prange`); an
account's rows are always reduced by one thread, in order.

Repeated keys: each row sets bit `key % 64` of a 64-bit set per account (balances: the asset index;
orders: the order_id); fewer set bits than rows flags a *candidate* (a repeat or a collision of two
keys on one bit), and only the candidates are then checked exactly (validation/groups.py).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import polars as pl

from crossmargin import quantities
from crossmargin.compiled import njit, prange
from crossmargin.reference_data import BASE, QUOTE, AssetTerms

ACCOUNT = "account_id"


# ------------------------------------------------------------------ numpy's float sum, compiled


@njit()
def _pairwise_leaf(v: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise sum of at most 128 values v[lo:lo+n]: left to right from -0.0 below 8 values,
    else eight running accumulators combined as a tree, then the rest one by one."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += v[i]
        return res
    r0, r1, r2, r3 = v[lo], v[lo + 1], v[lo + 2], v[lo + 3]
    r4, r5, r6, r7 = v[lo + 4], v[lo + 5], v[lo + 6], v[lo + 7]
    i = 8
    while i < n - n % 8:
        r0 += v[lo + i]
        r1 += v[lo + i + 1]
        r2 += v[lo + i + 2]
        r3 += v[lo + i + 3]
        r4 += v[lo + i + 4]
        r5 += v[lo + i + 5]
        r6 += v[lo + i + 6]
        r7 += v[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += v[lo + i]
        i += 1
    return res


@njit()
def _left_half(n: int) -> int:
    half = n // 2
    return half - half % 8


@njit()
def pairwise_sum(v: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise sum of v[lo:lo+n] (numpy/_core/src/umath/loops_utils.h.src): up to 128 values
    `_pairwise_leaf`; beyond, the sum of the two halves (cut at a multiple of 8), each summed so.

    numpy recurses; this walks the same tree with an explicit stack (a cached numba function must not
    call itself), adding each left half's sum to its right half's, as numpy does."""
    if n <= 128:
        return _pairwise_leaf(v, lo, n)
    los = np.empty(64, dtype=np.int64)  # the halving depth is at most log2(n) < 64
    ns = np.empty(64, dtype=np.int64)
    left = np.empty(64)  # a node's left sum, once known
    has_left = np.zeros(64, dtype=np.bool_)
    top, los[0], ns[0] = 0, lo, n
    while True:
        if ns[top] > 128:  # descend into the left half
            has_left[top] = False
            los[top + 1], ns[top + 1] = los[top], _left_half(ns[top])
            top += 1
            continue
        r = _pairwise_leaf(v, los[top], ns[top])
        top -= 1
        while top >= 0 and has_left[top]:  # a right half done: its node is done
            r = left[top] + r
            top -= 1
        if top < 0:
            return r
        left[top], has_left[top] = r, True  # a left half done: on to the right half
        half = _left_half(ns[top])
        los[top + 1], ns[top + 1] = los[top] + half, ns[top] - half
        top += 1


@njit(inline=True)
def nan_as_zero(x: float) -> float:
    return 0.0 if np.isnan(x) else x


@njit(inline=True)
def run_sum(v: np.ndarray, n: int) -> float:
    """`numpy.add.reduceat` over one run v[0:n] (n >= 1) of per-row values, a NaN counted as 0 (a null
    input, or 0 × inf: the row needs no price, or is a data issue whose account leaves the outputs):
    the first value plus the pairwise sum of the rest (below 8 values that sum is this loop)."""
    first = nan_as_zero(v[0])
    if n <= 8:
        rest = -0.0
        for i in range(1, n):
            rest += nan_as_zero(v[i])
        return first + rest
    for i in range(1, n):
        v[i] = nan_as_zero(v[i])
    return first + pairwise_sum(v, 1, n - 1)


# ------------------------------------------------------------------ the kernels
# kernel(starts, stop, *row columns, *parameters, out, bits, run_idx): local run r is rows
# starts[r]..starts[r+1]-1 (the last one ..stop-1) and run run_idx[r] of the whole frame. The runs are
# cut into contiguous blocks spread over the threads (prange); a run is reduced by one thread, in row
# order. out[k, run_idx[r], p] is the sum of value k at price vector p over the run (a run's sums at
# every price vector side by side: with one vector per scenario, out[k] is already in (account,
# scenario) order), bits[run_idx[r]] its key bits.

BLOCKS = 64  # blocks of runs per call, spread over the threads
CHUNK_ROWS = 1_000_000  # rows per chunk the row pass asks the streaming engine for


@njit(inline=True)
def block(b: int, blocks: int, n_runs: int) -> tuple[int, int]:
    """Runs [r0, r1) of block b of `blocks` contiguous blocks of n_runs runs."""
    return b * n_runs // blocks, (b + 1) * n_runs // blocks


@njit(inline=True)
def run_end(starts: np.ndarray, stop: int, r: int) -> int:
    """One past the last row of run r."""
    return starts[r + 1] if r + 1 < starts.size else stop


@njit()
def _longest(starts: np.ndarray, stop: int, r0: int, r1: int) -> int:
    longest = 1
    for r in range(r0, r1):
        longest = max(longest, run_end(starts, stop, r) - starts[r])
    return longest


@njit(parallel=True)
def _balance_kernel(starts, stop, asset, holding, debt, prices, stable, coll, liab, out, bits, run_idx):
    """Per run (account) and price vector p: the sums of quantities.balance_row_values (the first
    out.shape[0] of them: the scenarios leave out the stable-asset parts)."""
    n_runs, n_prices, n_sums = starts.size, prices.shape[0], out.shape[0]
    n_assets, width = stable.size, quantities.N_BALANCE_VALUES
    blocks = min(n_runs, BLOCKS)
    for b in prange(blocks):
        r0, r1 = block(b, blocks, n_runs)
        buf = np.empty((width, _longest(starts, stop, r0, r1)))
        for r in range(r0, r1):
            s, e = starts[r], run_end(starts, stop, r)
            bit = np.uint64(0)
            for i in range(s, e):
                bit |= np.uint64(1) << np.uint64(asset[i] % 64)
            bits[run_idx[r]] = bit
            for p in range(n_prices):
                price = prices[p]
                for i in range(s, e):
                    quantities.balance_row_values(
                        asset[i],
                        holding[i],
                        debt[i],
                        n_assets,
                        price,
                        stable,
                        coll,
                        liab,
                        buf,
                        i - s,
                    )
                for k in range(n_sums):
                    out[k, run_idx[r], p] = run_sum(buf[k], e - s)


@njit(parallel=True)
def _order_kernel(starts, stop, order_id, base, quote, is_buy, qty, limit, prices, ratio, out, bits, run_idx):
    """Per run (account) and price vector p: the sum of quantities.order_loss_usdt over the open orders."""
    n_runs, n_prices = starts.size, prices.shape[0]
    n_assets = ratio.size
    blocks = min(n_runs, BLOCKS)
    for b in prange(blocks):
        r0, r1 = block(b, blocks, n_runs)
        buf = np.empty(_longest(starts, stop, r0, r1))
        for r in range(r0, r1):
            s, e = starts[r], run_end(starts, stop, r)
            bit = np.uint64(0)
            for i in range(s, e):
                bit |= np.uint64(1) << np.uint64(order_id[i] & 63)
            bits[run_idx[r]] = bit
            for p in range(n_prices):
                for i in range(s, e):
                    bi, qi = base[i], quote[i]
                    if bi >= n_assets or qi >= n_assets:  # an asset no price or table names
                        buf[i - s] = 0.0
                    else:
                        buf[i - s] = quantities.order_loss_usdt(
                            is_buy[i], qty[i], limit[i], prices[p, bi], ratio[bi], prices[p, qi], ratio[qi]
                        )
                out[0, run_idx[r], p] = run_sum(buf, e - s)


# ------------------------------------------------------------------ runs of account ids, chunk by chunk


@njit()
def _runs_in(v: np.ndarray, previous: int, first: bool) -> int:
    """How many runs start in the chunk v: one at each row whose id differs from the row before,
    and at its first row unless that equals `previous`, the last id of the chunk before (`first`:
    there is none)."""
    n = 1 if first or v[0] != previous else 0
    for i in range(1, v.size):
        if v[i] != v[i - 1]:
            n += 1
    return n


@njit()
def _run_starts(v, previous, first, lo, starts, ids, at) -> None:
    """Writes the runs that start in the chunk v (its rows are lo.. of the column) from place `at` of
    starts and ids, as _runs_in counts them."""
    if first or v[0] != previous:
        starts[at], ids[at] = lo, v[0]
        at += 1
    for i in range(1, v.size):
        if v[i] != v[i - 1]:
            starts[at], ids[at] = lo + i, v[i]
            at += 1


@dataclass
class Runs:
    """The runs of equal ids in a sorted column: run j is rows [starts[j], ends[j]) and holds ids[j]."""

    starts: np.ndarray
    ends: np.ndarray
    ids: np.ndarray
    _layouts: dict[tuple[int, ...], _Layout] = field(default_factory=dict)

    @classmethod
    def of(cls, ids: pl.Series) -> Runs:
        """The runs of a sorted id column without nulls, read chunk by chunk on zero-copy views, the
        chunks spread over the threads: a compiled count of the runs that start in each chunk, then
        a compiled pass per chunk that writes their starts and ids at the chunk's own place (no
        per-row array is made)."""
        chunks = [read_only(c.to_numpy()) for c in ids.get_chunks() if len(c)]
        if not chunks:
            return cls(*(np.empty(0, dtype=np.int64) for _ in range(3)))
        n = len(chunks)
        los = np.cumsum([0, *(v.size for v in chunks)])  # each chunk's first row in the column
        last = [0, *(v[-1] for v in chunks[:-1])]  # the last id of the chunk before
        first = [True] + [False] * (n - 1)
        with ThreadPoolExecutor(numba.get_num_threads()) as pool:
            at = np.cumsum([0, *pool.map(_runs_in, chunks, last, first)])  # each chunk's first run
            starts = np.empty(at[-1], dtype=np.int64)
            run_ids = np.empty(at[-1], dtype=chunks[0].dtype)
            list(pool.map(_run_starts, chunks, last, first, los, [starts] * n, [run_ids] * n, at))
        ends = np.empty_like(starts)
        ends[:-1], ends[-1] = starts[1:], los[-1]
        return cls(starts, ends, run_ids)

    def apply(
        self,
        kernel: Callable[..., None],
        rows: pl.DataFrame,
        columns: list[str],
        shape: tuple[int, ...],
        *params: Any,
        place: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(out, bits) of `kernel(starts, stop, *columns, *params, out, bits, run_idx)` over every run
        (see the kernels): one call per chunk on zero-copy views of it, then one call on the few runs
        that cross a chunk boundary, gathered into one contiguous frame. `out` is a float64 array
        of `shape`, laid out as the kernel writes it (see the kernels; the distance walk places its
        results by walked account), `bits` the ORed key bits per run. `place`: the index each run is
        written at (run_idx), if not its own; then `out` and `bits` start at 0 (an index without a run
        keeps 0). Every input array is passed read-only, so each kernel is compiled for one signature
        only. (The row pass collects in chunks of about a million rows, so the calls are few.)"""
        rows = rows.select(columns)
        chunks = [rows[c].get_chunks() for c in columns]
        lengths = tuple(len(c) for c in chunks[0])
        if any(tuple(len(c) for c in col) != lengths for col in chunks):  # columns chunked apart
            rows = rows.rechunk()
            chunks, lengths = [[rows[c]] for c in columns], (rows.height,)
        layout = self.layout(lengths)
        params = tuple(read_only(p) for p in params)
        if place is None:
            out, bits = np.empty(shape), np.zeros(self.starts.size, dtype=np.uint64)
            place = np.arange(self.starts.size)
        else:
            out, bits = np.zeros(shape), np.zeros(shape[1], dtype=np.uint64)
        for i, first, last, local, stop in layout.inside:
            arrays = [read_only(col[i].to_numpy()) for col in chunks]
            kernel(local, stop, *arrays, *params, out, bits, place[first:last])
        if layout.crossing.size:
            gathered = rows[layout.gather].rechunk()
            arrays = [read_only(gathered[c].to_numpy()) for c in columns]
            kernel(layout.gather_starts, gathered.height, *arrays, *params, out, bits, place[layout.crossing])
        return out, bits

    def layout(self, lengths: tuple[int, ...]) -> _Layout:
        """Which runs lie inside which chunk (and where), and which cross a boundary (worked out once
        per chunking: the columns of one frame share theirs)."""
        if lengths in self._layouts:
            return self._layouts[lengths]
        inside, crossing, lo = [], np.ones(self.starts.size, dtype=bool), 0
        for i, n in enumerate(lengths):
            hi = lo + n
            first = np.searchsorted(self.starts, lo, "left")  # the first run that starts in this chunk
            last = np.searchsorted(self.ends, hi, "right")  # runs first..last-1 end in it too
            if first < last:
                inside.append((i, first, last, self.starts[first:last] - lo, self.ends[last - 1] - lo))
                crossing[first:last] = False
            lo = hi
        s, e = self.starts[crossing], self.ends[crossing]
        local = np.zeros(s.size, dtype=np.int64)  # where each crossing run starts in the gathered rows
        np.cumsum((e - s)[:-1], out=local[1:])
        gather = np.repeat(s - local, e - s) + np.arange(int((e - s).sum()))
        self._layouts[lengths] = _Layout(inside, np.flatnonzero(crossing), gather, local)
        return self._layouts[lengths]


def read_only(value: Any) -> Any:
    """An array (or a tuple of arrays and numbers) flagged read-only: a zero-copy view of polars memory
    is read-only and a copy is not, and numba compiles a kernel once per such flag."""
    if isinstance(value, np.ndarray):
        value = value.view()
        value.setflags(write=False)
        return value
    if isinstance(value, tuple):
        return tuple(read_only(v) for v in value)
    return value


@dataclass(frozen=True)
class _Layout:
    inside: list[tuple[int, int, int, np.ndarray, int]]  # chunk, runs first..last-1, their starts in it, end
    crossing: np.ndarray  # the runs that cross a chunk boundary
    gather: np.ndarray  # their rows, run after run
    gather_starts: np.ndarray  # where each starts among those rows


# ------------------------------------------------------------------ per-account frames


def in_account_order(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows with an account_id, in account order (input order within an account)."""
    if rows[ACCOUNT].has_nulls():  # only then: an eager filter of a large frame is not free
        rows = rows.filter(pl.col(ACCOUNT).is_not_null())
    if not rows[ACCOUNT].is_sorted():
        rows = rows.sort(ACCOUNT, maintain_order=True)
    return rows


def _frame(
    runs: Runs | None, sums: dict[str, np.ndarray], count_name: str, bits: np.ndarray | None
) -> pl.DataFrame:
    if runs is None:
        schema = {ACCOUNT: pl.Int64, **{c: pl.Float64 for c in sums}, count_name: pl.Int64}
        return pl.DataFrame(schema={**schema, "maybe_repeat": pl.Boolean})
    counts = runs.ends - runs.starts
    return pl.DataFrame(
        {ACCOUNT: runs.ids, **sums, count_name: counts, "maybe_repeat": np.bitwise_count(bits) < counts}
    )


def _asset_arrays(terms: AssetTerms, stable: pl.Series) -> tuple[np.ndarray, tuple, tuple]:
    """Per asset_idx: stable flags, the collateral tiers and the liability brackets as kernel arrays."""
    c, li = terms.collateral, terms.liability
    coll = (c.k_max, *c.arrays("collateral_ratio"))
    lower, mm, below_mm = li.arrays("maintenance_margin_rate")
    _, im, below_im = li.arrays("initial_margin_rate")
    return stable.fill_null(False).to_numpy(), coll, (li.k_max, lower, mm, below_mm, im, below_im)


# a balance row as the kernels read it: holding = free + locked and debt = borrowed + interest are
# added once as the rows are read (quantities.holding, debt), so each row carries two numbers, not four
BALANCE_COLUMNS = ["account_id", "asset_idx", "holding", "debt"]
ORDER_COLUMNS = [
    "account_id",
    "order_id",
    f"asset_idx{BASE}",
    f"asset_idx{QUOTE}",
    "is_buy",
    "remaining_qty",
    "price",
]


def balance_inputs(terms: AssetTerms) -> list[pl.Expr]:
    """BALANCE_COLUMNS of balance rows that have their `asset_idx` (AssetTerms.index): an asset no price
    or table names gets index n_assets (one past the last)."""
    return [
        pl.col(ACCOUNT),
        pl.col("asset_idx").fill_null(terms.frame.height),
        quantities.holding().alias("holding"),
        quantities.debt().alias("debt"),
    ]


def order_inputs(terms: AssetTerms) -> list[pl.Expr]:
    """ORDER_COLUMNS of open orders that have their `asset_idx_base` and `asset_idx_quote`."""
    return [
        pl.col(ACCOUNT, "order_id"),
        pl.col(f"asset_idx{BASE}", f"asset_idx{QUOTE}").fill_null(terms.frame.height),
        quantities.is_buy().fill_null(False).alias("is_buy"),
        *[pl.col(c) for c in ORDER_COLUMNS[5:]],
    ]


def prices_matrix(terms: AssetTerms, prices: list[pl.Series] | None = None) -> np.ndarray:
    """(price vectors, assets) float64: the prices in effect, or one moved vector per scenario; a missing
    price is NaN (its rows' values add 0, or are data issues)."""
    vectors = prices if prices is not None else [terms.frame["price_usdt"]]
    return np.ascontiguousarray(np.stack([v.cast(pl.Float64).to_numpy() for v in vectors]))


def balance_sums(
    rows: pl.DataFrame,
    terms: AssetTerms,
    stable: pl.Series,
    prices: np.ndarray,
    runs: Runs | None = None,
    n_sums: int = quantities.N_BALANCE_VALUES,
    accounts: np.ndarray | None = None,
) -> tuple[Runs | None, np.ndarray, np.ndarray]:
    """(runs, sums, bits) of the balance rows (BALANCE_COLUMNS: account_id, asset_idx, holding, debt):
    sums[k, run, p] is the sum of the k-th of quantities.BALANCE_SUMS at price vector p, for the first
    `n_sums` of them. `runs`: the runs of `rows` (in account order), if known. `accounts` (sorted,
    unique): sums[k, j, p] of the j-th of these accounts instead, 0 without rows (`_placed`)."""
    rows = in_account_order(rows)
    if rows.height == 0:
        return None, _no_sums(n_sums, prices, accounts), np.empty(0, dtype=np.uint64)
    if rows["asset_idx"].has_nulls():  # an asset no price or table names: one index past the last
        rows = rows.with_columns(pl.col("asset_idx").fill_null(terms.frame.height))
    runs = runs if runs is not None else Runs.of(rows[ACCOUNT])
    stable_arr, coll, liab = _asset_arrays(terms, stable)
    return runs, *_placed(
        runs, accounts, (n_sums, prices.shape[0]), _balance_kernel, rows, BALANCE_COLUMNS[1:],
        prices, stable_arr, coll, liab,
    )  # fmt: skip


def order_sums(
    rows: pl.DataFrame, terms: AssetTerms, prices: np.ndarray, accounts: np.ndarray | None = None
) -> tuple[Runs | None, np.ndarray, np.ndarray]:
    """(runs, sums, bits) of the open orders (account_id, order_id, asset_idx_base, asset_idx_quote,
    is_buy, remaining_qty, price): sums[0, run, p] is the open-order loss at price vector p (with
    `accounts`: sums[0, j, p] of the j-th of them, as balance_sums)."""
    rows = in_account_order(rows)
    if rows.height == 0:
        return None, _no_sums(1, prices, accounts), np.empty(0, dtype=np.uint64)
    n = terms.frame.height
    rows = rows.with_columns(
        pl.col("order_id").fill_null(0), pl.col("asset_idx_base", "asset_idx_quote").fill_null(n)
    )
    runs = Runs.of(rows[ACCOUNT])
    ratio = terms.frame["first_collateral_ratio"].cast(pl.Float64).to_numpy()
    return runs, *_placed(
        runs, accounts, (1, prices.shape[0]), _order_kernel, rows, ORDER_COLUMNS[1:], prices, ratio
    )


def _no_sums(n_sums: int, prices: np.ndarray, accounts: np.ndarray | None) -> np.ndarray:
    return np.zeros((n_sums, 0 if accounts is None else accounts.size, prices.shape[0]))


def _placed(
    runs: Runs, accounts: np.ndarray | None, sizes: tuple[int, int], kernel, rows, columns, *params
) -> tuple[np.ndarray, np.ndarray]:
    """(out, bits) of a kernel over every run: out[k, run, p], or with `accounts` out[k, j, p] of the
    j-th account — the kernel writes each run's sums at its account's place (no copy after), and a run
    of an account not in `accounts` into one spare place past the last, then cut off."""
    n_sums, n_prices = sizes
    if accounts is None:
        return runs.apply(kernel, rows, columns, (n_sums, runs.starts.size, n_prices), *params)
    place = positions(runs.ids, accounts)
    place[place < 0] = accounts.size
    out, bits = runs.apply(kernel, rows, columns, (n_sums, accounts.size + 1, n_prices), *params, place=place)
    return out[:, : accounts.size], bits[: accounts.size]


def account_frame(
    runs: Runs | None, sums: np.ndarray, bits: np.ndarray, names: list[str], count_name: str
) -> pl.DataFrame:
    """The per-account frame of the row pass: account_id, the named sums (first price vector),
    `count_name` rows, maybe_repeat."""
    return _frame(runs, {c: sums[i, :, 0] for i, c in enumerate(names)}, count_name, bits)


def repeated(frame: pl.DataFrame) -> pl.Series:
    """The account_ids that appear more than once in `frame` (a sort and a shift: O(n) when sorted)."""
    ids = frame[ACCOUNT].drop_nulls()
    if not ids.is_sorted():
        ids = ids.sort()
    return ids.filter(ids == ids.shift(1)).unique()


def sorted_by_account(frame: pl.DataFrame) -> pl.LazyFrame:
    """The frame in account_id order (a stable sort only if needed), flagged sorted, as a LazyFrame."""
    if not frame[ACCOUNT].is_sorted():
        frame = frame.sort(ACCOUNT, maintain_order=True, nulls_last=False)
    return frame.lazy().with_columns(pl.col(ACCOUNT).set_sorted())


# ------------------------------------------------------------------ where each id is among sorted keys


def positions(ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each of `ids` (sorted, may repeat) the index of the equal key in `keys` (sorted, unique), or
    -1 (both passed read-only: one compiled signature)."""
    return _positions(read_only(ids), read_only(keys))


@njit()
def _positions(ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each of `ids` (sorted, may repeat) the index of the equal key in `keys` (sorted, unique), or
    -1: one merge walk over both."""
    at = np.full(ids.size, -1, dtype=np.int64)
    j = 0
    for i in range(ids.size):
        while j < keys.size and keys[j] < ids[i]:
            j += 1
        if j < keys.size and keys[j] == ids[i]:
            at[i] = j
    return at
