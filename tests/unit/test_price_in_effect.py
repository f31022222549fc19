"""The price in effect: latest priced_at <= as_of; ambiguous, null, stale and missing prices.

Literal frames: account 1 holds 1 BTC and owes nothing; only the BTC price rows change per case.
USDT rows are given explicitly too, priced one hour before as_of. Every case checks the code, that
the result does not depend on the order of the price rows, and what the run reports per asset.
"""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest

from support import SAMPLE
from support.inputs import NEW, account, balance, one, one_slice, price, run, tables

H = dt.timedelta(hours=1)
US = dt.timedelta(microseconds=1)
FRESH = NEW - H


def _tables(btc_rows: list[tuple[float | None, dt.datetime]]) -> dict[str, pl.DataFrame]:
    rows = price("USDT", 1.0, FRESH)
    rows += [row for p, at in btc_rows for row in price("BTC", p, at)]
    return tables(
        accounts=[account(1), account(2)],
        balances=[balance(1, "BTC", free=1.0), balance(2, "USDT", free=10.0)],
        prices=rows,
        collateral_tiers=[one_slice("BTC", 0.9)],
    )


def _codes(result, account_id: int = 1) -> list[str]:
    issues = result.data_issues.filter(pl.col("account_id") == account_id)
    return sorted(issues["code"].cast(pl.String).to_list())


def _every_order(t: dict[str, pl.DataFrame]):
    """The same tables with the price rows in every order (at most 24)."""
    prices = t["prices"]
    for perm in itertools.islice(itertools.permutations(range(prices.height)), 24):
        yield {**t, "prices": prices[list(perm)]}


@pytest.mark.parametrize(
    ("rows", "code"),
    [
        ([(104_000.0, FRESH), (104_001.0, FRESH)], "ambiguous_price"),
        ([(104_000.0, FRESH), (None, FRESH)], "ambiguous_price"),  # a null counts as a value
        ([(None, FRESH)], "missing_price"),  # a null is no price, never 0
        ([(104_000.0, NEW - 24 * H - US)], "stale_price"),  # just older than 24 h
        ([(104_000.0, NEW + US)], "missing_price"),  # only a price after as_of
        ([], "missing_price"),  # no row at all
        ([(104_000.0, FRESH), (None, FRESH - H)], None),  # an older null is superseded
        ([(104_000.0, FRESH), (104_000.0, FRESH)], None),  # exact duplicates are one value
        ([(0.0, FRESH), (-0.0, FRESH)], None),  # 0.0 and -0.0 are one value
        ([(104_000.0, NEW - 24 * H)], None),  # exactly 24 h old is not stale
        ([(1.0, FRESH - H), (104_000.0, FRESH), (7.0, NEW + US)], None),  # the latest <= as_of
    ],
)
def test_price_in_effect_per_case_and_in_every_row_order(rows, code):
    t = _tables(rows)
    results = [run(ordered, NEW) for ordered in _every_order(t)]
    for r in results:
        assert _codes(r) == ([code] if code else [])
        assert _codes(r, 2) == []  # account 2 needs only USDT
        assert r.account_risk.equals(results[0].account_risk)
        assert r.data_issues.equals(results[0].data_issues)
    if code is None:
        value = max(p for p, at in rows if at <= NEW and at == max(a for _, a in rows if a <= NEW))
        assert one(results[0], 1)["total_asset_usdt"] == value + 0.0


def test_price_problems_name_the_asset_and_count_the_accounts():
    t = _tables([(104_000.0, FRESH), (104_001.0, FRESH)])
    t["accounts"] = pl.concat([t["accounts"], tables(accounts=[account(3)])["accounts"]])
    t["balances"] = pl.concat([t["balances"], tables(balances=[balance(3, "BTC", borrowed=0.5)])["balances"]])
    r = run(t, NEW)
    problems = r.price_problems.to_dicts()
    assert [(p["asset"], str(p["code"]), p["accounts"]) for p in problems] == [("BTC", "ambiguous_price", 2)]
    assert "104000.0" in problems[0]["detail"] and "104001.0" in problems[0]["detail"]


def test_stale_price_age_is_policy_data(tmp_path):
    """max_price_age comes from the policy: a user file can widen it (and the stale account is scored)."""
    t = _tables([(104_000.0, NEW - 30 * H)])
    assert _codes(run(t, NEW)) == ["stale_price"]
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[version]]\nname = "wide-price-age"\neffective_from = 2020-01-01T00:00:00Z\n'
        "[version.market]\nmax_price_age_hours = 48\n"
    )
    r = run(t, NEW, policy)
    assert _codes(r) == []
    assert one(r, 1)["total_asset_usdt"] == 104_000.0
    assert one(r, 1)["policy_version"] == "wide-price-age"


def test_a_policy_version_is_used_only_from_its_effective_from(tmp_path):
    """A user version effective after as_of changes nothing; at its effective_from it applies."""
    t = _tables([(104_000.0, NEW - 30 * H)])
    policy = tmp_path / "policy.toml"
    later = NEW + H
    policy.write_text(
        f'[[version]]\nname = "later"\neffective_from = {later.isoformat().replace("+00:00", "Z")}\n'
        "[version.market]\nmax_price_age_hours = 48\n"
    )
    before = run(t, NEW, policy)
    assert _codes(before) == ["stale_price"]
    assert before.data_issues["policy_version"].to_list() == ["2024.12-pro-migration"]
    at = run(t, later, policy)  # 31 h old at `later`, within 48 h
    assert _codes(at) == []
    assert one(at, 1)["policy_version"] == "later"


def test_tier_version_after_as_of_is_not_used():
    """Collateral tiers effective after as_of are ignored; the version in effect applies."""
    t = _tables([(100.0, FRESH)])
    t["collateral_tiers"] = pl.concat(
        [
            t["collateral_tiers"],
            tables(collateral_tiers=[one_slice("BTC", 0.5, NEW + US)])["collateral_tiers"],
        ]
    )
    assert one(run(t, NEW), 1)["collateral_usdt"] == 90.0
    assert one(run(t, NEW + US), 1)["collateral_usdt"] == 50.0


def test_run_names_each_asset_with_a_price_problem(tmp_path):
    """On the sample: ATOM's feed stopped two days ago, POL has two prices at as_of, WIF's is null.
    The run's summary line and manifest name each asset, its problem and the accounts it took out."""
    import json
    import shutil

    from typer.testing import CliRunner

    from crossmargin.cli import app

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
    res = CliRunner().invoke(
        app,
        [
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
