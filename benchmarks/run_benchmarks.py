"""Benchmark the nightly job against its floor and three reference implementations.

For each size N (accounts) it generates inputs with `crossmargin sample --accounts N --seed 1`
(reused when present), then runs, each in its own subprocess under `/usr/bin/time -v` (wall time
and peak RSS):

  scan    polars reads every column of every input parquet file (scan_inputs.py)
  engine  the full job: `crossmargin run --as-of ... --input ... --out ...` (validation, quantities,
          levels, decisions, actions, data issues, manifest, all outputs written)
  write   the engine's own output frames (account_risk, actions, data_issues), loaded into memory
          first, written as the job writes them (write_outputs.py: the job's settings into an
          outputs.OutputFile; only the writes are timed, in-process). floor = scan + write:
          reading every input and writing the outputs.
  duckdb  §1 quantities + levels in DuckDB SQL (impl_duckdb.py), written to parquet
  pandas  the same in vectorized pandas (impl_pandas.py); skipped where it would need > 16 GB or
          more than 15 min (extrapolated from the previous size)
  loop    the same as a per-account Python loop (impl_loop.py) on a ~100k-account slice of the
          same data, its time extrapolated linearly to N

It verifies that every reference agrees with the engine's account_risk (at sizes <= --verify-max),
prints a table, stores the raw numbers in benchmarks/results.json (merged across invocations, so
sizes can be run separately) and regenerates benchmarks/RESULTS.md and
benchmarks/time_vs_accounts.png from everything stored.

    python benchmarks/run_benchmarks.py                      # 1M, 5M, 10M
    python benchmarks/run_benchmarks.py --sizes 1000000
    python benchmarks/run_benchmarks.py --huge 30000000      # generate + engine only, peak RSS
    python benchmarks/run_benchmarks.py --report-only        # regenerate RESULTS.md + png
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from measuring import run_measured

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
CROSSMARGIN = str(Path(sys.executable).parent / "crossmargin")
AS_OF = "2025-01-21T10:00:00Z"
RESULTS_JSON = BENCH / "results.json"
RESULTS_MD = BENCH / "RESULTS.md"
PLOT = BENCH / "time_vs_accounts.png"
IMPLS = ["scan", "write", "engine", "duckdb", "pandas", "loop"]
RUN_ORDER = ["scan", "engine", "write", "duckdb", "pandas", "loop"]  # write needs the engine's outputs
REFS = ["duckdb", "pandas", "loop"]
GB = 1024**3

# Targets (checked at every size). pandas and the loop are reported, not targets.
TARGET_FLOOR_RATIO = 2.0  # engine wall <= 2 x floor (scan + write)
TARGET_SPEEDUP = {"duckdb": 1.5}  # reference wall / engine wall >=
TARGET_RSS_GB_PER_M = 0.5  # engine peak RSS per million accounts <=
PANDAS_MAX_RSS_GB = 16.0
PANDAS_MAX_SECONDS = 15 * 60

QUANTITIES = [
    "total_asset_usdt", "total_liability_usdt", "collateral_usdt", "net_equity_usdt", "net_collateral_usdt",
    "maintenance_margin_usdt", "initial_margin_usdt", "open_order_loss_usdt",
]  # fmt: skip
LEVELS = [
    "classic_margin_level", "classic_collateral_margin_level", "pro_margin_level_old", "pro_margin_level_new",
    "pro_margin_level", "margin_level",
]  # fmt: skip
REL_TOL = 1e-9


# ------------------------------------------------------------------------------------- running
def measure(cmd: list[str], timeout: float, mem_guard_gb: float, log: Path) -> dict:
    """Run cmd (measuring.run_measured): wall time, CPU time, peak RSS, the JSON line it printed."""
    m = run_measured(cmd, cwd=ROOT, interval=0.2, timeout=timeout, mem_guard_bytes=int(mem_guard_gb * GB))
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{m.stdout}{m.stderr}\n{m.time_report}\n")
    info = None
    for line in reversed(m.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                info = json.loads(line)
                break
            except json.JSONDecodeError:
                pass
    res = {
        "wall_s": m.wall_s,
        "cpu_s": m.cpu_s,
        "peak_rss_bytes": m.peak_rss_bytes,
        "returncode": m.returncode,
        "loadavg_before": m.loadavg_before,
    }
    if info and "seconds" in info:
        res["internal_s"] = info["seconds"]
    if info:
        res["info"] = info
    if m.stopped:
        res["error"] = m.stopped
    elif m.returncode != 0:
        err = m.stderr.strip()
        res["error"] = f"exit {m.returncode}: {err.splitlines()[-1] if err else ''}"
    return res


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def git_commit() -> str:
    """HEAD, and whether src/ had uncommitted changes (the editable install runs the work tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    src = subprocess.run(
        ["git", "log", "-1", "--format=%h", "--", "src"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head} (src/ of {src})" + (" + uncommitted src/ changes" if dirty else "")


def engine_commit(commit: str) -> str:
    """The part of a `commit_label` that names the engine measured: the last commit of src/ (and
    whether src/ had uncommitted changes); a label of another form is its own engine."""
    return commit.split(" (src/ of ", 1)[1] if " (src/ of " in commit else commit


# ------------------------------------------------------------------------------------- data
def ensure_data(n: int, work: Path, log: Path) -> tuple[Path, dict | None]:
    d = work / f"data_{n}"
    marker = d / ".complete"
    if marker.exists():
        return d, json.loads(marker.read_text() or "{}")
    if d.exists():
        shutil.rmtree(d)
    print(f"  generating {n:,} accounts -> {d}", flush=True)
    res = measure(
        [CROSSMARGIN, "sample", "--accounts", str(n), "--seed", "1", "--out", str(d)], 24 * 3600, 23.0, log
    )
    if "error" in res:
        raise SystemExit(f"crossmargin sample failed for {n}: {res['error']} (see {log})")
    gen = {"wall_s": res["wall_s"], "peak_rss_bytes": res["peak_rss_bytes"]}
    marker.write_text(json.dumps(gen))
    return d, gen


def input_stats(d: Path) -> dict:
    import pyarrow.parquet as pq

    rows = {}
    size = 0
    for f in sorted(d.glob("*.parquet")):
        rows[f.stem] = pq.ParquetFile(f).metadata.num_rows
        size += f.stat().st_size
    return {"rows": rows, "bytes": size}


def make_slice(data: Path, n: int, slice_n: int, work: Path) -> Path:
    """Every k-th account (by account_id) with all its rows; reference tables copied whole."""
    import polars as pl

    k = max(1, n // slice_n)
    s = work / f"slice_{n}_every{k}"
    if (s / ".complete").exists():
        return s
    s.mkdir(parents=True, exist_ok=True)
    ids = pl.scan_parquet(data / "accounts.parquet").select("account_id").sort("account_id").gather_every(k)
    ids_df = ids.collect()
    ids_df.lazy().join(pl.scan_parquet(data / "accounts.parquet"), on="account_id").sort(
        "account_id"
    ).sink_parquet(s / "accounts.parquet")
    for t in ["balances", "open_orders", "mode_switches"]:
        pl.scan_parquet(data / f"{t}.parquet").join(ids_df.lazy(), on="account_id", how="semi").sink_parquet(
            s / f"{t}.parquet"
        )
    for t in ["prices", "collateral_tiers", "liability_brackets"]:
        shutil.copy(data / f"{t}.parquet", s / f"{t}.parquet")
    (s / ".complete").write_text(str(ids_df.height))
    return s


def warm_cache(d: Path) -> None:
    for f in d.glob("*.parquet"):
        with f.open("rb") as fh:
            while fh.read(1 << 24):
                pass


# ------------------------------------------------------------------------------------- checks
def compare(engine_risk: Path, ref: Path) -> dict:
    """Max relative difference of the §1 quantities and levels, reference vs engine account_risk.

    Relative to the magnitude of the operands (|a| + |b| for a - b), so a net equity that cancels
    to ~0 is not flagged for rounding noise; +inf must match +inf exactly.
    """
    import polars as pl

    cols = QUANTITIES + LEVELS
    e = pl.scan_parquet(engine_risk).select(["account_id", *cols])
    r = pl.scan_parquet(ref).select(["account_id", *cols])
    n_engine = e.select(pl.len()).collect().item()
    n_ref = r.select(pl.len()).collect().item()
    j = e.join(r, on="account_id", how="inner", suffix="_ref")
    a = {c: pl.col(c) for c in cols}
    scale_q = {
        "net_equity_usdt": pl.col("total_asset_usdt").abs() + pl.col("total_liability_usdt").abs(),
        "net_collateral_usdt": pl.col("collateral_usdt").abs() + pl.col("total_liability_usdt").abs(),
    }
    mm = pl.col("maintenance_margin_usdt").abs()
    old_scale = (pl.col("total_asset_usdt").abs() + pl.col("total_liability_usdt").abs()) / mm
    new_scale = (
        pl.col("collateral_usdt").abs()
        + pl.col("total_liability_usdt").abs()
        + pl.col("open_order_loss_usdt").abs()
    ) / mm
    scale = {
        **scale_q,
        "pro_margin_level_old": old_scale,
        "pro_margin_level_new": new_scale,
        "pro_margin_level": pl.max_horizontal(old_scale, new_scale),
        "margin_level": pl.max_horizontal(old_scale, new_scale, pl.col("margin_level").abs()),
    }
    exprs = []
    for c in cols:
        x, y = a[c], pl.col(f"{c}_ref")
        s = pl.max_horizontal(x.abs(), y.abs(), scale.get(c, pl.lit(0.0)))
        both_inf = x.is_infinite() & y.is_infinite() & (x == y)
        rel = (
            pl.when(both_inf | (x == y))
            .then(0.0)
            .when(x.is_infinite() | y.is_infinite() | x.is_nan() | y.is_nan() | y.is_null())
            .then(float("inf"))
            .otherwise((x - y).abs() / s)
        )
        exprs.append(rel.max().alias(c))
    exprs.append(pl.len().alias("__matched"))
    row = j.select(exprs).collect().row(0, named=True)
    matched = row.pop("__matched")
    worst = max(row, key=lambda c: row[c])
    return {
        "engine_rows": n_engine,
        "ref_rows": n_ref,
        "matched_rows": matched,
        "max_rel_diff": row[worst],
        "worst_column": worst,
        "per_column": row,
        "ok": bool(row[worst] <= REL_TOL and matched == min(n_engine, n_ref)),
    }


# ------------------------------------------------------------------------------------- one size
def run_size(n: int, args: argparse.Namespace, store: dict, log: Path) -> dict:
    work: Path = args.work
    print(f"\n=== {n:,} accounts ===", flush=True)
    data, gen = ensure_data(n, work, log)
    stats = input_stats(data)
    slice_dir = make_slice(data, n, args.slice_accounts, work)
    n_slice = int((slice_dir / ".complete").read_text())
    out = work / f"out_{n}"
    out.mkdir(parents=True, exist_ok=True)
    previous = {int(k): v for k, v in store.get("sizes", {}).items()}
    rec: dict = {
        "accounts": n,
        "inputs": stats,
        "generate": gen,
        "commit": git_commit(),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "slice_accounts": n_slice,
        "runs": {},
    }
    warm_cache(data)
    warm_cache(slice_dir)
    guard = args.mem_guard_gb
    for impl in [i for i in RUN_ORDER if i in args.impls]:
        res = None
        if impl == "scan":
            cmd = [PY, str(BENCH / "scan_inputs.py"), "--input", str(data)]
        elif impl == "engine":
            shutil.rmtree(out / "engine", ignore_errors=True)
            cmd = [CROSSMARGIN, "run", "--as-of", AS_OF, "--input", str(data), "--out", str(out / "engine")]
            if args.buckets:
                cmd += ["--buckets", str(args.buckets)]
        elif impl == "write":
            scratch = out / "write_scratch"
            shutil.rmtree(scratch, ignore_errors=True)
            cmd = [
                PY,
                str(BENCH / "write_outputs.py"),
                "--run",
                str(out / "engine"),
                "--scratch",
                str(scratch),
            ]
        elif impl in ("duckdb", "pandas"):
            dest = out / f"{impl}.parquet"
            dest.unlink(missing_ok=True)
            cmd = [
                PY,
                str(BENCH / f"impl_{impl}.py"),
                "--input",
                str(data),
                "--out",
                str(dest),
                "--as-of",
                AS_OF,
            ]
            if impl == "pandas":
                skip = pandas_skip_reason(n, previous, rec)
                if skip:
                    res = {"skipped": skip}
        elif impl == "loop":
            dest = out / "loop.parquet"
            dest.unlink(missing_ok=True)
            cmd = [
                PY,
                str(BENCH / "impl_loop.py"),
                "--input",
                str(slice_dir),
                "--out",
                str(dest),
                "--as-of",
                AS_OF,
            ]
        else:
            raise SystemExit(f"unknown implementation {impl}")
        if res is None:
            res_extra = {"buckets": args.buckets} if impl == "engine" else {}
            timeout = PANDAS_MAX_SECONDS * 1.5 if impl == "pandas" else args.timeout
            runs = [measure(cmd, timeout, guard, log) for _ in range(args.repeat)]
            if impl == "write":
                for r in runs:
                    if "error" not in r:
                        r["process_wall_s"] = r["wall_s"]
                        r["wall_s"] = r["internal_s"]  # the writes alone (loading is not part of the floor)
                        r["process_cpu_s"] = r.pop("cpu_s", None)  # the whole process's, loading included
            ok = [r for r in runs if "error" not in r]
            res = min(ok, key=lambda r: r["wall_s"]) if ok else runs[0]
            if len(runs) > 1:
                res["all_walls_s"] = [r["wall_s"] for r in runs]
            if impl == "engine" and "error" not in res:
                res["outputs"] = output_rows(out / "engine")
            if impl == "loop" and "error" not in res:
                per_account = res["internal_s"] / n_slice
                res["slice_wall_s"] = res["wall_s"]
                res["wall_s"] = per_account * n  # extrapolated, see README
                res["slice_cpu_s"] = res.get("cpu_s")
                res["cpu_s"] = per_account * n  # single-threaded Python: CPU time ~ wall time
                res["extrapolated_from"] = n_slice
            res.update(res_extra)
        rec["runs"][impl] = res
        print("  " + line_for(impl, n, res, rec["runs"].get("engine")), flush=True)
        if impl == "engine" and "outputs" in res:
            print(f"          outputs: {res['outputs']}", flush=True)
    if n <= args.verify_max and not args.no_verify:
        checked = verify(out, rec)
        if checked:
            rec["verification"] = checked
    return rec


def output_rows(run: Path) -> dict:
    """Rows of each output table of a finished run (and data issues by rule), to check what was scored."""
    import polars as pl
    import pyarrow.parquet as pq

    tables = ("account_risk", "actions", "data_issues")
    rows = {t: pq.ParquetFile(run / f"{t}.parquet").metadata.num_rows for t in tables}
    issues = pl.read_parquet(run / "data_issues.parquet")
    if issues.height:
        by = issues.group_by("code").len().sort("code")
        rows["data_issues_by_code"] = {str(k): int(v) for k, v in by.iter_rows()}
    return rows


def floor_s(runs: dict) -> float | None:
    """scan + write wall seconds, when both were measured."""
    scan, write = runs.get("scan", {}), runs.get("write", {})
    if "wall_s" in scan and "wall_s" in write and "error" not in scan and "error" not in write:
        return scan["wall_s"] + write["wall_s"]
    return None


def pandas_skip_reason(n: int, previous: dict, rec: dict) -> str | None:
    # Largest smaller size at which pandas ran, in this invocation's store.
    done = {
        k: v["runs"]["pandas"]
        for k, v in previous.items()
        if k < n and "wall_s" in v["runs"].get("pandas", {})
    }
    if not done:
        return None
    k = max(done)
    p = done[k]
    f = n / k
    rss = (p["peak_rss_bytes"] or 0) * f
    secs = p["wall_s"] * f
    if rss > PANDAS_MAX_RSS_GB * GB:
        return f"skipped: ~{rss / GB:.0f} GB expected (> {PANDAS_MAX_RSS_GB:.0f} GB), extrapolated from {k:,}"
    if secs > PANDAS_MAX_SECONDS:
        return f"skipped: ~{secs / 60:.0f} min expected (> 15 min), extrapolated from {k:,}"
    return None


def line_for(impl: str, n: int, res: dict, engine: dict | None) -> str:
    if "skipped" in res:
        return f"{impl:<7} {res['skipped']}"
    if "error" in res:
        return f"{impl:<7} FAILED: {res['error']}"
    extra = ""
    if engine and "wall_s" in engine and impl != "engine" and "error" not in engine:
        extra = f"  ratio to engine {res['wall_s'] / engine['wall_s']:.2f}x"
    ext = f" (extrapolated from {res['extrapolated_from']:,})" if "extrapolated_from" in res else ""
    if engine and engine.get("cpu_s") and res.get("cpu_s") and impl != "engine" and "error" not in engine:
        extra += f" (cpu {res['cpu_s'] / engine['cpu_s']:.2f}x)"
    rss = res["peak_rss_bytes"] / GB if res.get("peak_rss_bytes") else float("nan")
    return (
        f"{impl:<7} {fmt_s(res['wall_s']):>9} s  cpu {fmt_s(res.get('cpu_s')):>9} s  "
        f"{n / res['wall_s']:>12,.0f} acc/s  peak {rss:6.2f} GB  load {res['loadavg_before']:.1f}{ext}{extra}"
    )


def verify(out: Path, rec: dict) -> dict:
    risk = out / "engine" / "account_risk.parquet"
    result = {}
    if not risk.exists():
        return {"error": "engine produced no account_risk.parquet"}
    for impl in REFS:
        ref = out / f"{impl}.parquet"
        if impl in rec["runs"] and "wall_s" in rec["runs"][impl] and ref.exists():
            c = compare(risk, ref)
            result[impl] = c
            state = "OK" if c["ok"] else "MISMATCH"
            print(
                f"  verify {impl:<7} {state}: max rel diff {c['max_rel_diff']:.3g} ({c['worst_column']}), "
                f"{c['matched_rows']:,} accounts matched (engine {c['engine_rows']:,}, ref {c['ref_rows']:,})",
                flush=True,
            )
    return result


# ------------------------------------------------------------------------------------- huge
def run_huge(n: int, args: argparse.Namespace, log: Path) -> dict:
    print(f"\n=== huge run: {n:,} accounts (generate + engine) ===", flush=True)
    data, gen = ensure_data(n, args.work, log)
    warm_cache(data)
    rec = {
        "accounts": n,
        "inputs": input_stats(data),
        "generate": gen,
        "commit": git_commit(),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "buckets": args.buckets,
        "runs": {},
    }
    out = args.work / f"out_{n}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for impl in ("scan", "engine"):
        if impl == "scan":
            cmd = [PY, str(BENCH / "scan_inputs.py"), "--input", str(data)]
        else:
            cmd = [CROSSMARGIN, "run", "--as-of", AS_OF, "--input", str(data), "--out", str(out / "engine")]
            if args.buckets:  # 0: the engine's choice
                cmd += ["--buckets", str(args.buckets)]
        res = measure(cmd, 24 * 3600, args.mem_guard_gb, log)
        rec["runs"][impl] = res
        print("  " + line_for(impl, n, res, rec["runs"].get("engine")), flush=True)
    return rec


# ------------------------------------------------------------------------------------- report
def machine() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for mod in ("polars", "duckdb", "pandas", "pyarrow", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = "not installed"
    try:
        free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        free = "?"
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "free_h": free,
        "kernel": platform.release(),
        "versions": versions,
    }


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def targets_for(rec: dict) -> list[tuple[str, str, str, str, bool | None]]:
    """(target, required, measured, ceiling, met) per target.

    ceiling: the ratio the engine would reach if it ran as fast as its floor (reference wall /
    floor wall): a speed-up target above it cannot be met by any engine that reads all its inputs
    and writes its outputs.
    """
    runs = rec["runs"]
    eng = runs.get("engine", {})
    rows: list[tuple[str, str, str, str, bool | None]] = []
    e = eng.get("wall_s") if "error" not in eng else None
    floor = floor_s(runs)
    if e and floor:
        r = e / floor
        rows.append(("engine wall / floor (scan + write)", f"<= {TARGET_FLOOR_RATIO:g}x", f"{r:.2f}x", "1x",
                     r <= TARGET_FLOOR_RATIO))  # fmt: skip
    for impl, need in TARGET_SPEEDUP.items():
        ref = runs.get(impl, {})
        if e and "wall_s" in ref and "error" not in ref:
            r = ref["wall_s"] / e
            ceiling = f"{ref['wall_s'] / floor:.2f}x" if floor else "-"
            rows.append((f"{impl} wall / engine wall", f">= {need:g}x", f"{r:.2f}x", ceiling, r >= need))
        elif e:
            why = ref.get("skipped") or ref.get("error") or "not run"
            rows.append((f"{impl} wall / engine wall", f">= {need:g}x", why, "-", None))
    if eng.get("peak_rss_bytes") and "error" not in eng:
        g = eng["peak_rss_bytes"] / GB / (rec["accounts"] / 1e6)
        rows.append(("engine peak RSS per million accounts", f"<= {TARGET_RSS_GB_PER_M:g} GB", f"{g:.3f} GB", "",
                     g <= TARGET_RSS_GB_PER_M))  # fmt: skip
    return rows


def headline(sizes: dict) -> list[str]:
    """One row per size: floor, engine, DuckDB, the two ratios, peak RSS (total and per million)."""
    out = [
        "| accounts | scan s | write s | floor s | engine s | DuckDB s | engine / floor | DuckDB / engine "
        "| engine peak RSS GB | GB per million accounts | data issues | load avg before engine |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sorted(sizes):
        runs = sizes[n]["runs"]

        def wall(impl: str, runs: dict = runs) -> float | None:
            r = runs.get(impl, {})
            return r.get("wall_s") if "error" not in r else None

        eng, duck, floor = wall("engine"), wall("duckdb"), floor_s(runs)
        e = runs.get("engine", {})
        rss = e.get("peak_rss_bytes") if eng else None
        issues = (e.get("outputs") or {}).get("data_issues")
        out.append(
            f"| {n:,} | {fmt_s(wall('scan'))} | {fmt_s(wall('write'))} | {fmt_s(floor)} | {fmt_s(eng)} | "
            f"{fmt_s(duck)} | {f'{eng / floor:.2f}x' if eng and floor else '-'} | "
            f"{f'{duck / eng:.2f}x' if eng and duck else '-'} | {f'{rss / GB:.2f}' if rss else '-'} | "
            f"{f'{rss / GB / (n / 1e6):.3f}' if rss else '-'} | {'-' if issues is None else f'{issues:,}'} | "
            f"{e.get('loadavg_before', 0):.1f} |"
        )
    return out


def write_report(store: dict) -> None:
    sizes = {int(k): v for k, v in store.get("sizes", {}).items()}
    m = store.get("machine") or machine()
    lines = [
        "# crossmargin benchmark results",
        "",
        "Generated by `benchmarks/run_benchmarks.py` from `benchmarks/results.json`; do not edit by hand.",
        f"Report written {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}; as_of of every run: `{AS_OF}`.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs), kernel {m['kernel']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "- Memory (`free -h`):",
        "",
        "```",
        m["free_h"],
        "```",
        "",
        "## What is measured",
        "",
        "Every number is one subprocess, timed from launch to exit (wall, so interpreter start-up and",
        "imports are included) with peak RSS from `/usr/bin/time -v`, on inputs already in the page cache.",
        "`scan` reads and decodes every column of every input file. `write` writes the engine's own output",
        "frames (`account_risk`, `actions`, `data_issues`, loaded into memory first) as the job writes them",
        "(`crossmargin.outputs.PARQUET_OPTIONS` into an `outputs.OutputFile`: hashed as written, past the",
        "page cache where the system allows it, fsynced); only the writes are timed, in-process.",
        "The **floor** is `scan + write`: reading every input and writing the outputs, nothing computed.",
        "`engine` is the full job (`crossmargin run`: validation, quantities, levels, decisions, actions,",
        "all outputs and the manifest written). `duckdb`, `pandas` and `loop` compute only the quantities",
        "and six levels of the rules (docs/rules.md), with as-of price/tier selection, and write them to",
        "parquet. `loop` runs on a ~100k-account slice of the same data; its time (read + loop + write,",
        "imports excluded) is extrapolated linearly to N and its peak RSS is the slice's.",
        "Ratio = implementation wall / engine wall (> 1: engine faster).",
        "",
    ]
    if sizes:
        lines += [
            "## Floor, engine, DuckDB",
            "",
            f"Targets: engine ≤ {TARGET_FLOOR_RATIO:g}× floor; DuckDB / engine ≥ {TARGET_SPEEDUP['duckdb']:g};",
            f"engine peak RSS ≤ {TARGET_RSS_GB_PER_M:g} GB per million accounts. pandas and the loop are reported",
            "below, not targets. The best of the repetitions is kept for each implementation (all walls in",
            "`results.json`). Data issues: rows of the engine's `data_issues` output.",
            "",
            *headline(sizes),
            "",
            "## Inputs",
            "",
            "| accounts | balance rows | open orders | mode switches | parquet size | generate wall |",
        ]
        lines += ["|---:|---:|---:|---:|---:|---:|"]
        for n in sorted(sizes):
            rec = sizes[n]
            rows = rec["inputs"]["rows"]
            gen = rec.get("generate") or {}
            lines.append(
                f"| {n:,} | {rows.get('balances', 0):,} | {rows.get('open_orders', 0):,} | "
                f"{rows.get('mode_switches', 0):,} | {rec['inputs']['bytes'] / 2**20:,.0f} MiB | "
                f"{fmt_s(gen.get('wall_s')) + ' s' if gen.get('wall_s') else 'not recorded (reused inputs)'} |"
            )
        lines += ["", "## Timings", ""]
        lines += [
            (
                "| accounts | implementation | wall s | accounts/s | peak RSS GB | ratio to engine | cpu s | cpu ratio "
                "| load avg before | note |"
            )
        ]
        lines += ["|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for n in sorted(sizes):
            rec = sizes[n]
            eng = rec["runs"].get("engine", {})
            for impl in IMPLS:
                res = rec["runs"].get(impl)
                if res is None:
                    continue
                if "skipped" in res or "error" in res:
                    lines.append(
                        f"| {n:,} | {impl} | - | - | - | - | - | - | - | "
                        f"{res.get('skipped') or 'FAILED: ' + res['error']} |"
                    )
                    continue
                ratio = (
                    f"{res['wall_s'] / eng['wall_s']:.2f}x"
                    if impl != "engine" and "wall_s" in eng and "error" not in eng
                    else ""
                )
                note = []
                if impl == "engine" and res.get("buckets"):
                    note.append(f"--buckets {res['buckets']}")
                if impl == "write" and res.get("process_wall_s"):
                    note.append(
                        f"the writes only, timed in-process (process wall {fmt_s(res['process_wall_s'])} s)"
                    )
                if "extrapolated_from" in res:
                    note.append(
                        f"extrapolated from {res['extrapolated_from']:,} accounts ({fmt_s(res['internal_s'])} s)"
                    )
                rss = f"{res['peak_rss_bytes'] / GB:.2f}" if res.get("peak_rss_bytes") else "-"
                cpu_ratio = (
                    f"{res['cpu_s'] / eng['cpu_s']:.2f}x"
                    if impl != "engine" and res.get("cpu_s") and eng.get("cpu_s") and "error" not in eng
                    else ""
                )
                lines.append(
                    f"| {n:,} | {impl} | {fmt_s(res['wall_s'])} | {n / res['wall_s']:,.0f} | {rss} | {ratio} | "
                    f"{fmt_s(res.get('cpu_s'))} | {cpu_ratio} | {res.get('loadavg_before', 0):.1f} | "
                    f"{'; '.join(note)} |"
                )
        lines += ["", "## Targets", ""]
        lines += [
            "*Ceiling*: the ratio the engine would reach if the whole job took no longer than its floor",
            "(reference wall / floor). A speed-up target above its ceiling cannot be met by an engine that",
            "reads every input column and writes its outputs, however fast the rest of it is.",
            "",
        ]
        for n in sorted(sizes):
            lines += [
                f"**{n:,} accounts** (commit {sizes[n].get('commit', '?')}, {sizes[n].get('measured_at', '')})",
                "",
            ]
            lines += [
                "| target | required | measured | ceiling (engine as fast as the floor) | verdict |",
                "|---|---:|---:|---:|---|",
            ]
            for name, need, got, ceiling, ok in targets_for(sizes[n]):
                lines.append(f"| {name} | {need} | {got} | {ceiling} | {verdict(ok)} |")
            lines.append("")
        lines += ["## Agreement with the engine", ""]
        lines += [
            f"Each reference's quantities and levels against the engine's `account_risk` (tolerance {REL_TOL:g},",
            "relative to the operands' magnitude; +inf must match +inf).",
            "",
            "| accounts | implementation | accounts compared | max rel diff | worst column | verdict |",
            "|---:|---|---:|---:|---|---|",
        ]
        for n in sorted(sizes):
            for impl, c in (sizes[n].get("verification") or {}).items():
                if not isinstance(c, dict) or "max_rel_diff" not in c:
                    lines.append(f"| {n:,} | {impl} | - | - | - | {c} |")
                    continue
                lines.append(
                    f"| {n:,} | {impl} | {c['matched_rows']:,} | {c['max_rel_diff']:.3g} | {c['worst_column']} | "
                    f"{'agree' if c['ok'] else '**disagree**'} |"
                )
        lines.append("")
    huge = store.get("huge")
    if huge:
        lines += ["## Huge run (bounded memory)", ""]
        e = huge["runs"].get("engine", {})
        s = huge["runs"].get("scan", {})
        rows = huge["inputs"]["rows"]
        lines.append(
            f"{huge['accounts']:,} accounts ({rows.get('balances', 0):,} balance rows, "
            f"{rows.get('open_orders', 0):,} open orders, {huge['inputs']['bytes'] / 2**30:.1f} GiB parquet), "
            f"`--buckets {huge['buckets']}` (0 = engine chooses), commit {huge.get('commit', '?')}."
        )
        engine_of = {r.get("commit", "?"): engine_commit(r.get("commit", "?")) for r in sizes.values()}
        newer = sorted(c for c, src in engine_of.items() if src != engine_commit(huge.get("commit", "?")))
        if newer:
            lines.append(
                f"Not re-measured with the engine of the sizes above ({', '.join(newer)}); "
                "`--huge` refreshes it."
            )
        lines.append("")
        lines += [
            "| run | wall s | accounts/s | peak RSS GB | target | verdict |",
            "|---|---:|---:|---:|---|---|",
        ]
        if "wall_s" in s:
            lines.append(
                f"| scan | {fmt_s(s['wall_s'])} | {huge['accounts'] / s['wall_s']:,.0f} | "
                f"{s['peak_rss_bytes'] / GB:.2f} | | |"
            )
        per_m = f"<= {TARGET_RSS_GB_PER_M:g} GB per million accounts"
        if "error" in e:
            lines.append(f"| engine | - | - | - | {per_m} | **missed**: {e['error']} |")
        elif "wall_s" in e:
            g = e["peak_rss_bytes"] / GB
            ok = g / (huge["accounts"] / 1e6) <= TARGET_RSS_GB_PER_M
            lines.append(
                f"| engine | {fmt_s(e['wall_s'])} | {huge['accounts'] / e['wall_s']:,.0f} | {g:.2f} | "
                f"{per_m} ({g / (huge['accounts'] / 1e6):.3f}) | {verdict(ok)} |"
            )
        gen = huge.get("generate") or {}
        if gen.get("wall_s"):
            lines.append(
                f"| (generate) | {fmt_s(gen['wall_s'])} | | {(gen.get('peak_rss_bytes') or 0) / GB:.2f} | | |"
            )
        lines.append("")
    prof = store.get("profile")
    if prof:
        lines += [
            "## Where the engine's time goes",
            "",
            (
                f"`benchmarks/profile_engine.py` at {prof['accounts']:,} accounts (commit {prof['commit']}, "
                f"{prof['measured_at']}, load average before {prof['loadavg_before']:.1f}): each `collect` of the"
            ),
            "engine labelled by its source line, wall and CPU seconds of the process (CPU > wall: both cores busy).",
            "",
            "```",
            prof["output"],
            "```",
            "",
        ]
    lines += ["## Plot", "", "![time vs accounts](time_vs_accounts.png)", ""]
    # keep the sections the other benchmark scripts wrote (scenarios_bench.py, ray_vs_local.py): they
    # start at this marker and run to the end
    previous = RESULTS_MD.read_text() if RESULTS_MD.exists() else ""
    marker = "<!-- sections below: written by the other benchmark scripts, kept by run_benchmarks.py -->"
    if marker in previous:
        lines += ["", marker + previous.split(marker, 1)[1]]
    RESULTS_MD.write_text("\n".join(lines))
    plot(sizes, huge)


def plot(sizes: dict, huge: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for impl in IMPLS:
        pts = [
            (n, rec["runs"][impl]["wall_s"])
            for n, rec in sorted(sizes.items())
            if "wall_s" in rec["runs"].get(impl, {})
        ]
        same_engine = huge and {engine_commit(r.get("commit", "?")) for r in sizes.values()} <= {
            engine_commit(huge.get("commit", "?"))
        }
        if impl in ("engine", "scan") and same_engine and "wall_s" in huge["runs"].get(impl, {}):
            pts.append((huge["accounts"], huge["runs"][impl]["wall_s"]))
            pts.sort()
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        style = "--" if impl == "loop" else "-"
        label = "loop (extrapolated from 100k)" if impl == "loop" else impl
        ax.plot(xs, ys, style, marker="o", label=label)
    floor = [(n, f) for n, rec in sorted(sizes.items()) if (f := floor_s(rec["runs"]))]
    if floor:
        xs, ys = zip(*floor, strict=True)
        ax.plot(xs, ys, ":", marker="s", color="black", label="floor (scan + write)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("accounts")
    ax.set_ylabel("wall time, s")
    ax.set_title("crossmargin nightly job vs references (as_of 2025-01-21T10:00Z)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------- main
def load_store() -> dict:
    if RESULTS_JSON.exists():
        return json.loads(RESULTS_JSON.read_text())
    return {}


def save_store(store: dict) -> None:
    RESULTS_JSON.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 5_000_000, 10_000_000])
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--impls", nargs="+", default=IMPLS, choices=IMPLS)
    ap.add_argument("--huge", type=int, default=0, help="only generate + run the engine at this size")
    ap.add_argument(
        "--buckets", type=int, default=0, help="--buckets passed to crossmargin run (0 = engine's choice)"
    )
    ap.add_argument("--slice-accounts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    ap.add_argument("--verify-max", type=int, default=1_000_000, help="verify references at sizes up to this")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--mem-guard-gb", type=float, default=20.0, help="kill a run whose RSS exceeds this")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help="only generate the inputs (and loop slices)")
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        help="run profile_engine.py at this size and put its output in RESULTS.md",
    )
    args = ap.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "benchmark.log"
    store = load_store()
    store["machine"] = machine()
    if args.generate_only:
        for n in sorted(args.sizes) + ([args.huge] if args.huge else []):
            data, _ = ensure_data(n, args.work, log)
            if n != args.huge:
                make_slice(data, n, args.slice_accounts, args.work)
            print(f"{data}: {input_stats(data)}", flush=True)
        return
    if args.profile:
        data, _ = ensure_data(args.profile, args.work, log)
        warm_cache(data)
        print(f"profiling the engine at {args.profile:,} accounts", flush=True)
        proc = subprocess.run(
            [PY, str(BENCH / "profile_engine.py"), "--input", str(data)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        print(proc.stdout, proc.stderr[-2000:], flush=True)
        store["profile"] = {
            "accounts": args.profile,
            "commit": git_commit(),
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "loadavg_before": os.getloadavg()[0],
            "output": proc.stdout.strip(),
        }
        save_store(store)
    elif not args.report_only:
        if args.huge:
            store["huge"] = run_huge(args.huge, args, log)
            save_store(store)
        else:
            for n in sorted(args.sizes):
                rec = run_size(n, args, store, log)
                old = store.setdefault("sizes", {}).get(str(n))
                if old and set(args.impls) != set(IMPLS):  # a partial rerun keeps the other measurements
                    rec["runs"] = {**old.get("runs", {}), **rec["runs"]}
                    rec["runs"] = {k: rec["runs"][k] for k in IMPLS if k in rec["runs"]}
                    if "verification" in old:  # keep the checks of the references not rerun
                        rec["verification"] = {**old["verification"], **rec.get("verification", {})}
                store["sizes"][str(n)] = rec
                save_store(store)
                write_report(store)
                print_targets(rec)
    save_store(store)
    write_report(store)
    print(f"\nwrote {RESULTS_MD.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")


def print_targets(rec: dict) -> None:
    print(f"  targets at {rec['accounts']:,} accounts:")
    for name, need, got, ceiling, ok in targets_for(rec):
        print(f"    {name:<45} {need:>9}  {got:>12}  (ceiling {ceiling or '-':>7})  {verdict(ok).strip('*')}")


if __name__ == "__main__":
    main()
