"""The generated books the benchmark scripts measure on, one directory per shape and size, reused.

`ensure_book(work, shape, n)` returns `work/data_N` (shape `sample`, the directory every script has
always shared) or `work/SHAPE_N`, written by this checkout's `crossmargin sample --accounts N --seed 1
--shape SHAPE` when it lacks its `.complete` marker (a half-written directory is written again).
The marker holds the generation's wall time and peak RSS. To measure on a book written elsewhere,
link its seven parquet files into that directory and write `{}` into its `.complete`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from measuring import run_measured

CROSSMARGIN = str(Path(sys.executable).parent / "crossmargin")
SHAPES = ("sample", "exchange")
SEED = 1
AS_OF = "2025-01-21T10:00:00Z"  # the as_of every benchmark scores its book at
# --max-issue-rate per shape: the exchange shape has 0.8 % of accounts with a null price by design
MAX_ISSUE_RATE = {"sample": 0.01, "exchange": 0.02}


def book_dir(work: Path, shape: str, n: int) -> Path:
    return work / (f"data_{n}" if shape == "sample" else f"{shape}_{n}")


def ensure_book(work: Path, shape: str, n: int, log: Path | None = None) -> tuple[Path, dict]:
    """The book's directory (generated when incomplete) and its `.complete` record."""
    if shape not in SHAPES:
        raise SystemExit(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    d = book_dir(work, shape, n)
    marker = d / ".complete"
    if marker.exists():
        return d, json.loads(marker.read_text() or "{}")
    shutil.rmtree(d, ignore_errors=True)
    print(f"  generating the {shape} book of {n:,} accounts -> {d}", flush=True)
    cmd = [
        CROSSMARGIN,
        "sample",
        "--accounts",
        str(n),
        "--seed",
        str(SEED),
        "--shape",
        shape,
        "--out",
        str(d),
    ]
    m = run_measured(cmd)
    if log is not None:
        with log.open("a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{m.stdout}{m.stderr}\n")
    if m.returncode != 0:
        raise SystemExit(f"crossmargin sample failed ({m.returncode}): {m.stderr.strip()[-500:]}")
    record = {"wall_s": round(m.wall_s, 2), "peak_rss_bytes": m.peak_rss_bytes}
    marker.write_text(json.dumps(record))
    return d, record


def input_stats(d: Path) -> dict:
    """Rows per input table and the bytes of its parquet files."""
    import pyarrow.parquet as pq

    files = sorted(d.glob("*.parquet"))
    return {
        "rows": {f.stem: pq.ParquetFile(f).metadata.num_rows for f in files},
        "bytes": sum(f.stat().st_size for f in files),
    }


def warm_cache(d: Path) -> None:
    """Read every file of `d` once, so each run starts with its inputs in the page cache."""
    for f in sorted(d.glob("*.parquet")):
        with f.open("rb") as fh:
            while fh.read(1 << 24):
                pass
