"""`crossmargin sample --shape exchange`: a book shaped like a real exchange's export.

The ratios of its rows at 20k accounts are those of the shape (synthetic/shapes.py); its prices are
daily heartbeats, fresh at the showcase as_of; every asset it uses has tiers and brackets; about
0.8 % of its accounts need the null-priced HALTED asset, which `crossmargin run` reports as
`missing_price` and nothing else; same seed, same bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from crossmargin.synthetic import SHOWCASE_AS_OF, write_sample
from crossmargin.synthetic.shapes import EXCHANGE, HALTED
from support.cli import cli

ACCOUNTS = 20_000
AS_OF = "2025-01-21T10:00:00Z"


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exchange") / "in"
    assert (
        cli("sample", "--accounts", ACCOUNTS, "--seed", "7", "--shape", "exchange", "--out", out).exit_code
        == 0
    )
    return out


def _read(book: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(book / f"{table}.parquet")


@pytest.fixture(scope="module")
def scored(book, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exchange-run") / "out"
    res = cli("run", "--as-of", AS_OF, "--input", book, "--out", out, "--max-issue-rate", "0.02")
    assert res.exit_code == 0
    return out


def test_rows_per_account_are_the_exchange_shape(book):
    accounts = _read(book, "accounts")
    n = accounts.height
    orders = _read(book, "open_orders")
    assert _read(book, "balances").height / n == pytest.approx(3.4, abs=0.15)
    assert orders.height / n == pytest.approx(1.7, abs=0.1)
    assert orders["account_id"].n_unique() / n == pytest.approx(0.63, abs=0.02)
    assert _read(book, "mode_switches").height / n == pytest.approx(2.2, abs=0.1)
    assert (accounts["margin_mode"] == "pro").mean() == pytest.approx(0.41, abs=0.02)


def test_every_table_is_sorted_by_account_id(book):
    for table in ("accounts", "balances", "open_orders", "mode_switches"):
        assert _read(book, table)["account_id"].is_sorted(), table


def test_prices_are_daily_heartbeats_fresh_at_as_of(book):
    prices = _read(book, "prices")
    assert prices.height == pytest.approx(9_700, abs=300)
    assert 28 <= prices["asset"].n_unique() <= 34
    per_asset = prices.group_by("asset").agg(pl.len(), pl.col("priced_at").max().alias("last"))
    assert per_asset["len"].min() == per_asset["len"].max() >= 300  # one row a day, about ten months
    assert (prices["priced_at"].dt.time() == dt.time(0, 0)).all()
    last = per_asset["last"].unique()
    assert last.len() == 1 and SHOWCASE_AS_OF - dt.timedelta(hours=24) <= last[0] <= SHOWCASE_AS_OF
    nulls = prices.filter(pl.col("price_usdt").is_null())
    assert nulls.select("asset", "priced_at").rows() == [(HALTED[0], last[0])]


def test_every_asset_needed_has_tiers_and_brackets(book):
    held = _read(book, "balances").filter(
        pl.any_horizontal(pl.col("free", "locked", "borrowed", "interest") != 0)
    )
    used = set(held["asset"])  # an all-zero row needs nothing (the showcase's LUNA row)
    orders = _read(book, "open_orders")
    used |= set(orders["base_asset"]) | set(orders["quote_asset"])
    assert HALTED[0] in used
    assert used <= set(_read(book, "collateral_tiers")["asset"])
    assert used <= set(_read(book, "liability_brackets")["asset"])


def test_the_run_reports_the_null_price_accounts_as_missing_price(scored, book):
    issues = pl.read_parquet(scored / "data_issues.parquet")
    assert set(issues["code"].cast(pl.String)) == {"missing_price"}
    assert issues["detail"].str.contains(HALTED[0]).all()
    holders = _read(book, "balances").filter(pl.col("asset") == HALTED[0])["account_id"].unique()
    assert sorted(issues["account_id"].unique()) == sorted(holders)
    assert holders.len() / _read(book, "accounts").height == pytest.approx(
        EXCHANGE.bad_price_share, abs=0.003
    )


def test_same_seed_same_bytes(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_sample(tmp_path / name, accounts=1_000, seed=seed, shape=EXCHANGE)
    files = {d: {p.name: p.read_bytes() for p in sorted((tmp_path / d).iterdir())} for d in "abc"}
    assert files["a"] == files["b"]
    assert files["a"]["balances.parquet"] != files["c"]["balances.parquet"]


def test_unknown_shape_is_refused(tmp_path):
    res = cli("sample", "--accounts", "10", "--shape", "bank", "--out", tmp_path / "x")
    assert res.exit_code == 2
    assert "--shape 'bank' is not one of sample, exchange" in res.stderr
    assert not (tmp_path / "x").exists()
