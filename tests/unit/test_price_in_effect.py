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
