"""Output files written bucket after bucket (io/streams.py), and how many buckets a run takes.

A stream's file has the bytes of one `write_parquet` of all its frames, however they are cut; a
writer that fails stops the run instead of hanging it. A run cuts its book into small buckets only
when every account table's file is in account order (else each bucket would read all of it).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from crossmargin import job
from crossmargin.io.inputs import InputFile, in_account_order
from crossmargin.io.outputs import PARQUET_OPTIONS
from crossmargin.io.streams import TableStream
from support import SAMPLE

AS_OF = dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC)


def frame(n: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {"account_id": range(start, start + n), "x": [i * 0.5 for i in range(n)], "s": ["a", "b"] * (n // 2)}
    )


@pytest.mark.parametrize("cuts", [[2500], [1000, 2500], [1, 999, 1000, 2500]])
def test_a_stream_writes_the_bytes_of_one_write(tmp_path: Path, cuts: list[int]) -> None:
    whole = frame(2500)
    options = {**PARQUET_OPTIONS, "row_group_size": 1000}
    whole.write_parquet(tmp_path / "one.parquet", **options)
    stream = TableStream(tmp_path / "streamed.parquet", dict(whole.schema), options)
    lo = 0
    for hi in cuts:
        stream.put(whole[lo:hi])
        lo = hi
    rows, sha256 = stream.close()
    assert rows == 2500
    assert (tmp_path / "streamed.parquet").read_bytes() == (tmp_path / "one.parquet").read_bytes()
    import hashlib

    assert sha256 == hashlib.sha256((tmp_path / "one.parquet").read_bytes()).hexdigest()


def test_a_failing_writer_fails_the_run_instead_of_hanging_it(tmp_path: Path) -> None:
    stream = TableStream(tmp_path / "f.parquet", dict(frame(2).schema), PARQUET_OPTIONS)
    stream.put(frame(2).rename({"x": "y"}))  # not the stream's schema
    with pytest.raises(Exception):  # noqa: B017 - polars' own error, whichever it is
        for _ in range(5):  # later frames do not wait forever on a writer that is gone
            stream.put(frame(2))
        stream.close()


def write_rows_in_groups(path: Path, df: pl.DataFrame) -> None:
    df.write_parquet(path, row_group_size=100)


def test_a_file_in_account_order_is_read_in_part(tmp_path: Path) -> None:
    df = frame(1000)
    write_rows_in_groups(tmp_path / "sorted.parquet", df)
    write_rows_in_groups(tmp_path / "shuffled.parquet", df.sample(fraction=1.0, shuffle=True, seed=3))
    write_rows_in_groups(tmp_path / "descending.parquet", df.reverse())
    df.write_csv(tmp_path / "any.csv")
    order = {p: in_account_order(InputFile("balances", tmp_path / p, 1000)) for p in (
        "sorted.parquet", "shuffled.parquet", "descending.parquet", "any.csv")}  # fmt: skip
    assert order == {
        "sorted.parquet": True,
        "shuffled.parquet": False,
        "descending.parquet": False,
        "any.csv": True,
    }


def test_small_buckets_only_for_files_in_account_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 100 accounts a bucket, the sample (in account order) takes 5 buckets; the same book with the
    first account's balance rows moved to the end of its file takes the buckets of an unsorted book
    (here 1); both give the same bytes."""
    monkeypatch.setattr(job, "ACCOUNTS_PER_BUCKET", 100)
    shuffled = tmp_path / "shuffled"
    shutil.copytree(SAMPLE, shuffled)
    balances = pl.read_parquet(SAMPLE / "balances.parquet")
    first = pl.col("account_id") == balances["account_id"].min()
    moved = pl.concat([balances.filter(~first), balances.filter(first)])  # each account's rows in order
    moved.write_parquet(shuffled / "balances.parquet", row_group_size=200)
    out = tmp_path / "out"
    for name, inputs in (("sorted", SAMPLE), ("shuffled", shuffled)):
        job.run_job(AS_OF, inputs, out / name)
    buckets = {
        n: json.loads((out / n / "manifest.json").read_text())["buckets"] for n in ("sorted", "shuffled")
    }
    assert buckets == {"sorted": 5, "shuffled": 1}
    for table in ("account_risk", "actions", "data_issues"):
        name = f"{table}.parquet"
        assert (out / "sorted" / name).read_bytes() == (out / "shuffled" / name).read_bytes(), table
