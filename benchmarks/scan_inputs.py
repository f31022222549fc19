"""The floor: time to merely read every input parquet file with polars.

Every column of every table is really read and decoded: numeric columns are summed, booleans
counted, timestamps summed as integers, strings reduced to the total of their byte lengths
(no hashing, no n_unique). All seven tables are collected together (`pl.collect_all`), so the
scan uses every core as the engine can.

    python benchmarks/scan_inputs.py --input DIR
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl

TABLES = [
    "accounts",
    "balances",
    "prices",
    "open_orders",
    "mode_switches",
    "collateral_tiers",
    "liability_brackets",
]


def reduce_all_columns(lf: pl.LazyFrame) -> pl.LazyFrame:
    exprs = []
    for name, dtype in lf.collect_schema().items():
        col = pl.col(name)
        if dtype == pl.String:
            e = col.str.len_bytes().sum()
        elif dtype == pl.Boolean:
            e = col.sum()
        elif dtype.is_temporal():
            e = col.to_physical().sum()
        else:
            e = col.sum()
        exprs.append(e.cast(pl.Float64).alias(name))
    exprs.append(pl.len().alias("__rows"))
    return lf.select(exprs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    frames = pl.collect_all(
        [reduce_all_columns(pl.scan_parquet(args.input / f"{t}.parquet")) for t in TABLES]
    )
    rows = {t: int(f["__rows"][0]) for t, f in zip(TABLES, frames, strict=True)}
    print(json.dumps({"impl": "scan", "seconds": time.perf_counter() - t0, "rows": rows}))


if __name__ == "__main__":
    main()
