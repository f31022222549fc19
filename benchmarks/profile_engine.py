"""Where the engine's time goes: `run_job` with its stages timed (wall and CPU of the process).

Wraps, without changing them, the calls the job makes: every `pl.collect_all` / `LazyFrame.collect`
(labelled by the engine source line that calls it), the output parquet writes
(`DataFrame.write_parquet`, labelled by the calling line; each output file is hashed inside its
write, outputs.OutputFile), the read-back checksums of merged parts, and the input checksums (a
background thread, whose time overlaps the rest). Time in none of these is eager DataFrame
work and Python. A second table times the engine's phases (`crossmargin.engine`: reference, row
pass, account pass, issues, account_risk, and `score` around them and the actions), each including
the collects above that it makes. Then times the parquet write of account_risk with other codecs.

    python benchmarks/profile_engine.py --input benchmarks/work/data_1000000 [--buckets N]

A development aid for the engine, not part of the benchmark table; numbers are only meaningful on
a quiet machine (CPU seconds are the more robust ones when other jobs run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl

from crossmargin import engine, inputs, job, outputs

AS_OF = dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC)
STATS: list[tuple[str, float, float]] = []
PHASES: list[tuple[str, float, float]] = []


DEPTH = threading.local()  # per thread: the input checksums run in a background thread


def _caller() -> str:
    """file:line of the first frame outside polars and this script."""
    f = sys._getframe(2)
    while f and ("/polars/" in f.f_code.co_filename or f.f_code.co_filename == __file__):
        f = f.f_back
    return f"{Path(f.f_code.co_filename).name}:{f.f_lineno}" if f else "?"


def timed(label, fn):  # label: a string, or a function of the call's arguments
    @functools.wraps(fn)
    def inner(*a, **k):
        if getattr(DEPTH, "n", 0):  # nested call (e.g. collect inside collect_all): counted by the outer one
            return fn(*a, **k)
        name = label(a, k) if callable(label) else label
        DEPTH.n = 1
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            DEPTH.n = 0
            STATS.append((name, time.perf_counter() - w, time.process_time() - c))

    return inner


def phase(name: str, fn):
    """Time a whole engine phase (the collects inside it are also counted in STATS)."""

    @functools.wraps(fn)
    def inner(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            PHASES.append((name, time.perf_counter() - w, time.process_time() - c))

    return inner


def patch() -> None:
    def collect_all_label(a, k):
        frames = a[0] if a else k.get("lazy_frames", [])
        n = len(frames) if hasattr(frames, "__len__") else "?"
        return f"collect_all({n} frames, {k.get('engine', 'auto')}) at {_caller()}"

    def collect_label(a, k):
        return f"collect({k.get('engine', 'auto')}) at {_caller()}"

    pl.collect_all = timed(collect_all_label, pl.collect_all)
    pl.LazyFrame.collect = timed(collect_label, pl.LazyFrame.collect)
    pl.DataFrame.write_parquet = timed(
        lambda a, k: f"output write_parquet at {_caller()}", pl.DataFrame.write_parquet
    )
    for name in (
        "reference_phase",
        "row_pass",
        "account_pass",
        "distance_phase",
        "issues_phase",
        "account_risk",
    ):
        setattr(engine, name, phase(f"engine.{name}", getattr(engine, name)))
    job.score = phase("engine.score (all phases + actions frame)", engine.score)
    for obj, name, lab in [
        (job, "sha256_file", "output sha256 read back (merged parts only)"),
        (outputs, "write_manifest", "manifest"),
        (outputs, "publish", "publish (rename)"),
        (inputs.InputFile, "sha256", "input sha256 (background thread)"),
    ]:
        if obj is not None and hasattr(obj, name):
            setattr(obj, name, timed(lab, getattr(obj, name)))


def report(title: str, total: tuple[float, float], stats: list | None = None) -> None:
    stats = STATS if stats is None else stats
    agg: dict[str, list[float]] = {}
    for name, w, c in stats:
        x = agg.setdefault(name, [0, 0.0, 0.0])
        x[0] += 1
        x[1] += w
        x[2] += c
    print(f"\n{title}")
    print(f"  {'stage':<58} {'calls':>5} {'wall s':>8} {'cpu s':>8}")
    for name, (n, w, c) in agg.items():
        print(f"  {name:<58} {n:>5} {w:>8.2f} {c:>8.2f}")
    print(f"  {'total':<58} {'':>5} {total[0]:>8.2f} {total[1]:>8.2f}")
    stats.clear()


def step(label: str, fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    print(f"  {label:<48} {'':>5} {time.perf_counter() - w:>8.2f} {time.process_time() - c:>8.2f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--buckets", type=int, default=0)
    args = ap.parse_args()
    patch()
    with tempfile.TemporaryDirectory() as tmp:
        w, c = time.perf_counter(), time.process_time()
        print(job.run_job(AS_OF, args.input, Path(tmp) / "out", buckets=args.buckets or None))
        total = (time.perf_counter() - w, time.process_time() - c)
        report("run_job, stage by stage", total)
        print(f"  {'(the rest: eager DataFrame work, Python)':<48}")
        report("engine phases (each includes the collects above that it makes)", total, PHASES)

        STATS.clear()
        r = pl.read_parquet(Path(tmp) / "out" / "account_risk.parquet")
        print(
            f"\naccount_risk parquet write, {r.height:,} rows, {r.estimated_size() / 2**20:,.0f} MiB in memory"
        )
        for label, kw in [
            ("zstd (polars default)", {}),
            ("zstd level 1", {"compression": "zstd", "compression_level": 1}),
            ("lz4", {"compression": "lz4"}),
            ("snappy", {"compression": "snappy"}),
            ("uncompressed", {"compression": "uncompressed"}),
        ]:
            dest = Path(tmp) / "risk.parquet"
            step(label, lambda kw=kw, dest=dest: r.write_parquet(dest, **kw))
            print(f"  {'':<48} {'':>5} {dest.stat().st_size / 2**20:>7.0f}M")


if __name__ == "__main__":
    main()
