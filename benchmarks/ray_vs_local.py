"""Ray engine vs local engine on this machine: wall time and peak memory of one run each.

    .venv/bin/python benchmarks/ray_vs_local.py                       # 5M accounts, 4 buckets
    .venv/bin/python benchmarks/ray_vs_local.py --accounts 2000000 --repeat 1

Generates (or reuses) `benchmarks/work/data_N/` (books.py: `crossmargin sample --accounts N --seed 1`,
the same directory the other scripts use), then runs, each in its own process and each `--repeat` times
(the fastest run is kept):

* `local`: `crossmargin run` with the default bucket count, and with `--buckets B`;
* `ray, 1 CPU` and `ray, 2 CPUs`: the same run with `--buckets B` on the ray engine, the private Ray
  instance started with num_cpus=1 or 2 (a small driver calling `run_job`, since the command always
  starts Ray with one CPU per core);
* start-up: `crossmargin run` vs `crossmargin run --engine ray` on the 460-account `data/sample`.

Wall time is launch to exit (imports, Ray start and shutdown included); the job's own seconds are
the ones its summary line prints (Ray start and shutdown included for the ray engine). Memory: the
peak of the sum of PSS (proportional set size, so shared pages such as Ray's object store count
once) over the process and all its descendants (Ray's GCS, raylet and workers), sampled every 0.1 s,
and the driver's own peak RSS from `/usr/bin/time -v`. Every run's three parquet outputs are compared
byte for byte with the first local run's. The section `ray` of benchmarks/README.md is rewritten.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
from pathlib import Path

from books import ensure_book, warm_cache
from measuring import run_measured
from report import write_section

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / "work"
CROSSMARGIN = str(Path(sys.executable).parent / "crossmargin")
AS_OF = "2025-01-21T10:00:00Z"
SAVED = WORK / "ray_vs_local.json"  # the last measurement (git-ignored, like the inputs)
TABLES = ["account_risk", "actions", "data_issues"]
GB = 1024**3
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}

DRIVER = """
import functools, sys
from crossmargin.cli import _parse_as_of
from crossmargin.executors.ray_tasks import ray_executor
from crossmargin.job import run_job
as_of, input_dir, out, buckets, cpus = sys.argv[1:]
print(run_job(as_of=_parse_as_of(as_of), input_dir=input_dir, out_dir=out, buckets=int(buckets),
              executor=functools.partial(ray_executor, num_cpus=int(cpus)), engine="ray"))
"""


def measure(cmd: list[str]) -> dict:
    """Run cmd (measuring.run_measured): wall, driver peak RSS, peak PSS of its process tree, summary."""
    m = run_measured(cmd, cwd=WORK, env=ENV, sample="pss")
    if m.returncode != 0:
        raise SystemExit(f"failed ({m.returncode}): {' '.join(cmd)}\n{m.stdout}\n{m.stderr}")
    job = re.search(r"\(([0-9.]+) s\)", m.stdout)
    return {
        "wall_s": m.wall_s,
        "driver_rss_bytes": m.peak_rss_bytes,
        "tree_pss_bytes": m.tree_peak_bytes,
        "job_s": float(job.group(1)) if job else None,
        "loadavg_before": m.loadavg_before,
        "summary": m.last_line(),
    }


def same_bytes(a: Path, b: Path) -> bool:
    return all((a / f"{t}.parquet").read_bytes() == (b / f"{t}.parquet").read_bytes() for t in TABLES)


def best_of(repeat: int, cmd: list[str], out: Path, reference: Path | None) -> dict:
    runs = []
    for _ in range(repeat):
        if out.exists():
            shutil.rmtree(out)
        res = measure(cmd)
        res["same_bytes_as_local"] = same_bytes(out, reference) if reference else True
        runs.append(res)
    best = min(runs, key=lambda r: r["wall_s"])
    best["same_bytes_as_local"] = all(r["same_bytes_as_local"] for r in runs)
    best["walls"] = [r["wall_s"] for r in runs]
    return best


def run_all(args: argparse.Namespace) -> dict:
    data, gen = ensure_book(WORK, "sample", args.accounts)
    warm_cache(data)
    b = str(args.buckets)
    outs = WORK / "ray_vs_local"
    shutil.rmtree(outs, ignore_errors=True)
    outs.mkdir(parents=True)
    run = [CROSSMARGIN, "run", "--as-of", AS_OF]
    rows: list[tuple[str, dict]] = []

    def one(label: str, cmd: list[str], out: Path, reference: Path | None, data_dir: Path) -> Path:
        print(f"{label} ...", flush=True)
        res = best_of(args.repeat, cmd, out, reference)
        res["accounts"] = args.accounts if data_dir == data else 460
        rows.append((label, res))
        print(f"  {res['wall_s']:.2f} s, tree PSS {res['tree_pss_bytes'] / GB:.2f} GB", flush=True)
        return out

    ref = one(
        "local, default buckets",
        [*run, "--input", str(data), "--out", str(outs / "local")],
        outs / "local",
        None,
        data,
    )
    one(
        f"local, --buckets {b}",
        [*run, "--input", str(data), "--buckets", b, "--out", str(outs / "local_b")],
        outs / "local_b",
        ref,
        data,
    )
    for cpus in (1, 2):
        out = outs / f"ray{cpus}"
        cmd = [sys.executable, "-c", DRIVER, AS_OF, str(data), str(out), b, str(cpus)]
        one(f"ray, {cpus} CPU{'s' if cpus > 1 else ''}, --buckets {b}", cmd, out, ref, data)
    sample = ROOT / "data" / "sample"
    small = one(
        "local (data/sample)",
        [*run, "--input", str(sample), "--out", str(outs / "small_local")],
        outs / "small_local",
        None,
        sample,
    )
    one(
        "--engine ray (data/sample)",
        [*run, "--input", str(sample), "--engine", "ray", "--out", str(outs / "small_ray")],
        outs / "small_ray",
        small,
        sample,
    )
    shutil.rmtree(outs, ignore_errors=True)
    measured_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {"rows": rows, "generate": gen, "args": vars(args), "measured_at": measured_at}


def versions() -> str:
    import polars
    import ray

    return f"python {sys.version.split()[0]}, polars {polars.__version__}, ray {ray.__version__}"


def section(res: dict) -> str:
    args = res["args"]
    gen = res["generate"]
    cpus = len(os.sched_getaffinity(0))
    lines = [
        f"Measured {res['measured_at']} by `benchmarks/ray_vs_local.py "
        f"--accounts {args['accounts']} --buckets {args['buckets']} --repeat {args['repeat']}` "
        f"on this machine ({cpus} logical CPUs; {versions()}); as_of `{AS_OF}`. Inputs: "
        f"`crossmargin sample --accounts {args['accounts']} --seed 1` ({args['accounts']:,} random + 60 "
        f"showcase accounts), generated in {gen.get('wall_s', 0):.0f} s. Fastest of {args['repeat']} "
        "runs per line. *wall*: process launch to exit (imports, Ray start-up and shutdown included); "
        "*job*: the seconds the summary line prints (run_job, Ray start-up and shutdown included); "
        "*tree PSS*: peak of the summed proportional set size of the process and all its descendants "
        "(Ray's GCS, raylet, workers; shared pages counted once), sampled every 0.1 s; *driver RSS*: the "
        "peak RSS of the process started (`/usr/bin/time -v`). *Same bytes*: account_risk, actions and "
        "data_issues parquet files byte-identical to the local run's. Ray lines are a driver calling "
        "`run_job` with `ray_executor(num_cpus=N)`, which starts a private Ray with N CPUs; the data/sample "
        "lines are the `crossmargin run` command (`--engine ray`: one CPU per core).",
        "",
    ]
    loads = [r["loadavg_before"] for _, r in res["rows"]]
    if max(loads) > cpus:
        lines += [
            f"**The machine was shared while this ran**: the 1-minute load average before the runs was "
            f"{min(loads):.1f} to {max(loads):.1f} on {cpus} CPUs (last column), so the times are inflated "
            "and noisy (compare the same lines across the *all walls* column) and say little about "
            "which engine is faster; the memory columns hardly depend on the load.",
            "",
        ]
    lines += [
        "| run | accounts | wall s | job s | tree PSS GB | driver RSS GB | same bytes | all walls s | load before |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for label, r in res["rows"]:
        walls = ", ".join(f"{w:.2f}" for w in r["walls"])
        job = f"{r['job_s']:.1f}" if r["job_s"] is not None else "-"
        lines.append(
            f"| {label} | {r['accounts']:,} | {r['wall_s']:.2f} | {job} | {r['tree_pss_bytes'] / GB:.2f} | "
            f"{r['driver_rss_bytes'] / GB:.2f} | {'yes' if r['same_bytes_as_local'] else 'NO'} | {walls} | "
            f"{r['loadavg_before']:.1f} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=5_000_000)
    ap.add_argument("--buckets", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--report-only", action="store_true", help=f"rewrite the section from {SAVED.name}")
    ap.add_argument("--no-write", action="store_true", help="print the section, leave the README alone")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        res = json.loads(SAVED.read_text())
    else:
        res = run_all(args)
        SAVED.write_text(json.dumps(res, default=str, indent=1))
    text = section(res)
    print(text)
    if not args.no_write:
        write_section("ray", text)
        print("wrote the section `ray` of benchmarks/README.md")


if __name__ == "__main__":
    main()
