"""Cost of `run --scenarios default` against the plain run (a measurement, not a test).

    .venv/bin/python benchmarks/scenarios_bench.py --input /work/bench10m [--repeat 1]

Runs the installed `crossmargin run` on one input directory, plain and with the shipped scenario
set, each `--repeat` times, into fresh output directories under a temporary directory, and prints
per run the wall time and the peak resident memory of the process (sampled every 50 ms with
psutil), then the ratio of the best times. The output directories are removed afterwards.

`--drop-caches` (root only): before each run, write the dirty pages out, drop the clean page cache
(`/proc/sys/vm/drop_caches`) and read the inputs again, so every run starts with its inputs cached
and the rest of memory free. Without it, a run that writes gigabytes into a page cache already full
of other files pays for the kernel reclaiming them (measured: 5 s of a 45 s scenario run at 10M).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from measuring import run_measured

DROP_CACHES = Path("/proc/sys/vm/drop_caches")

AS_OF = "2025-01-21T10:00:00Z"


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
    for f in sorted(input_dir.iterdir()):
        with f.open("rb") as fh:
            while fh.read(1 << 24):
                pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--scenarios", default="default")
    ap.add_argument("--drop-caches", action="store_true", help="drop the page cache before each run (root)")
    args = ap.parse_args()
    if args.drop_caches and not os.access(DROP_CACHES, os.W_OK):
        sys.exit(f"--drop-caches needs write access to {DROP_CACHES} (run as root)")
    exe = str(Path(sys.executable).with_name("crossmargin"))
    results: dict[str, list[tuple[float, int]]] = {"plain": [], "scenarios": []}
    with tempfile.TemporaryDirectory(prefix="scenarios-bench-") as tmp:
        for i in range(args.repeat):
            for name, extra in (("plain", []), ("scenarios", ["--scenarios", args.scenarios])):
                out = Path(tmp) / f"{name}{i}"
                cmd = [exe, "run", "--as-of", AS_OF, "--input", str(args.input), "--out", str(out), *extra]
                if args.drop_caches:
                    drop_caches(args.input)
                wall, peak, line = measure(cmd)
                results[name].append((wall, peak))
                size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
                print(
                    f"{name:10s} run {i + 1}: {wall:7.1f} s  peak RSS {peak / 2**30:5.2f} GiB  "
                    f"outputs {size:,.0f} MiB  | {line}"
                )
                if name == "scenarios":
                    manifest = json.loads((out / "manifest.json").read_text())
                    print(f"{'':10s} scenario_risk rows: {manifest['outputs']['scenario_risk']['rows']:,}")
                shutil.rmtree(out)
    best = {k: min(v) for k, v in results.items()}
    ratio = best["scenarios"][0] / best["plain"][0]
    print(
        json.dumps(
            {
                "input": str(args.input),
                "plain_s": round(best["plain"][0], 1),
                "scenarios_s": round(best["scenarios"][0], 1),
                "ratio": round(ratio, 2),
                "plain_peak_gib": round(max(p for _, p in results["plain"]) / 2**30, 2),
                "scenarios_peak_gib": round(max(p for _, p in results["scenarios"]) / 2**30, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
