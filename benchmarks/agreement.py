"""Do the reference implementations agree with the engine? Their quantities and levels against the
engine's `account_risk`, per column, relative to the operands' magnitude; and the slice of a book
the per-account loop runs on (run_benchmarks.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

REFS = ["duckdb", "pandas", "loop"]
QUANTITIES = [
    "total_asset_usdt", "total_liability_usdt", "collateral_usdt", "net_equity_usdt", "net_collateral_usdt",
    "maintenance_margin_usdt", "initial_margin_usdt", "open_order_loss_usdt",
]  # fmt: skip
LEVELS = [
    "classic_margin_level", "classic_collateral_margin_level", "pro_margin_level_old", "pro_margin_level_new",
    "pro_margin_level", "margin_level",
]  # fmt: skip
REL_TOL = 1e-9


def make_slice(data: Path, n: int, slice_n: int, work: Path) -> Path:
    """Every k-th account (by account_id) with all its rows; reference tables copied whole."""
    import polars as pl

    k = max(1, n // slice_n)
    s = work / f"slice_{n}_every{k}"
    if (s / ".complete").exists():
        return s
    s.mkdir(parents=True, exist_ok=True)
    ids = pl.scan_parquet(data / "accounts.parquet").select("account_id").sort("account_id").gather_every(k)
    ids_df = ids.collect()
    ids_df.lazy().join(pl.scan_parquet(data / "accounts.parquet"), on="account_id").sort(
        "account_id"
    ).sink_parquet(s / "accounts.parquet")
    for t in ["balances", "open_orders", "mode_switches"]:
        pl.scan_parquet(data / f"{t}.parquet").join(ids_df.lazy(), on="account_id", how="semi").sink_parquet(
            s / f"{t}.parquet"
        )
    for t in ["prices", "collateral_tiers", "liability_brackets"]:
        shutil.copy(data / f"{t}.parquet", s / f"{t}.parquet")
    (s / ".complete").write_text(str(ids_df.height))
    return s


def compare(engine_risk: Path, ref: Path) -> dict:
    """Max relative difference of the §1 quantities and levels, reference vs engine account_risk.

    Relative to the magnitude of the operands (|a| + |b| for a - b), so a net equity that cancels
    to ~0 is not flagged for rounding noise; +inf must match +inf exactly.
    """
    import polars as pl

    cols = QUANTITIES + LEVELS
    e = pl.scan_parquet(engine_risk).select(["account_id", *cols])
    r = pl.scan_parquet(ref).select(["account_id", *cols])
    n_engine = e.select(pl.len()).collect().item()
    n_ref = r.select(pl.len()).collect().item()
    j = e.join(r, on="account_id", how="inner", suffix="_ref")
    a = {c: pl.col(c) for c in cols}
    scale_q = {
        "net_equity_usdt": pl.col("total_asset_usdt").abs() + pl.col("total_liability_usdt").abs(),
        "net_collateral_usdt": pl.col("collateral_usdt").abs() + pl.col("total_liability_usdt").abs(),
    }
    mm = pl.col("maintenance_margin_usdt").abs()
    old_scale = (pl.col("total_asset_usdt").abs() + pl.col("total_liability_usdt").abs()) / mm
    new_scale = (
        pl.col("collateral_usdt").abs()
        + pl.col("total_liability_usdt").abs()
        + pl.col("open_order_loss_usdt").abs()
    ) / mm
    scale = {
        **scale_q,
        "pro_margin_level_old": old_scale,
        "pro_margin_level_new": new_scale,
        "pro_margin_level": pl.max_horizontal(old_scale, new_scale),
        "margin_level": pl.max_horizontal(old_scale, new_scale, pl.col("margin_level").abs()),
    }
    exprs = []
    for c in cols:
        x, y = a[c], pl.col(f"{c}_ref")
        s = pl.max_horizontal(x.abs(), y.abs(), scale.get(c, pl.lit(0.0)))
        both_inf = x.is_infinite() & y.is_infinite() & (x == y)
        rel = (
            pl.when(both_inf | (x == y))
            .then(0.0)
            .when(x.is_infinite() | y.is_infinite() | x.is_nan() | y.is_nan() | y.is_null())
            .then(float("inf"))
            .otherwise((x - y).abs() / s)
        )
        exprs.append(rel.max().alias(c))
    exprs.append(pl.len().alias("__matched"))
    row = j.select(exprs).collect().row(0, named=True)
    matched = row.pop("__matched")
    worst = max(row, key=lambda c: row[c])
    return {
        "engine_rows": n_engine,
        "ref_rows": n_ref,
        "matched_rows": matched,
        "max_rel_diff": row[worst],
        "worst_column": worst,
        "per_column": row,
        "ok": bool(row[worst] <= REL_TOL and matched == min(n_engine, n_ref)),
    }


def verify(out: Path, rec: dict) -> dict:
    risk = out / "engine" / "account_risk.parquet"
    result = {}
    if not risk.exists():
        return {"error": "engine produced no account_risk.parquet"}
    for impl in REFS:
        ref = out / f"{impl}.parquet"
        if impl in rec["runs"] and "wall_s" in rec["runs"][impl] and ref.exists():
            c = compare(risk, ref)
            result[impl] = c
            state = "OK" if c["ok"] else "MISMATCH"
            print(
                f"  verify {impl:<7} {state}: max rel diff {c['max_rel_diff']:.3g} ({c['worst_column']}), "
                f"{c['matched_rows']:,} accounts matched (engine {c['engine_rows']:,}, ref {c['ref_rows']:,})",
                flush=True,
            )
    return result
