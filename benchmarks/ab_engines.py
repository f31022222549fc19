"""A/B: this checkout's `crossmargin run` against another commit's, alternating, on both book shapes.

    .venv/bin/python benchmarks/ab_engines.py                          # sample + exchange, 3M and 10M
    .venv/bin/python benchmarks/ab_engines.py --sizes 50000 --repeat 1 # a quick check of everything
    .venv/bin/python benchmarks/ab_engines.py --against 928eaf8 --shapes exchange --sizes 3000000
    .venv/bin/python benchmarks/ab_engines.py --report-only            # README section from the JSON

For each shape (`crossmargin sample --shape`) and size it generates the book once into
`benchmarks/work/` (books.py; reused), then `--repeat` times, each in its own process measured by
measuring.run_measured (wall from launch to exit, user + system CPU seconds, peak RSS):

  job     this checkout's `crossmargin run` (its .venv; the editable install runs this work tree)
  old     the `--against` commit's `crossmargin run`, from a worktree of it at
          `~/.cache/crossmargin/bench/engine-COMMIT` with its own venv (created when absent: `git worktree add
          --detach`, `python -m venv`, `pip install -c constraints.txt -e .`)
  duckdb  the quantities and levels in DuckDB SQL (impl_duckdb.py)
  scan    the floor's read half (scan_inputs.py); write: the floor's write half, the job's own outputs
          written as it writes them (write_outputs.py, the writes alone timed in-process)

job and old alternate (job first on even repetitions, old first on odd ones); both score the book at
as_of 2025-01-21T10:00:00Z with `--max-issue-rate` 0.02 on the exchange shape (0.8 % of its accounts
hold an asset whose latest price is null) and 0.01 on the sample. The best wall of each is kept, with
the CPU seconds of that run and the highest peak of all its runs. Each shape and size is stored in
`benchmarks/results.json` (key `ab`) as soon as it is measured (`--missing-only` skips those already stored
for the same two commits) and the section `ab` of benchmarks/README.md is rewritten from it: per
shape and size, job / old (target <= 1.2), GB of peak per million accounts (target <= 0.5), DuckDB /
job, job / floor, and what each engine made of the book (accounts scored, data issues by code).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

from books import AS_OF, MAX_ISSUE_RATE, SHAPES, ensure_book, input_stats, warm_cache
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
JOB = str(Path(sys.executable).parent / "crossmargin")
RESULTS = BENCH / "results.json"  # this script's figures: its key "ab"
TARGET_VS_OLD = 1.2  # job wall / old engine wall <=
TARGET_GB_PER_M = 0.5  # job peak per million accounts <=


# ------------------------------------------------------------------------- the other engine
def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def engines_dir() -> Path:
    """Where the other engines' worktrees live: outside the checkout (a worktree inside it would be read
    by the checkout's own tools: ruff, pytest), under the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crossmargin" / "bench"


def other_engine(ref: str, work: Path) -> tuple[Path, str]:
    """(the `crossmargin` of a worktree of `ref` with its own venv, its commit); built when absent."""
    commit = git("rev-parse", "--short", f"{ref}^{{commit}}")
    tree = engines_dir() / f"engine-{commit}"
    exe = tree / ".venv" / "bin" / "crossmargin"
    ready = tree / ".venv" / "ab-ready"
    if ready.exists() and exe.exists():
        return exe, commit
    print(f"building the engine of {commit} in {tree} (a few minutes, once)", flush=True)
    if not (tree / ".git").exists():  # --force: a worktree registered there earlier, since deleted
        git("worktree", "add", "--force", "--detach", str(tree), commit)
    if not (tree / ".venv" / "bin" / "python").exists():
        subprocess.run([PY, "-m", "venv", str(tree / ".venv")], check=True)
    pip = [
        str(tree / ".venv" / "bin" / "pip"),
        "install",
        "-q",
        "-c",
        str(ROOT / "constraints.txt"),
        "-e",
        str(tree),
    ]
    subprocess.run(pip, check=True)
    ready.write_text(commit + "\n")
    return exe, commit


def warm_up(engines: dict[str, str], work: Path) -> None:
    """One unmeasured run of each engine on the committed data/sample (compiled kernels cached)."""
    for name, exe in engines.items():
        out = work / "ab_out" / f"warm-{name}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [exe, "run", "--as-of", AS_OF, "--input", str(ROOT / "data" / "sample"), "--out", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"  warm-up of {name} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}", flush=True)
        shutil.rmtree(out, ignore_errors=True)


# ------------------------------------------------------------------------- one measured run
def measure(cmd: list[str], args: argparse.Namespace, log: Path, cwd: Path = ROOT) -> dict:
    """wall, CPU, peak of one process (measuring.run_measured); its error when it failed."""
    m = run_measured(
        cmd, cwd=cwd, interval=0.1, timeout=args.timeout, mem_guard_bytes=int(args.mem_guard_gb * GB)
    )
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{m.stdout}{m.stderr}\n{m.time_report}\n")
    res = {
        "wall_s": round(m.wall_s, 3),
        "cpu_s": m.cpu_s,
        "peak_rss_bytes": m.peak_rss_bytes,
        "tree_peak_bytes": m.tree_peak_bytes,
        "loadavg_before": round(m.loadavg_before, 2),
        "last_line": m.last_line(),
    }
    if m.stopped or m.returncode != 0:
        err = m.stderr.strip().splitlines()
        res["error"] = m.stopped or f"exit {m.returncode}: {err[-1] if err else ''}"
    return res


def internal_seconds(res: dict) -> dict:
    """write_outputs.py: the in-process seconds of the writes are its wall (start-up and loading are not)."""
    import json

    if "error" not in res and res["last_line"].startswith("{"):
        res["process_wall_s"] = res["wall_s"]
        res["wall_s"] = json.loads(res["last_line"])["seconds"]
    return res


def engine_cmd(exe: str, book: Path, out: Path, shape: str) -> list[str]:
    rate = str(MAX_ISSUE_RATE[shape])
    return [exe, "run", "--as-of", AS_OF, "--input", str(book), "--out", str(out), "--max-issue-rate", rate]


def one_repetition(i: int, cell: dict, ctx: dict, args: argparse.Namespace) -> None:
    """job and old (in alternating order), then DuckDB and the floor, each appended to cell['runs']."""
    book, outs, shape, log = ctx["book"], ctx["outs"], cell["shape"], ctx["log"]
    order = ["job", "old"] if i % 2 == 0 else ["old", "job"]
    for name in order:
        shutil.rmtree(outs / name, ignore_errors=True)
        res = measure(engine_cmd(ctx["engines"][name], book, outs / name, shape), args, log)
        cell["runs"][name].append(res)
        print(f"    {name:<6} {line(res)}", flush=True)
    if not args.no_duckdb:
        dest = outs / "duckdb.parquet"
        dest.unlink(missing_ok=True)
        cmd = [PY, str(BENCH / "impl_duckdb.py"), "--input", str(book), "--out", str(dest), "--as-of", AS_OF]
        cell["runs"]["duckdb"].append(measure(cmd, args, log))
        print(f"    duckdb {line(cell['runs']['duckdb'][-1])}", flush=True)
    if not args.no_floor:
        scan = measure([PY, str(BENCH / "scan_inputs.py"), "--input", str(book)], args, log)
        shutil.rmtree(outs / "write-scratch", ignore_errors=True)
        cmd = [
            PY,
            str(BENCH / "write_outputs.py"),
            "--run",
            str(outs / "job"),
            "--scratch",
            str(outs / "write-scratch"),
        ]
        write = internal_seconds(measure(cmd, args, log))
        cell["runs"]["scan"].append(scan)
        cell["runs"]["write"].append(write)
        print(f"    scan   {line(scan)}\n    write  {line(write)}", flush=True)


def line(res: dict) -> str:
    if "error" in res:
        return f"FAILED: {res['error']}"
    peak = (res.get("peak_rss_bytes") or 0) / GB
    wall, cpu = fmt_s(res["wall_s"]), fmt_s(res.get("cpu_s"))
    return f"{wall:>8} s  cpu {cpu:>8} s  peak {peak:5.2f} GB  load {res['loadavg_before']}"


# ------------------------------------------------------------------------- what each engine made of the book
def outcome(out: Path, book: Path) -> dict:
    """Rows per output file, data issues by code, and what became of the accounts holding the
    null-priced asset (exchange shape): how many the outputs score, and with what levels."""
    import polars as pl

    if not out.exists():
        return {}
    rows = {
        f.stem: pl.scan_parquet(f).select(pl.len()).collect().item() for f in sorted(out.glob("*.parquet"))
    }
    res: dict = {"rows": rows}
    issues = out / "data_issues.parquet"
    if issues.exists() and "code" in pl.read_parquet_schema(issues):
        by = pl.read_parquet(issues).group_by(pl.col("code").cast(pl.String)).len().sort("code")
        res["issues_by_code"] = {k: int(v) for k, v in by.iter_rows()}
    res["null_price_holders"] = null_price_holders(out, book)
    return res


def null_price_holders(out: Path, book: Path) -> dict | None:
    """For a book with a null latest price (exchange shape): its holders, those in account_risk, and
    how many of those have a null or NaN margin_level / total_asset_usdt."""
    import polars as pl

    prices = pl.read_parquet(book / "prices.parquet")
    latest = prices.filter(pl.col("priced_at") == pl.col("priced_at").max().over("asset"))
    nulls = latest.filter(pl.col("price_usdt").is_null())["asset"].to_list()
    risk = out / "account_risk.parquet"
    if not nulls or not risk.exists():
        return None
    holders = (
        pl.scan_parquet(book / "balances.parquet")
        .filter(pl.col("asset").is_in(nulls))
        .select("account_id")
        .unique()
    )
    cols = [c for c in ("margin_level", "total_asset_usdt") if c in pl.read_parquet_schema(risk)]
    scored = (
        pl.scan_parquet(risk).join(holders, on="account_id", how="semi").select("account_id", *cols).collect()
    )
    res = {
        "assets": nulls,
        "holders": holders.select(pl.len()).collect().item(),
        "in_account_risk": scored.height,
    }
    for c in cols:
        res[f"{c}_null_or_nan"] = int(scored.select((pl.col(c).is_null() | pl.col(c).is_nan()).sum()).item())
    if "total_asset_usdt" in cols:
        res["valued_as_zero"] = valued_as_zero(scored, latest, book, holders)
    return res


def valued_as_zero(scored, latest, book: Path, holders) -> int:
    """Scored holders whose total_asset_usdt is their holdings valued with the null price read as 0."""
    import polars as pl

    rows = pl.scan_parquet(book / "balances.parquet").join(holders, on="account_id", how="semi")
    value = (pl.col("free") + pl.col("locked")) * pl.col("price_usdt").fill_null(0.0)
    sums = rows.join(latest.lazy(), on="asset", how="left").group_by("account_id").agg(value.sum().alias("v"))
    both = scored.lazy().join(sums, on="account_id")
    close = (pl.col("v") - pl.col("total_asset_usdt")).abs() <= 1e-9 * pl.col("v").abs() + 1e-9
    return int(both.select(close.sum()).collect().item())


# ------------------------------------------------------------------------- one shape and size
def measure_cell(shape: str, n: int, engines: dict, labels: dict, args: argparse.Namespace) -> dict:
    print(f"\n=== {shape} book, {n:,} accounts ===", flush=True)
    log = args.work / "ab.log"
    book, generated = ensure_book(args.work, shape, n, log)
    outs = args.work / "ab_out" / f"{shape}_{n}"
    outs.mkdir(parents=True, exist_ok=True)
    warm_cache(book)
    cell = {
        "shape": shape,
        "accounts": n,
        "engines": labels,
        "inputs": input_stats(book),
        "generate": generated,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": {k: [] for k in ("job", "old", "duckdb", "scan", "write")},
    }
    ctx = {"book": book, "outs": outs, "engines": engines, "log": log}
    for i in range(args.repeat):
        print(f"  repetition {i + 1} of {args.repeat}", flush=True)
        one_repetition(i, cell, ctx, args)
    cell["outcome"] = {name: outcome(outs / name, book) for name in ("job", "old")}
    return cell


# ------------------------------------------------------------------------- the table
def best(runs: list[dict]) -> dict | None:
    """The fastest successful run, with the highest peak of all successful runs."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None
    b = dict(min(ok, key=lambda r: r["wall_s"]))
    b["peak_rss_bytes"] = max(r.get("peak_rss_bytes") or 0 for r in ok)
    return b


def summary(cell: dict) -> dict:
    """Best figures of a cell and the ratios of the targets."""
    b = {k: best(v) for k, v in cell["runs"].items()}
    wall = {k: (v["wall_s"] if v else None) for k, v in b.items()}
    floor = wall["scan"] + wall["write"] if wall["scan"] and wall["write"] else None
    job = b["job"]
    gb_per_m = job["peak_rss_bytes"] / GB / (cell["accounts"] / 1e6) if job else None
    vs_old = wall["job"] / wall["old"] if wall["job"] and wall["old"] else None
    return {"best": b, "wall": wall, "floor": floor, "vs_old": vs_old, "gb_per_m": gb_per_m}


def verdict(value: float | None, target: float) -> str:
    return "-" if value is None else ("met" if value <= target else "**missed**")


def figures_row(cell: dict) -> list[object]:
    s = summary(cell)
    b = s["best"]

    def peak(k: str) -> str:
        return f"{b[k]['peak_rss_bytes'] / GB:.2f}" if b[k] else "-"

    def cpu(k: str) -> str:
        return fmt_s(b[k].get("cpu_s")) if b[k] else failed(cell, k)

    return [
        cell["shape"],
        f"{cell['accounts']:,}",
        fmt_s(s["wall"]["job"]) if b["job"] else failed(cell, "job"),
        cpu("job"),
        peak("job"),
        fmt_s(s["wall"]["old"]) if b["old"] else failed(cell, "old"),
        cpu("old"),
        peak("old"),
        fmt_s(s["wall"]["duckdb"]),
        fmt_s(s["floor"]),
    ]


def failed(cell: dict, k: str) -> str:
    errors = [r["error"] for r in cell["runs"][k] if "error" in r]
    return f"failed: {errors[-1]}" if errors else "-"


def targets_row(cell: dict) -> list[object]:
    s = summary(cell)
    vs_old = f"{s['vs_old']:.2f}× ({verdict(s['vs_old'], TARGET_VS_OLD)})" if s["vs_old"] else "-"
    per_m = f"{s['gb_per_m']:.3f} ({verdict(s['gb_per_m'], TARGET_GB_PER_M)})" if s["gb_per_m"] else "-"
    return [
        cell["shape"],
        f"{cell['accounts']:,}",
        vs_old,
        per_m,
        ratio(s["wall"]["duckdb"], s["wall"]["job"]),
        ratio(s["wall"]["job"], s["floor"]),
    ]


def outcome_row(cell: dict, name: str) -> list[object]:
    o = cell.get("outcome", {}).get(name) or {}
    risk = (o.get("rows") or {}).get("account_risk")
    issues = ", ".join(f"{k} {v:,}" for k, v in (o.get("issues_by_code") or {}).items()) or "none"
    held = o.get("null_price_holders")
    held_text = "-"
    if held:
        nan = held.get("margin_level_null_or_nan", "?")
        held_text = (
            f"{held['holders']:,} holders, {held['in_account_risk']:,} scored, {nan:,} with a null/NaN level"
        )
        if held["in_account_risk"]:
            held_text += f", {held.get('valued_as_zero', '?'):,} with the null price valued as 0"
    return [
        cell["shape"],
        f"{cell['accounts']:,}",
        f"{name} ({cell['engines'][name]})",
        f"{risk:,}" if risk else "-",
        issues,
        held_text,
    ]


def section(store: dict) -> str:
    cells = sorted(store.get("cells", {}).values(), key=lambda c: (SHAPES.index(c["shape"]), c["accounts"]))
    if not cells:
        return "_Nothing measured yet: run `benchmarks/ab_engines.py`._"
    first = cells[0]
    parts = [
        f"Measured {min(c['measured_at'] for c in cells)} to {max(c['measured_at'] for c in cells)}; job = "
        f"{first['engines']['job']}, old = {first['engines']['old']}; {machine_line(store.get('machine', {}))}.",
        "Best wall of the repetitions (seconds, launch to exit), user + system CPU seconds of that run, the highest "
        "peak RSS of all runs (GB = 1024³ bytes); floor = scan + write.",
        "",
        markdown_table(
            [
                "shape",
                "accounts",
                "job wall",
                "job CPU",
                "job peak",
                "old wall",
                "old CPU",
                "old peak",
                "DuckDB",
                "floor",
            ],
            [figures_row(c) for c in cells],
        ),
        "",
        markdown_table(
            [
                "shape",
                "accounts",
                f"job / old (≤ {TARGET_VS_OLD})",
                f"job GB per M accounts (≤ {TARGET_GB_PER_M})",
                "DuckDB / job",
                "job / floor",
            ],
            [targets_row(c) for c in cells],
        ),
        "",
        "What each engine made of the book (accounts in `account_risk`, data issues by code, and the accounts "
        "holding an asset whose latest price is null):",
        "",
        markdown_table(
            ["shape", "accounts", "engine", "account_risk rows", "data issues", "null-price holders"],
            [outcome_row(c, name) for c in cells for name in ("job", "old")],
        ),
    ]
    return "\n".join(parts)


# ------------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3_000_000, 10_000_000])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    ap.add_argument("--repeat", type=int, default=2, help="alternations of the two engines (best kept)")
    ap.add_argument("--against", default="928eaf8", help="the commit (or any git ref) to compare with")
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--missing-only", action="store_true", help="skip cells stored for the same two commits")
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600.0, help="stop a run after this many seconds")
    ap.add_argument("--mem-guard-gb", type=float, default=20.0, help="stop a run above this much memory")
    ap.add_argument("--report-only", action="store_true", help="rewrite the README section from the JSON")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the JSON of the results (merged into)")
    ap.add_argument("--readme", type=Path, default=README, help="the Markdown file given the section `ab`")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    results = load_json(args.results)
    store = results.setdefault("ab", {})
    if not args.report_only:
        old_exe, old_commit = other_engine(args.against, args.work)
        engines = {"job": JOB, "old": str(old_exe)}
        labels = {"job": git_label(ROOT), "old": old_commit}
        store["machine"] = machine()
        warm_up(engines, args.work)
        for shape in args.shapes:
            for n in sorted(args.sizes):
                key = f"{shape}/{n}"
                done = store.get("cells", {}).get(key)
                if args.missing_only and done and done["engines"] == labels:
                    print(f"{key}: stored for {labels}, skipped (--missing-only)")
                    continue
                store.setdefault("cells", {})[key] = measure_cell(shape, n, engines, labels, args)
                save_json(args.results, results)
                write_section("ab", section(store), args.readme)
    text = section(store)
    write_section("ab", text, args.readme)
    print(f"\n{text}\n\nwrote {args.results} and the section `ab` of {args.readme}")
    if os.getloadavg()[0] > 1.0:
        print(
            f"note: load average now {os.getloadavg()[0]:.1f}: other jobs may have competed for the 2 cores"
        )


if __name__ == "__main__":
    main()
