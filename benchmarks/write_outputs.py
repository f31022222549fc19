"""The floor's second half: time to merely write the job's own output frames.

Loads a finished run's `account_risk`, `actions` and `data_issues` parquet files into memory first
(not timed), then times writing each as the job writes it: with the job's writer settings into an
`outputs.OutputFile` (hashed as written, past the page cache where the system allows it, fsynced),
`frame.write_parquet(f, **crossmargin.io.outputs.PARQUET_OPTIONS)`, in a fresh scratch directory
(removed afterwards). Only the writes are timed, in-process: loading is not part of the floor.
Prints one JSON line: total seconds and seconds per table.

    python benchmarks/write_outputs.py --run OUT_DIR_OF_A_FINISHED_RUN --scratch DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import polars as pl

from crossmargin.io.outputs import OUTPUT_TABLES, PARQUET_OPTIONS, OutputFile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="output directory of a finished crossmargin run")
    ap.add_argument("--scratch", type=Path, required=True, help="where to write (created, then removed)")
    args = ap.parse_args()
    missing = [t for t in OUTPUT_TABLES if not (args.run / f"{t}.parquet").exists()]
    if missing:
        raise SystemExit(f"{args.run}: no {', '.join(missing)} parquet file (run the engine first)")
    if args.scratch.exists():
        raise SystemExit(f"{args.scratch} exists; give a fresh scratch directory")
    frames = {t: pl.read_parquet(args.run / f"{t}.parquet") for t in OUTPUT_TABLES}
    args.scratch.mkdir(parents=True)
    per_table = {}
    try:
        t0 = time.perf_counter()
        for t, frame in frames.items():
            t1 = time.perf_counter()
            with OutputFile(args.scratch / f"{t}.parquet") as f:
                frame.write_parquet(f, **PARQUET_OPTIONS)
            per_table[t] = time.perf_counter() - t1
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(args.scratch)
    print(
        json.dumps(
            {
                "impl": "write",
                "seconds": seconds,
                "per_table_s": per_table,
                "rows": {t: f.height for t, f in frames.items()},
                "options": PARQUET_OPTIONS,
            }
        )
    )


if __name__ == "__main__":
    main()
