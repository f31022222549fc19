"""The job against its floor and three reference implementations, by size, on the sample book.

For each size N it generates the book (books.py: `crossmargin sample --accounts N --seed 1`, reused
from `benchmarks/work/data_N`), then runs, each in its own process measured by
measuring.run_measured (wall from launch to exit, user + system CPU seconds, peak RSS):

  scan    polars reads every column of every input parquet file (scan_inputs.py)
  engine  the full job: `crossmargin run --as-of 2025-01-21T10:00:00Z --input ... --out ...`
  write   the engine's own outputs, loaded first, written as the job writes them (write_outputs.py;
          the writes alone, timed in-process). floor = scan + write
  duckdb  the quantities and levels in DuckDB SQL (impl_duckdb.py), written to parquet
  pandas  the same in vectorized pandas (impl_pandas.py); skipped where, extrapolated from the
          previous size, it would need more than 16 GB or 15 minutes
  loop    the same as a per-account Python loop (impl_loop.py) on a ~100k-account slice of the
          book, its time extrapolated linearly to N

It checks that every reference agrees with the engine's account_risk (sizes <= --verify-max), stores
the figures in benchmarks/results.json (key `sizes`, merged across invocations) and rewrites the
sections `sizes` and `huge` of benchmarks/README.md from it.

    python benchmarks/run_benchmarks.py                      # 1M, 5M, 10M
    python benchmarks/run_benchmarks.py --sizes 1000000 --repeat 2
    python benchmarks/run_benchmarks.py --huge 30000000      # generate + scan + engine: bounded memory
    python benchmarks/run_benchmarks.py --report-only        # the README sections from the JSON
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

from agreement import make_slice, verify
from books import AS_OF, ensure_book, input_stats, warm_cache
from measuring import run_measured
from report import (
    GB,
    README,
    fmt_s,
    git_label,
    load_json,
    machine,
    machine_line,
    markdown_table,
    ratio,
    save_json,
    write_section,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
CROSSMARGIN = str(Path(sys.executable).parent / "crossmargin")
RESULTS = BENCH / "results.json"
IMPLS = ["scan", "engine", "write", "duckdb", "pandas", "loop"]  # in running order: write needs the engine's
TARGET_FLOOR_RATIO = 2.0  # engine wall <= 2 x floor
TARGET_DUCKDB = 1.5  # DuckDB wall / engine wall >=
TARGET_GB_PER_M = 0.5  # engine peak RSS per million accounts <=
PANDAS_MAX_RSS_GB = 16.0
PANDAS_MAX_SECONDS = 15 * 60


# ------------------------------------------------------------------------------------- running
def measure(cmd: list[str], args: argparse.Namespace, log: Path, timeout: float | None = None) -> dict:
    """One process (measuring.run_measured): wall, CPU, peak RSS, the JSON line it printed, its error."""
    m = run_measured(
        cmd,
        cwd=ROOT,
        interval=0.2,
        timeout=timeout or args.timeout,
        mem_guard_bytes=int(args.mem_guard_gb * GB),
    )
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{m.stdout}{m.stderr}\n{m.time_report}\n")
    res = {
        "wall_s": m.wall_s,
        "cpu_s": m.cpu_s,
        "peak_rss_bytes": m.peak_rss_bytes,
        "loadavg_before": m.loadavg_before,
    }
    if m.last_line().startswith("{"):
        res["info"] = json.loads(m.last_line())
    if m.stopped or m.returncode != 0:
        err = m.stderr.strip().splitlines()
        res["error"] = m.stopped or f"exit {m.returncode}: {err[-1] if err else ''}"
    return res


def clear_outputs(impl: str, out: Path) -> None:
    """Remove what an implementation wrote in an earlier run (none of them writes over a file)."""
    path = {"engine": out / "engine", "write": out / "write_scratch"}.get(impl, out / f"{impl}.parquet")
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def command(impl: str, book: Path, slice_dir: Path, out: Path) -> list[str]:
    """The command line of one implementation."""
    if impl == "scan":
        return [PY, str(BENCH / "scan_inputs.py"), "--input", str(book)]
    if impl == "engine":
        return [CROSSMARGIN, "run", "--as-of", AS_OF, "--input", str(book), "--out", str(out / "engine")]
    if impl == "write":
        scratch = out / "write_scratch"
        return [PY, str(BENCH / "write_outputs.py"), "--run", str(out / "engine"), "--scratch", str(scratch)]
    src = slice_dir if impl == "loop" else book
    dest = out / f"{impl}.parquet"
    return [PY, str(BENCH / f"impl_{impl}.py"), "--input", str(src), "--out", str(dest), "--as-of", AS_OF]


def adjust(impl: str, res: dict, n: int, n_slice: int) -> dict:
    """write: its in-process seconds are its wall; loop: its own seconds extrapolated to N accounts."""
    if "error" in res or "info" not in res:
        return res
    if impl == "write":
        res["process_wall_s"], res["wall_s"] = res["wall_s"], res["info"]["seconds"]
    if impl == "loop":
        res["slice_wall_s"], res["slice_cpu_s"] = res["wall_s"], res["cpu_s"]
        res["wall_s"] = res["cpu_s"] = res["info"]["seconds"] / n_slice * n  # one thread: CPU ~ wall
        res["extrapolated_from"] = n_slice
    return res


def best_of(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    res = min(ok, key=lambda r: r["wall_s"]) if ok else runs[0]
    if len(runs) > 1:
        res["all_walls_s"] = [r["wall_s"] for r in runs]
    return res


# ------------------------------------------------------------------------------------- one size
def run_size(n: int, args: argparse.Namespace, store: dict, log: Path) -> dict:
    print(f"\n=== {n:,} accounts ===", flush=True)
    book, generated = ensure_book(args.work, "sample", n, log)
    slice_dir = make_slice(book, n, args.slice_accounts, args.work)
    n_slice = int((slice_dir / ".complete").read_text())
    out = args.work / f"out_{n}"
    out.mkdir(parents=True, exist_ok=True)
    previous = {int(k): v for k, v in store.get("sizes", {}).items()}
    rec: dict = {
        "accounts": n,
        "inputs": input_stats(book),
        "generate": generated,
        "commit": git_label(ROOT),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "slice_accounts": n_slice,
        "runs": {},
    }
    warm_cache(book)
    warm_cache(slice_dir)
    for impl in [i for i in IMPLS if i in args.impls]:
        skip = pandas_skip_reason(n, previous) if impl == "pandas" else None
        if skip:
            rec["runs"][impl] = {"skipped": skip}
            print(f"  {impl:<7} {skip}", flush=True)
            continue
        timeout = PANDAS_MAX_SECONDS * 1.5 if impl == "pandas" else None
        runs = []
        for _ in range(args.repeat):
            clear_outputs(impl, out)
            runs.append(
                adjust(impl, measure(command(impl, book, slice_dir, out), args, log, timeout), n, n_slice)
            )
        res = rec["runs"][impl] = best_of(runs)
        if impl == "engine" and "error" not in res:
            res["outputs"] = output_rows(out / "engine")
        print(f"  {impl:<7} {line_for(res, n)}", flush=True)
    if n <= args.verify_max and not args.no_verify:
        rec["verification"] = verify(out, rec)
    return rec


def line_for(res: dict, n: int) -> str:
    if "error" in res:
        return f"FAILED: {res['error']}"
    peak = (res.get("peak_rss_bytes") or 0) / GB
    ext = f" (extrapolated from {res['extrapolated_from']:,})" if "extrapolated_from" in res else ""
    return (
        f"{fmt_s(res['wall_s']):>9} s  cpu {fmt_s(res.get('cpu_s')):>9} s  {n / res['wall_s']:>12,.0f} acc/s  "
        f"peak {peak:6.2f} GB  load {res['loadavg_before']:.1f}{ext}"
    )


def output_rows(run: Path) -> dict:
    """Rows of each output table of a finished run and its data issues by code."""
    import polars as pl

    tables = ("account_risk", "actions", "data_issues")
    rows = {t: pl.scan_parquet(run / f"{t}.parquet").select(pl.len()).collect().item() for t in tables}
    issues = pl.read_parquet(run / "data_issues.parquet")
    if issues.height:
        by = issues.group_by(pl.col("code").cast(pl.String)).len().sort("code")
        rows["data_issues_by_code"] = {k: int(v) for k, v in by.iter_rows()}
    return rows


def pandas_skip_reason(n: int, previous: dict) -> str | None:
    """Why pandas is not run at n, extrapolating linearly from the largest smaller size it ran at."""
    done = {
        k: v["runs"]["pandas"]
        for k, v in previous.items()
        if k < n and "wall_s" in v["runs"].get("pandas", {})
    }
    if not done:
        return None
    k = max(done)
    rss, secs = (done[k]["peak_rss_bytes"] or 0) * n / k, done[k]["wall_s"] * n / k
    if rss > PANDAS_MAX_RSS_GB * GB:
        return f"skipped: ~{rss / GB:.0f} GB expected (> {PANDAS_MAX_RSS_GB:.0f} GB), extrapolated from {k:,}"
    if secs > PANDAS_MAX_SECONDS:
        return f"skipped: ~{secs / 60:.0f} min expected (> 15 min), extrapolated from {k:,}"
    return None


# ------------------------------------------------------------------------------------- huge
def run_huge(n: int, args: argparse.Namespace, log: Path) -> dict:
    print(f"\n=== huge run: {n:,} accounts (generate, scan, engine) ===", flush=True)
    book, generated = ensure_book(args.work, "sample", n, log)
    warm_cache(book)
    out = args.work / f"out_{n}"
    out.mkdir(parents=True, exist_ok=True)
    rec = {
        "accounts": n,
        "inputs": input_stats(book),
        "generate": generated,
        "commit": git_label(ROOT),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": {},
    }
    for impl in ("scan", "engine"):
        clear_outputs(impl, out)
        res = rec["runs"][impl] = measure(command(impl, book, book, out), args, log, timeout=24 * 3600)
        print(f"  {impl:<7} {line_for(res, n)}", flush=True)
    return rec


# ------------------------------------------------------------------------------------- the README sections
def wall(runs: dict, impl: str) -> float | None:
    r = runs.get(impl, {})
    return r.get("wall_s") if "error" not in r else None


def cell(runs: dict, impl: str) -> str:
    r = runs.get(impl, {})
    return r.get("skipped") or (f"failed: {r['error']}" if "error" in r else fmt_s(r.get("wall_s")))


def peak_gb(res: dict) -> float | None:
    return res["peak_rss_bytes"] / GB if res.get("peak_rss_bytes") and "error" not in res else None


def met(value: float | None, target: float, at_least: bool = False) -> str:
    if value is None:
        return "-"
    return "met" if (value >= target if at_least else value <= target) else "**missed**"


def size_rows(rec: dict) -> tuple[list[object], list[object]]:
    """One size's row of the timings table and of the targets table."""
    runs, n = rec["runs"], rec["accounts"]
    scan, write, eng, duck = (wall(runs, k) for k in ("scan", "write", "engine", "duckdb"))
    floor = scan + write if scan and write else None
    peak = peak_gb(runs.get("engine", {}))
    per_m = peak / (n / 1e6) if peak else None
    timings = [f"{n:,}", f"{rec['inputs']['rows'].get('balances', 0):,}"]
    timings += [cell(runs, k) for k in ("scan", "write")] + [fmt_s(floor), cell(runs, "engine")]
    timings += [fmt_s(runs.get("engine", {}).get("cpu_s"))] + [
        cell(runs, k) for k in ("duckdb", "pandas", "loop")
    ]
    timings.append(f"{peak:.2f}" if peak else "-")
    agree = [
        f"{k} {'agrees' if v.get('ok') else '**disagrees**'}" for k, v in rec.get("verification", {}).items()
    ]
    targets = [
        f"{n:,}",
        f"{ratio(eng, floor)} ({met(eng / floor if eng and floor else None, TARGET_FLOOR_RATIO)})",
        f"{ratio(duck, eng)} ({met(duck / eng if eng and duck else None, TARGET_DUCKDB, at_least=True)})",
        f"{per_m:.3f} ({met(per_m, TARGET_GB_PER_M)})" if per_m else "-",
        (runs.get("engine", {}).get("outputs") or {}).get("data_issues", "-"),
        ", ".join(agree) or "-",
        rec["commit"],
        rec["measured_at"],
    ]
    return timings, targets


def sizes_section(store: dict) -> str:
    rows = [size_rows(store["sizes"][k]) for k in sorted(store.get("sizes", {}), key=int)]
    if not rows:
        return "_Nothing measured yet: run `benchmarks/run_benchmarks.py`._"
    timings = [
        "accounts",
        "balance rows",
        "scan",
        "write",
        "floor",
        "engine",
        "engine CPU s",
        "DuckDB",
        "pandas",
    ]
    targets = [f"engine / floor (≤ {TARGET_FLOOR_RATIO:g})", f"DuckDB / engine (≥ {TARGET_DUCKDB:g})"]
    targets += [
        f"GB per M accounts (≤ {TARGET_GB_PER_M:g})",
        "data issues",
        "references",
        "commit",
        "measured",
    ]
    return "\n\n".join(
        [
            "Wall seconds, launch to exit (best of the repetitions); the engine's peak RSS in GB (1024³ bytes); "
            f"{machine_line(store.get('machine', {}))}.",
            markdown_table([*timings, "loop (extrapolated)", "engine peak GB"], [t for t, _ in rows]),
            markdown_table(["accounts", *targets], [t for _, t in rows]),
        ]
    )


def huge_section(store: dict) -> str:
    huge = store.get("huge")
    if not huge:
        return "_Not measured yet: run `benchmarks/run_benchmarks.py --huge 30000000`._"
    n, runs, inputs = huge["accounts"], huge["runs"], huge["inputs"]
    peak = peak_gb(runs.get("engine", {}))
    per_m = f"{peak / (n / 1e6):.3f} ({met(peak / (n / 1e6), TARGET_GB_PER_M)})" if peak else "-"
    row = [f"{n:,}", f"{inputs['rows'].get('balances', 0):,}", f"{inputs['bytes'] / GB:.1f}"]
    row += [fmt_s((huge.get("generate") or {}).get("wall_s")), cell(runs, "scan"), cell(runs, "engine")]
    row += [f"{peak:.2f}" if peak else "-", per_m, huge["commit"], huge["measured_at"]]
    header = ["accounts", "balance rows", "parquet GiB", "generate s", "scan s", "engine s", "engine peak GB"]
    return markdown_table([*header, f"GB per M (≤ {TARGET_GB_PER_M:g})", "commit", "measured"], [row])


def write_sections(store: dict) -> None:
    write_section("sizes", sizes_section(store))
    write_section("huge", huge_section(store))


# ------------------------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 5_000_000, 10_000_000])
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--impls", nargs="+", default=IMPLS, choices=IMPLS)
    ap.add_argument("--huge", type=int, default=0, help="only generate + scan + run the engine at this size")
    ap.add_argument("--slice-accounts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    ap.add_argument("--verify-max", type=int, default=1_000_000, help="verify references at sizes up to this")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--mem-guard-gb", type=float, default=20.0, help="stop a run whose memory exceeds this")
    ap.add_argument("--report-only", action="store_true", help="rewrite the README sections from the JSON")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "benchmark.log"
    store = load_json(RESULTS)
    if args.huge and not args.report_only:
        store["huge"] = run_huge(args.huge, args, log)
    elif not args.report_only:
        store["machine"] = machine()
        for n in sorted(args.sizes):
            rec = run_size(n, args, store, log)
            old = store.setdefault("sizes", {}).get(str(n))
            if old and set(args.impls) != set(IMPLS):  # a partial rerun keeps the other measurements
                rec["runs"] = {k: v for k, v in {**old["runs"], **rec["runs"]}.items()}
                rec["verification"] = {**old.get("verification", {}), **rec.get("verification", {})}
            store["sizes"][str(n)] = rec
            save_json(RESULTS, store)
            write_sections(store)
    save_json(RESULTS, store)
    write_sections(store)
    print(
        f"\n{sizes_section(store)}\n\n{huge_section(store)}\n\nwrote {RESULTS.name} and {README.name}'s sections"
    )


if __name__ == "__main__":
    main()
