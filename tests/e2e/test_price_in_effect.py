"""The run names each asset with a price problem (docs/rules.md §6.3): its summary line and manifest,
on a copy of data/sample whose feeds were broken on purpose. The price in effect itself is
tests/unit/test_price_in_effect.py.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from support import SAMPLE
from support.cli import cli
from support.inputs import NEW

H = dt.timedelta(hours=1)


def test_run_names_each_asset_with_a_price_problem(tmp_path):
    """On the sample: ATOM's feed stopped two days ago, POL has two prices at as_of, WIF's is null.
    The run's summary line and manifest name each asset, its problem and the accounts it took out."""
    import json
    import shutil

    inp = tmp_path / "in"
    shutil.copytree(SAMPLE, inp)
    as_of = NEW
    p = pl.read_parquet(inp / "prices.parquet")
    p = p.filter(~((pl.col("asset") == "ATOM") & (pl.col("priced_at") > as_of - 48 * H)))
    tie = p.filter((pl.col("asset") == "POL") & (pl.col("priced_at") == as_of)).with_columns(
        pl.col("price_usdt") + 0.01
    )
    p = pl.concat([p, tie]).with_columns(
        pl.when((pl.col("asset") == "WIF") & (pl.col("priced_at") == as_of))
        .then(None)
        .otherwise(pl.col("price_usdt"))
        .alias("price_usdt")
    )
    p.write_parquet(inp / "prices.parquet")
    out = tmp_path / "out"
    res = cli(
        *[
            "run",
            "--as-of",
            "2025-01-21T10:00:00Z",
            "--input",
            str(inp),
            "--out",
            str(out),
            "--max-issue-rate",
            "0.2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().endswith(
        "price problems: ATOM stale_price (16 accounts), POL ambiguous_price (16 accounts), "
        "WIF missing_price (24 accounts)"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(x["asset"], x["code"], x["accounts"]) for x in manifest["price_problems"]] == [
        ("ATOM", "stale_price", 16),
        ("POL", "ambiguous_price", 16),
        ("WIF", "missing_price", 24),
    ]
    assert manifest["accounts_with_issues"] == 50
    issues = pl.read_parquet(out / "data_issues.parquet")
    assert issues["account_id"].n_unique() == 50
    assert set(issues["code"].cast(pl.String)) == {"stale_price", "ambiguous_price", "missing_price"}
