"""Each account's rows, found where the streaming read left them: runs of account ids, chunk by chunk.

The row pass hands over the input rows (balances, open orders) in account order — a stable sort if the
input is not, as exports already are — and in the chunks the streaming engine returned them in. An
account's rows are a *run* of equal ids. A kernel over accounts (kernels/valuation.py,
kernels/search.py) is called like this (`Runs.apply`):

    kernel(starts, stop, *row columns, *parameters, out, bits, run_idx)

run r of the call is rows starts[r]..starts[r+1]-1 (the last one ..stop-1) of the row columns, and
account run_idx[r] of the output. A run inside one chunk is read in place (a zero-copy view of the
chunk); the few runs that cross a chunk boundary are gathered into one small contiguous frame. The runs
of a call are cut into contiguous blocks run on several threads (compiled.spread): an account's rows
are always reduced by one thread, in input order, so a result never depends on threads, chunks or
buckets. `bits` receives, per run, the OR of its rows' key bits (a bit `key % 64`): fewer set bits
than rows flags a candidate repeated key (validation/groups.py).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from crossmargin.kernels.compiled import jitable, kernel, threads

ACCOUNT = "account_id"
BLOCKS_PER_THREAD = 8  # blocks of runs per thread and call: a slow block does not hold the others up


@jitable
def run_end(starts: np.ndarray, stop: int, r: int) -> int:
    """One past the last row of run r."""
    return starts[r + 1] if r + 1 < starts.size else stop


@jitable
def longest_run(starts: np.ndarray, stop: int) -> int:
    longest = 1
    for r in range(starts.size):
        longest = max(longest, run_end(starts, stop, r) - starts[r])
    return longest


# ------------------------------------------------------------------ runs of account ids, chunk by chunk


@kernel
def _runs_in(v: np.ndarray, previous: int, first: bool) -> int:
    """How many runs start in the chunk v: one at each row whose id differs from the row before,
    and at its first row unless that equals `previous`, the last id of the chunk before (`first`:
    there is none)."""
    n = 1 if first or v[0] != previous else 0
    for i in range(1, v.size):
        if v[i] != v[i - 1]:
            n += 1
    return n


@kernel
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
        with ThreadPoolExecutor(threads()) as pool:
            at = np.cumsum([0, *pool.map(_runs_in, chunks, last, first)])  # each chunk's first run
            starts = np.empty(at[-1], dtype=np.int64)
            run_ids = np.empty(at[-1], dtype=chunks[0].dtype)
            list(pool.map(_run_starts, chunks, last, first, los, [starts] * n, [run_ids] * n, at))
        ends = np.empty_like(starts)
        ends[:-1], ends[-1] = starts[1:], los[-1]
        return cls(starts, ends, run_ids)

    def apply(
        self,
        call: Callable[..., None],
        rows: pl.DataFrame,
        columns: list[str],
        params: tuple[Any, ...],
        out: tuple[np.ndarray, ...],
        place: np.ndarray | None = None,
    ) -> None:
        """`call(starts, stop, *columns, *params, *out, run_idx)` over every run (module docstring): for
        each chunk, its runs in blocks on zero-copy views of the chunk, then the few runs that cross a
        chunk boundary, gathered; the blocks run on the threads. `out`: the arrays the kernel writes, by
        `run_idx` — run j's own index j, or `place[j]` (where run j is written; the caller sized `out`
        for it). Every input array is passed read-only, so each kernel is compiled for one signature."""
        rows = rows.select(columns)
        chunks = [rows[c].get_chunks() for c in columns]
        lengths = tuple(len(c) for c in chunks[0])
        if any(tuple(len(c) for c in col) != lengths for col in chunks):  # columns chunked apart
            rows = rows.rechunk()
            chunks, lengths = [[rows[c]] for c in columns], (rows.height,)
        layout = self.layout(lengths)
        params = tuple(read_only(p) for p in params)
        place = np.arange(self.starts.size) if place is None else place
        calls = []  # (arrays, local starts, stop, run_idx) of each block
        for i, first, last, local, stop in layout.inside:
            arrays = [read_only(col[i].to_numpy()) for col in chunks]
            calls += _blocks(arrays, local, stop, place[first:last])
        if layout.crossing.size:
            gathered = rows[layout.gather].rechunk()
            arrays = [read_only(gathered[c].to_numpy()) for c in columns]
            calls += _blocks(arrays, layout.gather_starts, gathered.height, place[layout.crossing])

        def one(block: tuple) -> None:
            arrays, starts, stop, run_idx = block
            call(starts, stop, *arrays, *params, *out, run_idx)

        if len(calls) == 1 or threads() == 1:
            for block in calls:
                one(block)
        else:
            with ThreadPoolExecutor(threads()) as pool:
                list(pool.map(one, calls))

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


def _blocks(arrays: list[np.ndarray], starts: np.ndarray, stop: int, run_idx: np.ndarray) -> list[tuple]:
    """The runs of one call cut into contiguous blocks (about BLOCKS_PER_THREAD per thread)."""
    n = starts.size
    blocks = max(1, min(n, threads() * BLOCKS_PER_THREAD))
    out = []
    for b in range(blocks):
        r0, r1 = b * n // blocks, (b + 1) * n // blocks
        if r0 < r1:
            block_stop = int(starts[r1]) if r1 < n else stop
            out.append((arrays, read_only(starts[r0:r1]), block_stop, read_only(run_idx[r0:r1])))
    return out


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


# ------------------------------------------------------------------ frames in account order


def in_account_order(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows with an account_id, in account order (input order within an account)."""
    if rows[ACCOUNT].has_nulls():  # only then: an eager filter of a large frame is not free
        rows = rows.filter(pl.col(ACCOUNT).is_not_null())
    if not rows[ACCOUNT].is_sorted():
        rows = rows.sort(ACCOUNT, maintain_order=True)
    return rows


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


@kernel
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
