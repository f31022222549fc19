"""The command line shared by the reference implementations: --input DIR --out FILE --as-of TS."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

# What every reference implementation writes: the quantities and levels of the rules (docs/rules.md) per account.
OUTPUT_COLUMNS = [
    "account_id", "margin_mode",
    "total_asset_usdt", "total_liability_usdt", "collateral_usdt", "net_equity_usdt", "net_collateral_usdt",
    "maintenance_margin_usdt", "initial_margin_usdt", "open_order_loss_usdt",
    "classic_margin_level", "classic_collateral_margin_level", "pro_margin_level_old", "pro_margin_level_new",
    "pro_margin_level", "margin_level",
]  # fmt: skip


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
