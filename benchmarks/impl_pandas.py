"""Reference implementation 2: the quantities and levels of the rules (docs/rules.md) with pandas, vectorized.

Written the way a competent pandas user would: read_parquet (only the needed columns), as-of
selection with boolean masks + groupby, merge with the tier tables, column arithmetic, groupby-sum,
left-merge onto the accounts, np.where for the +inf levels, to_parquet. Quantities and levels
only: no validation, no §3 decisions, no actions.

    python benchmarks/impl_pandas.py --input DIR --out FILE.parquet --as-of 2025-01-21T10:00:00Z
"""

from __future__ import annotations

import time
from pathlib import Path

import impl_cli
import numpy as np
import pandas as pd

from crossmargin.policy import resolve


def in_force(df: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Rows of each asset's latest effective_from <= as_of."""
    df = df[df["effective_from"] <= as_of]
    return df[df["effective_from"] == df.groupby("asset")["effective_from"].transform("max")]


def tiered(x: pd.Series, lower: pd.Series, upper: pd.Series) -> pd.Series:
    """clip(x - lower, 0, upper - lower), upper null = unbounded."""
    return (x - lower).clip(lower=0).clip(upper=(upper - lower).fillna(np.inf))


def ratio(num: pd.Series, den: pd.Series) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.inf, num / den)


def compute(inp: Path, as_of: pd.Timestamp, new_formula: bool) -> pd.DataFrame:
    accounts = pd.read_parquet(inp / "accounts.parquet", columns=["account_id", "margin_mode"])
    balances = pd.read_parquet(inp / "balances.parquet")
    orders = pd.read_parquet(
        inp / "open_orders.parquet",
        columns=["account_id", "base_asset", "quote_asset", "side", "price", "remaining_qty"],
    )
    prices = pd.read_parquet(inp / "prices.parquet")
    ct = in_force(pd.read_parquet(inp / "collateral_tiers.parquet"), as_of)
    lb = in_force(pd.read_parquet(inp / "liability_brackets.parquet"), as_of)

    prices = prices[prices["priced_at"] <= as_of]
    px = prices.loc[prices.groupby("asset")["priced_at"].idxmax(), ["asset", "price_usdt"]]

    bal = balances.merge(px, on="asset")
    bal["holding_usdt"] = (bal["free"] + bal["locked"]) * bal["price_usdt"]
    bal["debt_usdt"] = (bal["borrowed"] + bal["interest"]) * bal["price_usdt"]
    bal = bal[["account_id", "asset", "holding_usdt", "debt_usdt"]]
    del balances

    totals = bal.groupby("account_id")[["holding_usdt", "debt_usdt"]].sum()
    totals.columns = ["total_asset_usdt", "total_liability_usdt"]

    c = bal[["account_id", "asset", "holding_usdt"]].merge(
        ct[["asset", "lower_usdt", "upper_usdt", "collateral_ratio"]], on="asset"
    )
    c["collateral_usdt"] = c["collateral_ratio"] * tiered(c["holding_usdt"], c["lower_usdt"], c["upper_usdt"])
    coll = c.groupby("account_id")[["collateral_usdt"]].sum()
    del c

    m = bal.loc[bal["debt_usdt"] > 0, ["account_id", "asset", "debt_usdt"]].merge(
        lb[["asset", "lower_usdt", "upper_usdt", "maintenance_margin_rate", "initial_margin_rate"]],
        on="asset",
    )
    sliced = tiered(m["debt_usdt"], m["lower_usdt"], m["upper_usdt"])
    m["maintenance_margin_usdt"] = m["maintenance_margin_rate"] * sliced
    m["initial_margin_usdt"] = m["initial_margin_rate"] * sliced
    margin = m.groupby("account_id")[["maintenance_margin_usdt", "initial_margin_usdt"]].sum()
    del m, bal

    r0 = ct.loc[ct["lower_usdt"] == 0, ["asset", "collateral_ratio"]]
    p = px.set_index("asset")["price_usdt"]
    r = r0.set_index("asset")["collateral_ratio"]
    # BUY gives quote (qty*price quote units) and receives base; SELL the other way round
    quote_value = (
        orders["remaining_qty"]
        * orders["price"]
        * orders["quote_asset"].map(p)
        * orders["quote_asset"].map(r)
    )
    base_value = orders["remaining_qty"] * orders["base_asset"].map(p) * orders["base_asset"].map(r)
    buy = orders["side"] == "BUY"
    loss = np.where(buy, quote_value - base_value, base_value - quote_value)
    orders = pd.DataFrame({"account_id": orders["account_id"], "open_order_loss_usdt": np.maximum(loss, 0.0)})
    ool = orders.groupby("account_id")[["open_order_loss_usdt"]].sum()

    out = accounts.set_index("account_id").join([totals, coll, margin, ool], how="left").fillna(0.0)
    out = out.reset_index()
    out["net_equity_usdt"] = out["total_asset_usdt"] - out["total_liability_usdt"]
    out["net_collateral_usdt"] = out["collateral_usdt"] - out["total_liability_usdt"]
    out["classic_margin_level"] = ratio(out["total_asset_usdt"], out["total_liability_usdt"])
    out["classic_collateral_margin_level"] = ratio(out["collateral_usdt"], out["total_liability_usdt"])
    out["pro_margin_level_old"] = ratio(out["net_equity_usdt"], out["maintenance_margin_usdt"])
    out["pro_margin_level_new"] = ratio(
        out["net_collateral_usdt"] - out["open_order_loss_usdt"], out["maintenance_margin_usdt"]
    )
    out["pro_margin_level"] = out["pro_margin_level_new"] if new_formula else out["pro_margin_level_old"]
    out["margin_level"] = np.where(
        out["margin_mode"] == "classic", out["classic_margin_level"], out["pro_margin_level"]
    )
    return out[impl_cli.OUTPUT_COLUMNS].sort_values("account_id")


def main() -> None:
    input_dir, out, as_of = impl_cli.parse(__doc__)
    t0 = time.perf_counter()
    compute(input_dir, pd.Timestamp(as_of), resolve(as_of).new_formula).to_parquet(out, index=False)
    impl_cli.report("pandas", time.perf_counter() - t0)


if __name__ == "__main__":
    main()
