"""Per-account sums that are the same to the last bit on every run.

A parallel hash group-by adds an account's rows in whatever order its threads meet them, so the last
bits of a float sum can change between identical runs. Here an account's rows are taken in input
order: rows are (stably) sorted by account_id — nearly free when the input is already sorted, as
exports are — and each account's contiguous run is reduced with `numpy.add.reduceat`, which runs the
same operations on the same values every time (numpy's unrolled/pairwise float reduction, not a
strictly left-to-right sum; the scalar reference in tests/ sums left to right and agrees within
1e-9 relative).

The same pass flags accounts that may hold a key twice (an asset twice in balances, an order_id
twice in open orders) with a 64-bit set per account: each row sets bit `key % 64` (its `key_bit`,
computed by the streaming per-row stage); fewer set bits than rows means a repeat or a bit
collision. Only those few candidates are then checked exactly.
"""

from __future__ import annotations

import numpy as np
import polars as pl

ACCOUNT = "account_id"
_POWERS_OF_TWO = pl.Series("bit", [1 << i for i in range(64)], dtype=pl.UInt64)


def key_bit(key: pl.Expr) -> pl.Expr:
    """1 << (key % 64) for an unsigned integer key: the row's bit in its account's key set."""
    return pl.lit(_POWERS_OF_TWO).gather(key % 64).alias("key_bit")


def segment_sums(rows: pl.DataFrame, value_columns: list[str], count_name: str) -> pl.DataFrame:
    """Per account_id: the sum of each value column (rows in input order), `count_name` rows, `maybe_repeat`.

    `rows` holds account_id, the value columns (float, no nulls) and `key_bit` (see `key_bit`;
    distinct keys below 64 never collide). Rows without an account_id (a data issue) are left out.
    """
    if rows[ACCOUNT].has_nulls():  # only then: an eager filter of a large frame is not free
        rows = rows.filter(pl.col(ACCOUNT).is_not_null())
    if not rows[ACCOUNT].is_sorted():
        rows = rows.sort(ACCOUNT, maintain_order=True)
    ids = rows[ACCOUNT].to_numpy()
    if ids.size == 0:
        schema = {ACCOUNT: pl.Int64, **{c: pl.Float64 for c in value_columns}, count_name: pl.Int64}
        return pl.DataFrame(schema={**schema, "maybe_repeat": pl.Boolean})
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    counts = np.diff(np.r_[starts, ids.size])
    bits = np.bitwise_or.reduceat(rows["key_bit"].to_numpy(), starts)
    out = {ACCOUNT: ids[starts]}
    out |= {c: np.add.reduceat(rows[c].to_numpy(), starts) for c in value_columns}
    out |= {count_name: counts, "maybe_repeat": np.bitwise_count(bits) < counts}
    return pl.DataFrame(out)


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
