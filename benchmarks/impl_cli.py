"""The command line shared by the reference implementations: --input DIR --out FILE --as-of TS."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path


def parse(doc: str) -> tuple[Path, Path, dt.datetime]:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--as-of", required=True)
    args = ap.parse_args()
    return args.input, args.out, dt.datetime.fromisoformat(args.as_of).astimezone(dt.UTC)


def report(impl: str, seconds: float, **extra: object) -> None:
    """One JSON line for run_benchmarks.py."""
    print(json.dumps({"impl": impl, "seconds": seconds, **extra}))
