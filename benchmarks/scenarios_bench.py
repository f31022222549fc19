"""Cost of `run --scenarios default` against the plain run (a measurement, not a test; target: <= 3x).

    .venv/bin/python benchmarks/scenarios_bench.py --shape exchange --accounts 3000000 --repeat 2
    .venv/bin/python benchmarks/scenarios_bench.py --input DIR [--max-issue-rate 0.02]

Runs this checkout's `crossmargin run` on one book, plain and with the shipped scenario set,
alternating, each `--repeat` times, into fresh output directories under a temporary directory
(removed afterwards), each measured by measuring.run_measured (wall from launch to exit, peak RSS of
the process and its children), and prints the ratio of the best times. The book: `--input DIR`, or
`--shape S --accounts N` (books.py: generated into benchmarks/work/ when absent, reused; scored with
the shape's --max-issue-rate). A book given by shape and size is stored in benchmarks/results.json
(key `scenarios`) and the section `scenarios` of benchmarks/README.md is rewritten from it.

`--drop-caches` (root only): before each run, write the dirty pages out, drop the clean page cache
(`/proc/sys/vm/drop_caches`) and read the inputs again, so every run starts with its inputs cached
and the rest of memory free. Without it, a run that writes gigabytes into a page cache already full
of other files pays for the kernel reclaiming them (measured: 5 s of a 45 s scenario run at 10M).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from books import AS_OF, MAX_ISSUE_RATE, SHAPES, ensure_book, warm_cache
from measuring import run_measured
from report import GB, git_label, load_json, markdown_table, save_json, write_section

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.json"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
TARGET_RATIO = 3.0


def measure(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes of the process and its children, last line of stdout)."""
    m = run_measured(cmd, interval=0.05)
    if m.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({m.returncode}): {m.stderr.strip()}")
    return m.wall_s, m.tree_peak_bytes, m.last_line()


def drop_caches(input_dir: Path) -> None:
    """Free the page cache but the inputs: dirty pages written, clean ones dropped, inputs read back."""
    os.sync()
    DROP_CACHES.write_text("1\n")
    warm_cache(input_dir)


def one_run(name: str, cmd: list[str], out: Path, args: argparse.Namespace, book: Path) -> tuple[float, int]:
    """Measure one run, print it, remove its outputs."""
    if args.drop_caches:
        drop_caches(book)
    wall, peak, line = measure(cmd)
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(
        f"{name:10s} {wall:7.1f} s  peak RSS {peak / GB:5.2f} GiB  outputs {size:,.0f} MiB  | {line}",
        flush=True,
    )
    if name == "scenarios":
        manifest = json.loads((out / "manifest.json").read_text())
        print(f"{'':10s} scenario_risk rows: {manifest['outputs']['scenario_risk']['rows']:,}")
    shutil.rmtree(out)
    return wall, peak


def measure_book(book: Path, rate: float, args: argparse.Namespace) -> dict:
    """Plain and scenario runs alternating, `--repeat` times each; the best walls and their ratio."""
    exe = str(Path(sys.executable).with_name("crossmargin"))
    results: dict[str, list[tuple[float, int]]] = {"plain": [], "scenarios": []}
    warm_cache(book)
    with tempfile.TemporaryDirectory(prefix="scenarios-bench-") as tmp:
        for i in range(args.repeat):
            for name, extra in (("plain", []), ("scenarios", ["--scenarios", args.scenarios])):
                out = Path(tmp) / f"{name}{i}"
                cmd = [exe, "run", "--as-of", AS_OF, "--input", str(book), "--out", str(out)]
                results[name].append(
                    one_run(name, [*cmd, "--max-issue-rate", str(rate), *extra], out, args, book)
                )
    best = {k: min(w for w, _ in v) for k, v in results.items()}
    return {
        "input": str(book),
        "plain_s": round(best["plain"], 2),
        "scenarios_s": round(best["scenarios"], 2),
        "ratio": round(best["scenarios"] / best["plain"], 2),
        "plain_peak_gib": round(max(p for _, p in results["plain"]) / GB, 2),
        "scenarios_peak_gib": round(max(p for _, p in results["scenarios"]) / GB, 2),
    }


def section(store: dict) -> str:
    rows = [
        [
            r["shape"], f"{r['accounts']:,}", r["plain_s"], r["scenarios_s"],
            f"{r['ratio']:.2f}× ({'met' if r['ratio'] <= TARGET_RATIO else '**missed**'})",
            r["plain_peak_gib"], r["scenarios_peak_gib"], r["commit"], r["measured_at"],
        ]
        for r in sorted(store.values(), key=lambda r: (SHAPES.index(r["shape"]), r["accounts"]))
    ]  # fmt: skip
    header = ["shape", "accounts", "plain s", "scenarios s", f"ratio (≤ {TARGET_RATIO:g}×)", "plain peak GB"]
    return markdown_table([*header, "scenarios peak GB", "commit", "measured"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, help="a book's directory (else --shape and --accounts)")
    ap.add_argument("--shape", choices=SHAPES, default="sample")
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--max-issue-rate", type=float, help="default: the shape's (0.02 for exchange)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--scenarios", default="default")
    ap.add_argument("--drop-caches", action="store_true", help="drop the page cache before each run (root)")
    args = ap.parse_args()
    if args.drop_caches and not os.access(DROP_CACHES, os.W_OK):
        sys.exit(f"--drop-caches needs write access to {DROP_CACHES} (run as root)")
    book = args.input or ensure_book(args.work.resolve(), args.shape, args.accounts)[0]
    rate = args.max_issue_rate if args.max_issue_rate is not None else MAX_ISSUE_RATE[args.shape]
    res = measure_book(book, rate, args)
    print(json.dumps(res))
    if args.input is None and args.scenarios == "default":
        results = load_json(RESULTS)
        store = results.setdefault("scenarios", {})
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="minutes")
        meta = {
            "shape": args.shape,
            "accounts": args.accounts,
            "commit": git_label(BENCH.parent),
            "measured_at": stamp,
        }
        store[f"{args.shape}/{args.accounts}"] = {**res, **meta}
        save_json(RESULTS, results)
        write_section("scenarios", section(store))


if __name__ == "__main__":
    main()
