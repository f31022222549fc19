"""Reference implementation 3: the plain per-account Python loop (the scalar reference).

Reads an input directory (the harness gives it a slice of ~100k accounts, written by
run_benchmarks.py) into Python objects, builds dicts (price by asset, tiers by asset, balance rows
and orders by account), then iterates account by account computing the quantities and levels of the rules
with scalar float arithmetic, and writes the result to parquet. Quantities and levels only: no
validation, no §3 decisions.

The time it prints (read + loop + write, imports excluded) is linear in the number of accounts;
run_benchmarks.py extrapolates it to N accounts.

    python benchmarks/impl_loop.py --input SLICE_DIR --out FILE.parquet --as-of 2025-01-21T10:00:00Z
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import defaultdict
from pathlib import Path

import impl_cli
import pyarrow as pa
import pyarrow.parquet as pq

from crossmargin.policy import resolve

INF = math.inf


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def tiered(x: float, table: list[tuple[float, float | None, float]]) -> float:
    total = 0.0
    for lower, upper, rate in table:
        width = INF if upper is None else upper - lower
        total += rate * max(min(x - lower, width), 0.0)
    return total


def level(num: float, den: float) -> float:
    return INF if den == 0 else num / den


def in_force(table: list[dict], as_of: dt.datetime) -> dict[str, list[dict]]:
    latest: dict[str, dt.datetime] = {}
    for r in table:
        if r["effective_from"] <= as_of and (
            r["asset"] not in latest or r["effective_from"] > latest[r["asset"]]
        ):
            latest[r["asset"]] = r["effective_from"]
    out: dict[str, list[dict]] = defaultdict(list)
    for r in table:
        if latest.get(r["asset"]) == r["effective_from"]:
            out[r["asset"]].append(r)
    return out


def compute(inp: Path, as_of: dt.datetime, new_formula: bool) -> list[tuple]:
    # --- reference data as dicts
    price: dict[str, float] = {}
    priced_at: dict[str, dt.datetime] = {}
    for r in rows(inp / "prices.parquet"):
        a = r["asset"]
        if r["priced_at"] <= as_of and (a not in priced_at or r["priced_at"] > priced_at[a]):
            priced_at[a] = r["priced_at"]
            price[a] = r["price_usdt"]
    coll_tiers = {
        a: [(t["lower_usdt"], t["upper_usdt"], t["collateral_ratio"]) for t in ts]
        for a, ts in in_force(rows(inp / "collateral_tiers.parquet"), as_of).items()
    }
    first_ratio = {a: next(r for lo, _, r in ts if lo == 0) for a, ts in coll_tiers.items()}
    brackets = in_force(rows(inp / "liability_brackets.parquet"), as_of)
    mm_table = {
        a: [(b["lower_usdt"], b["upper_usdt"], b["maintenance_margin_rate"]) for b in bs]
        for a, bs in brackets.items()
    }
    im_table = {
        a: [(b["lower_usdt"], b["upper_usdt"], b["initial_margin_rate"]) for b in bs]
        for a, bs in brackets.items()
    }

    # --- per-account rows
    balances: dict[int, list[dict]] = defaultdict(list)
    for r in rows(inp / "balances.parquet"):
        balances[r["account_id"]].append(r)
    orders: dict[int, list[dict]] = defaultdict(list)
    for r in rows(inp / "open_orders.parquet"):
        orders[r["account_id"]].append(r)

    out = []
    for acc in rows(inp / "accounts.parquet"):
        aid = acc["account_id"]
        total_asset = total_liability = collateral = mm = im = ool = 0.0
        for b in balances.get(aid, ()):
            if b["free"] + b["locked"] == 0 and b["borrowed"] + b["interest"] == 0:
                continue  # an all-zero row needs no price
            p = price[b["asset"]]
            holding_usdt = (b["free"] + b["locked"]) * p
            debt_usdt = (b["borrowed"] + b["interest"]) * p
            total_asset += holding_usdt
            total_liability += debt_usdt
            collateral += tiered(holding_usdt, coll_tiers[b["asset"]])
            if debt_usdt > 0:
                mm += tiered(debt_usdt, mm_table[b["asset"]])
                im += tiered(debt_usdt, im_table[b["asset"]])
        for o in orders.get(aid, ()):
            base, quote = o["base_asset"], o["quote_asset"]
            quote_value = o["remaining_qty"] * o["price"] * price[quote] * first_ratio[quote]
            base_value = o["remaining_qty"] * price[base] * first_ratio[base]
            if o["side"] == "BUY":
                ool += max(0.0, quote_value - base_value)
            else:
                ool += max(0.0, base_value - quote_value)
        net_equity = total_asset - total_liability
        net_collateral = collateral - total_liability
        cml = level(total_asset, total_liability)
        ccml = level(collateral, total_liability)
        old = level(net_equity, mm)
        new = level(net_collateral - ool, mm)
        pro = new if new_formula else old
        margin_level = cml if acc["margin_mode"] == "classic" else pro
        out.append((aid, acc["margin_mode"], total_asset, total_liability, collateral, net_equity, net_collateral,
                    mm, im, ool, cml, ccml, old, new, pro, margin_level))  # fmt: skip
    return out


COLUMNS = impl_cli.OUTPUT_COLUMNS


def main() -> None:
    input_dir, out, as_of = impl_cli.parse(__doc__)
    new_formula = resolve(as_of).new_formula
    t0 = time.perf_counter()
    result = compute(input_dir, as_of, new_formula)
    table = pa.Table.from_pylist([dict(zip(COLUMNS, r, strict=True)) for r in result])
    pq.write_table(table, out)
    impl_cli.report("loop", time.perf_counter() - t0, accounts=len(result))


if __name__ == "__main__":
    main()
