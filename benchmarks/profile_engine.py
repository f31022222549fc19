"""Where the engine's time goes: `run_job` with its stages timed (wall and CPU of the process).

Wraps, without changing them, the calls the job makes: every `pl.collect_all` / `LazyFrame.collect`
(the row-level phase and the account-level phase of the plan), the output writers, the output
checksums and the input checksums (a background thread, so its time overlaps). Also reports what
`compute`'s sub-plans cost when collected one by one, and the parquet write of account_risk with
other codecs, to show what each part would save.

    python benchmarks/profile_engine.py --input benchmarks/work/data_1000000 [--buckets N]

A development aid for the engine, not part of the benchmark table; numbers are only meaningful on
a quiet machine (CPU seconds are the more robust ones when other jobs run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import tempfile
import time
from pathlib import Path

import polars as pl

from crossmargin import inputs, outputs, pipeline
from crossmargin.policy import resolve

AS_OF = dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC)
STATS: list[tuple[str, float, float]] = []


def timed(label: str, fn):
    @functools.wraps(fn)
    def inner(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            name = label(a, k) if callable(label) else label
            STATS.append((name, time.perf_counter() - w, time.process_time() - c))

    return inner


def patch() -> None:
    calls = {"n": 0}
    original = pl.collect_all

    def label(a, k):
        calls["n"] += 1
        frames = a[0] if a else k.get("lazy_frames", [])
        return f"pl.collect_all ({k.get('engine', 'auto')}, {len(list(frames))} frames)"

    pl.collect_all = timed(label, original)
    for obj, name, lab in [
        (getattr(outputs, "PartWriter", None), "write", "output parquet write"),
        (getattr(outputs, "PartWriter", None), "close", "output parquet close"),
        (outputs, "output_entry", "output checksums"),
        (outputs, "write_manifest", "manifest"),
        (outputs, "publish", "publish (rename)"),
        (inputs.InputFile, "sha256", "input sha256 (background thread)"),
    ]:
        if obj is not None and hasattr(obj, name):
            setattr(obj, name, timed(lab, getattr(obj, name)))


def report(title: str, total: tuple[float, float]) -> None:
    agg: dict[str, list[float]] = {}
    for name, w, c in STATS:
        x = agg.setdefault(name, [0, 0.0, 0.0])
        x[0] += 1
        x[1] += w
        x[2] += c
    print(f"\n{title}")
    print(f"  {'stage':<48} {'calls':>5} {'wall s':>8} {'cpu s':>8}")
    for name, (n, w, c) in agg.items():
        print(f"  {name:<48} {n:>5} {w:>8.2f} {c:>8.2f}")
    print(f"  {'total':<48} {'':>5} {total[0]:>8.2f} {total[1]:>8.2f}")
    STATS.clear()


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
        print(pipeline.run_job(AS_OF, args.input, Path(tmp) / "out", buckets=args.buckets))
        report("run_job, stage by stage", (time.perf_counter() - w, time.process_time() - c))

        policy = resolve(AS_OF)
        tables = inputs.load_tables(args.input)
        print("\naccount-level plan collected piece by piece (after the row-level phase)")
        print(f"  {'piece':<48} {'':>5} {'wall s':>8} {'cpu s':>8}")
        risk, acts, issues = step("plan(): row-level phase", lambda: pipeline.plan(tables, policy))
        STATS.clear()
        step("data_issues alone", issues.collect)
        r = step("account_risk alone", risk.collect)
        step("actions alone (recomputes account_risk)", acts.collect)
        step("all three in one collect_all", lambda: pl.collect_all([risk, acts, issues]))
        STATS.clear()
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
