"""Time the reports over a root of nightly partitions: 30 nights x 1M accounts (best of 2).

    python benchmarks/programme_root.py [--accounts 1000000] [--nights 30] [--work benchmarks/work/programme]
                                        [--mixed]

Builds, once (kept under --work, which is gitignored): one input of --accounts accounts
(`crossmargin sample --seed 1`), one run of it as of the first night, and a root of --nights
partitions `as_of=YYYY-MM-DD/` whose parquet files are hard links to that run's files and whose
manifest.json is the run's with the night's as_of (so each partition verifies as its own night).
Then times, as a user runs them, `crossmargin sql programme_progress --root ROOT --format csv` and
`crossmargin report --root ROOT --html FILE`, twice each, and prints the wall times. Every partition
is verified (its files hashed) on every command, so the times include that.

`--mixed`: the partitions are hard links to three runs instead of one (as of 2024-12-16, 2024-12-17
and 2025-01-16, a third of the nights each), so on two nights about a third of the accounts change
compliance state and the transitions report has real moves to pair.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FIRST_NIGHT = dt.date(2024, 12, 20)


def crossmargin(*args: object, stdout=None) -> None:
    cmd = [sys.executable, "-m", "crossmargin", *map(str, args)]
    subprocess.run(cmd, check=True, stdout=stdout)


MIXED_RUNS = [dt.date(2024, 12, 16), dt.date(2024, 12, 17), dt.date(2025, 1, 16)]


def run_as_of(work: Path, inputs: Path, night: dt.date) -> Path:
    run = work / f"run_{night}"
    if not run.exists():
        crossmargin("run", "--as-of", f"{night}T00:00:00Z", "--input", inputs, "--out", run)
    return run


def build(work: Path, accounts: int, nights: int, mixed: bool) -> Path:
    inputs, root = work / "in", work / f"root_{nights}{'_mixed' if mixed else ''}"
    if not inputs.exists():
        crossmargin("sample", "--accounts", accounts, "--seed", 1, "--out", inputs)
    runs = [run_as_of(work, inputs, night) for night in (MIXED_RUNS if mixed else [FIRST_NIGHT])]
    for i in range(nights):
        night = FIRST_NIGHT + dt.timedelta(days=i)
        part = root / f"as_of={night}"
        if part.exists():
            continue
        run = runs[i * len(runs) // nights]
        manifest = json.loads((run / "manifest.json").read_text())
        part.mkdir(parents=True)
        for f in run.glob("*.parquet"):
            os.link(f, part / f.name)
        (part / "manifest.json").write_text(json.dumps({**manifest, "as_of": f"{night}T00:00:00Z"}, indent=2))
    return root


def best_of(n: int, *args: object) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with open(os.devnull, "w") as null:
            crossmargin(*args, stdout=null)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / "work" / "programme")
    parser.add_argument("--mixed", action="store_true", help="partitions from three runs (accounts move)")
    args = parser.parse_args()
    root = build(args.work, args.accounts, args.nights, args.mixed)
    size = sum(p.stat().st_size for p in root.rglob("*.parquet")) / 1e9
    print(f"root {root}: {args.nights} nights x {args.accounts:,} accounts, {size:.2f} GB of parquet")
    sql = best_of(2, "sql", "programme_progress", "--root", root, "--format", "csv")
    page = best_of(2, "report", "--root", root, "--html", args.work / "programme.html", "--force")
    print(
        f"crossmargin sql programme_progress --root: {', '.join(f'{t:.2f} s' for t in sql)} (best {min(sql):.2f} s)"
    )
    print(
        f"crossmargin report --root --html:         {', '.join(f'{t:.2f} s' for t in page)} (best {min(page):.2f} s)"
    )


if __name__ == "__main__":
    main()
