"""Writing input directories: `write_sample` (the `crossmargin sample` command: the showcase, random
accounts and reference data written chunk by chunk, bounded memory, same arguments -> same bytes) and
`write_inputs` (given frames written as they are, whatever their schema: the tests' bad inputs).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from crossmargin.errors import UsageError
from crossmargin.io.schemas import INPUT_SCHEMAS, TABLES
from crossmargin.synthetic.population import chunks
from crossmargin.synthetic.reference import reference_tables
from crossmargin.synthetic.shapes import SAMPLE, Shape
from crossmargin.synthetic.showcase import SHOWCASE
from crossmargin.synthetic.universe import PER_ACCOUNT_TABLES, SHOWCASE_AS_OF

ROW_GROUP_ROWS = 1_000_000
CSV_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"


@dataclass
class _Counter:
    accounts: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    faults: int = 0


def _arrow_schema(name: str) -> pa.Schema:
    to_arrow = {
        pl.Int64(): pa.int64(),
        pl.Float64(): pa.float64(),
        pl.String(): pa.string(),
        pl.Boolean(): pa.bool_(),
        pl.Datetime("us", "UTC"): pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(col, to_arrow[dtype]) for col, dtype in INPUT_SCHEMAS[name].items()])


class _Sink:
    """One output file per table, appended chunk by chunk (parquet via pyarrow, or csv).

    Parquet rows are buffered per table and written in row groups of exactly ROW_GROUP_ROWS rows
    (the last one shorter); dictionary encoding only for the string columns; zstd.
    """

    def __init__(self, out: Path, fmt: str) -> None:
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"format must be parquet or csv, not {fmt!r}")
        self.out, self.fmt = out, fmt
        self.writers: dict[str, Any] = {}
        self.buffers: dict[str, list[pl.DataFrame]] = {}

    def write(self, name: str, df: pl.DataFrame) -> None:
        df = df.select(list(INPUT_SCHEMAS[name])).cast(INPUT_SCHEMAS[name])
        if self.fmt == "csv":
            first = name not in self.writers
            if first:
                self.writers[name] = (self.out / f"{name}.csv").open("w", encoding="utf-8", newline="")
            df.write_csv(self.writers[name], include_header=first, datetime_format=CSV_DATETIME_FORMAT)
            return
        buf = self.buffers.setdefault(name, [])
        buf.append(df)
        rows = sum(b.height for b in buf)
        if rows >= ROW_GROUP_ROWS:
            whole = pl.concat(buf)
            cut = rows - rows % ROW_GROUP_ROWS
            self._write_parquet(name, whole.slice(0, cut))
            self.buffers[name] = [whole.slice(cut)] if cut < rows else []

    def _write_parquet(self, name: str, df: pl.DataFrame) -> None:
        schema = _arrow_schema(name)
        if name not in self.writers:
            strings = [c for c, t in INPUT_SCHEMAS[name].items() if t == pl.String()]
            self.writers[name] = pq.ParquetWriter(
                self.out / f"{name}.parquet", schema, compression="zstd", use_dictionary=strings
            )
        self.writers[name].write_table(df.to_arrow().cast(schema), row_group_size=ROW_GROUP_ROWS)

    def close(self) -> None:
        for name, buf in self.buffers.items():
            if buf:  # the remainder (or a table with no rows at all: an empty file with the schema)
                self._write_parquet(name, pl.concat(buf))
        for w in self.writers.values():
            w.close()


def write_sample(
    out: Path, accounts: int, seed: int, faults: float = 0.0, fmt: str = "parquet", shape: Shape = SAMPLE
) -> str:
    """Write the 7 input tables into `out` chunk by chunk (bounded memory); return a one-line summary.

    `out` must not hold an input table yet (nothing is overwritten). Same arguments, same bytes.
    `shape` (shapes.SHAPES) sets how many rows of each kind the accounts have.
    """
    started = time.perf_counter()
    out = Path(out)
    existing = [
        f"{name}.{ext}" for name in TABLES for ext in ("parquet", "csv") if (out / f"{name}.{ext}").exists()
    ]
    if existing:
        raise UsageError(f"{out} already holds {existing[0]}; write a sample into a new or empty directory")
    out.mkdir(parents=True, exist_ok=True)
    sink = _Sink(out, fmt)
    count = _Counter()
    try:
        for name, df in reference_tables(include_fault_assets=faults > 0, shape=shape).items():
            sink.write(name, df)
            count.rows[name] += df.height
        for tables, expected in chunks(accounts, seed, faults, shape):
            count.faults += expected.height
            count.accounts += tables["accounts"].height
            for name in PER_ACCOUNT_TABLES:
                count.rows[name] += tables[name].height
                sink.write(name, tables[name])
    finally:
        sink.close()
    rows = ", ".join(f"{name} {count.rows[name]:,}" for name in TABLES)
    shaped = "" if shape == SAMPLE else f", {shape.name} shape"
    return (
        f"wrote {out} ({fmt}{shaped}): {len(SHOWCASE)} showcase + {accounts:,} random accounts (seed {seed}, "
        f"{count.faults:,} injected faults); rows: {rows}; {time.perf_counter() - started:.1f}s; "
        f"showcase as_of {SHOWCASE_AS_OF.isoformat().replace('+00:00', 'Z')}"
    )


def write_inputs(tables: Mapping[str, pl.DataFrame], directory: Path, fmt: str = "parquet") -> Path:
    """One NAME.parquet / NAME.csv per frame, written as it is (no cast: bad inputs stay bad)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if fmt == "parquet":
            df.write_parquet(directory / f"{name}.parquet")
        else:
            to_csv(df).write_csv(directory / f"{name}.csv")
    return directory


def to_csv(df: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as ISO-8601 with Z (what a CSV export from the upstream feed looks like)."""
    return df.with_columns(
        pl.col(c).dt.strftime(CSV_DATETIME_FORMAT) for c, t in df.schema.items() if isinstance(t, pl.Datetime)
    )
