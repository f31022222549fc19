"""`crossmargin explain --account ID` against the full run on the same book (target: at most 0.3x).

    .venv/bin/python benchmarks/explain_bench.py --accounts 3000000 --repeat 2
    .venv/bin/python benchmarks/explain_bench.py --shape exchange --accounts 3000000 --repeat 2

On one book (books.py: generated into benchmarks/work/ when absent, reused), alternating, `--repeat`
times: this checkout's `crossmargin run` into a fresh directory, then `crossmargin explain --input
DIR --as-of TS --account ID` for three accounts (the first, middle and last random account of the
book), then `crossmargin explain --out RUN_DIR --account ID` (which also checks the sha256 of every
input file against the run's manifest). Each is one process, measured from launch to exit by
measuring.run_measured (its peak RSS too), the 1-minute load average noted before it.

Before timing, it checks that explain can skip most of each account table: the file is sorted by
account_id, its row groups carry account_id statistics, and each explained account falls in one row
group (at most two, across a boundary) — what the filter pushed into the scan relies on.

The results go to benchmarks/results.json (key `explain`) and the section `explain` of
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from books import AS_OF, MAX_ISSUE_RATE, SHAPES, ensure_book, warm_cache
from measuring import run_measured
from report import GB, git_label, load_json, markdown_table, save_json, write_section

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.json"
TARGET = 0.3  # explain of one account at most this share of the full run's wall time
ACCOUNT_TABLES = ["accounts", "balances", "open_orders", "mode_switches"]
EXE = str(Path(sys.executable).with_name("crossmargin"))


def row_groups(path: Path, ids: list[int]) -> dict:
    """Row groups of a parquet file, whether they are in account_id order by their statistics, and
    for each id how many row groups its min/max range could hold it."""
    meta = pq.ParquetFile(path).metadata
    column = meta.schema.to_arrow_schema().get_field_index("account_id")
    ranges = []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(column).statistics
        ranges.append((stats.min, stats.max) if stats is not None and stats.has_min_max else None)
    known = [r for r in ranges if r is not None]
    ordered = len(known) == len(ranges) and all(a[1] <= b[0] for a, b in itertools.pairwise(known))
    holding = {i: sum(1 for r in known if r[0] <= i <= r[1]) for i in ids}
    return {"row_groups": meta.num_row_groups, "sorted_by_statistics": ordered, "groups_per_account": holding}


def pick_accounts(book: Path) -> list[int]:
    """The first, middle and last account of the book's accounts table."""
    ids = pq.read_table(book / "accounts.parquet", columns=["account_id"]).column(0).to_pylist()
    return [ids[0], ids[len(ids) // 2], ids[-1]]


def measure(cmd: list[str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS of the process tree, 1-minute load average before it)."""
    m = run_measured(cmd, interval=0.05)
    if m.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({m.returncode}): {m.stderr.strip()[-500:]}")
    return m.wall_s, m.tree_peak_bytes, m.loadavg_before


def one_round(book: Path, out: Path, ids: list[int], rate: float, walls: dict[str, list]) -> None:
    """The full run, then explain of each account from the input directory, then from the run."""
    run = [
        EXE,
        "run",
        "--as-of",
        AS_OF,
        "--input",
        str(book),
        "--out",
        str(out),
        "--max-issue-rate",
        str(rate),
    ]
    walls["run"].append(measure(run))
    print(f"run                  {walls['run'][-1][0]:6.2f} s (load {walls['run'][-1][2]:.2f})", flush=True)
    for i in ids:
        cmd = [
            EXE,
            "explain",
            "--input",
            str(book),
            "--as-of",
            AS_OF,
            "--account",
            str(i),
            "--format",
            "json",
        ]
        walls["explain --input"].append(measure(cmd))
        print(f"explain {i:<12} {walls['explain --input'][-1][0]:6.2f} s", flush=True)
    walls["explain --out"].append(measure([EXE, "explain", "--out", str(out), "--account", str(ids[0])]))
    print(f"explain --out        {walls['explain --out'][-1][0]:6.2f} s", flush=True)


def summary(walls: dict[str, list]) -> dict:
    best_run = min(w for w, _, _ in walls["run"])
    out = {}
    for name, measured in walls.items():
        times = [w for w, _, _ in measured]
        out[name] = {
            "best_s": round(min(times), 2),
            "median_s": round(statistics.median(times), 2),
            "worst_s": round(max(times), 2),
            "peak_gib": round(max(p for _, p, _ in measured) / GB, 2),
            "share_of_best_run_worst": round(max(times) / best_run, 3),
        }
    out["load_avg"] = [round(min(x for v in walls.values() for _, _, x in v), 2),
                       round(max(x for v in walls.values() for _, _, x in v), 2)]  # fmt: skip
    return out


def section(store: dict) -> str:
    rows = []
    for r in store.values():
        run = r["walls"]["run"]
        for name in ("explain --input", "explain --out"):
            e = r["walls"][name]
            share = e["worst_s"] / run["best_s"]
            verdict = f"{share:.2f}× ({'met' if share <= TARGET else '**missed**'})"
            rows.append([
                r["shape"], f"{r['accounts']:,}", name, f"{e['best_s']:.2f} / {e['worst_s']:.2f}",
                f"{run['best_s']:.2f} / {run['worst_s']:.2f}", verdict, e["peak_gib"], run["peak_gib"],
                f"{r['load_avg'][0]}–{r['load_avg'][1]}", r["commit"], r["measured_at"],
            ])  # fmt: skip
    header = ["shape", "accounts", "command", "explain s (best / worst)", "run s (best / worst)"]
    header += [f"worst explain / best run (≤ {TARGET:g}×)", "explain peak GB", "run peak GB", "load avg"]
    return markdown_table([*header, "commit", "measured"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=SHAPES, default="sample")
    ap.add_argument("--accounts", type=int, default=3_000_000)
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    book = ensure_book(args.work.resolve(), args.shape, args.accounts)[0]
    ids = pick_accounts(book)
    layout = {t: row_groups(book / f"{t}.parquet", ids) for t in ACCOUNT_TABLES}
    for table, info in layout.items():
        print(f"{table:14s} {info}", flush=True)
        if not info["sorted_by_statistics"] or max(info["groups_per_account"].values()) > 2:
            sys.exit(
                f"{table}: not sorted by account_id in its row-group statistics; explain would read it all"
            )
    warm_cache(book)
    walls: dict[str, list] = {"run": [], "explain --input": [], "explain --out": []}
    with tempfile.TemporaryDirectory(prefix="explain-bench-") as tmp:
        for r in range(args.repeat):
            one_round(book, Path(tmp) / f"run{r}", ids, MAX_ISSUE_RATE[args.shape], walls)
    result = {"accounts_explained": ids, "row_groups": layout, "walls": summary(walls)}
    result["load_avg"] = result["walls"].pop("load_avg")
    print(json.dumps(result, indent=1))
    results = load_json(RESULTS)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="minutes")
    meta = {"shape": args.shape, "accounts": args.accounts, "commit": git_label(BENCH.parent), "measured_at": stamp,
            "cpus": os.cpu_count()}  # fmt: skip
    results.setdefault("explain", {})[f"{args.shape}/{args.accounts}"] = {**result, **meta}
    save_json(RESULTS, results)
    write_section("explain", section(results["explain"]))


if __name__ == "__main__":
    main()
