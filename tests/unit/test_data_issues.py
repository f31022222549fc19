"""Bad rows never stop the run (docs/rules.md §6): every data-issue code, literal case by case, and
the conservation law on a generated input with faults of every kind.

For each case: the faulty account (id 2) is listed in data_issues with the expected table and code
and a detail that names what is wrong; it has no account_risk row and no actions row; the clean
account next to it (id 1) is scored normally and has no issue. Counter-cases check the conditions
docs/rules.md §6 puts on each requirement (a price, tiers or brackets are needed only for assets an account
holds / owes / trades; a broken table that is not in effect is not a problem).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from crossmargin import engine
from crossmargin.engine import score as compute
from crossmargin.io.schemas import ACCOUNT_RISK, ACTIONS_SCHEMA, DATA_ISSUES, ISSUE_CODES
from crossmargin.market import BASE, QUOTE
from crossmargin.policy import resolve
from crossmargin.synthetic.faults import (
    ALL_FAULT_KINDS,
    BAD_BRACKET,
    BAD_RATE,
    GAP,
    INF_PRICE,
    LATE_PRICE,
    NAN_PRICE,
    NEG_PRICE,
    NO_BRACKETS,
    NO_PRICE,
    NO_TIERS,
    NOT_AT_ZERO,
    NULL_PRICE,
    OVERLAP,
    STALE_PRICE,
    TIED_PRICE,
    inject_faults,
)
from crossmargin.validation import rows
from crossmargin.validation.rules import first_broken
from support.inputs import (
    EPOCH,
    NEW,
    UNTOUCHED,
    account,
    balance,
    brackets,
    clean_tables,
    frame,
    order,
    price,
    reference_tables,
    switch,
    tables,
    ticking,
    tiers,
)

POLICY = resolve(NEW)
BROKEN_REFERENCE = reference_tables(broken=True)  # the good assets and one per way to be broken
NAN, INF = float("nan"), float("inf")
CLEAN = [account(1), account(2, "pro")]
CLEAN_BAL = [
    balance(1, "USDT", free=1000, borrowed=100),
    balance(1, "BTC", free=0.01),
    balance(2, "USDT", free=500),
]


def with_broken_reference(**rows: Any) -> dict[str, pl.DataFrame]:
    """frames.tables(...) with BROKEN_REFERENCE for every reference table not given."""
    return tables(**{**BROKEN_REFERENCE, **rows})


def inject(clean: dict[str, pl.DataFrame], seed: int, per_kind: int):
    """Faults of every kind, per_kind accounts each: (tables, expected issues of each faulty input
    account, ids of the accounts deleted from `accounts` whose rows are now unknown accounts)."""
    f = inject_faults(
        clean, seed=seed, per_kind=per_kind, kinds=ALL_FAULT_KINDS, reference=BROKEN_REFERENCE, shuffle=True
    )
    return f.tables, f.issues, f.unknown_ids


def run(t: dict[str, pl.DataFrame]):
    r = compute(t, POLICY)
    assert dict(r.account_risk.schema) == ACCOUNT_RISK
    assert dict(r.actions.schema) == ACTIONS_SCHEMA
    assert dict(r.data_issues.schema) == DATA_ISSUES
    return r


def issues_of(r, account_id: int | None) -> list[dict[str, Any]]:
    if account_id is None:
        return r.data_issues.filter(pl.col("account_id").is_null()).to_dicts()
    return r.data_issues.filter(pl.col("account_id") == account_id).to_dicts()


def check_excluded(r, account_id: int, table: str, code: str, detail_words: list[str]) -> None:
    """account_id is in data_issues with (table, code) and a useful detail; not in the outputs."""
    got = issues_of(r, account_id)
    match = [i for i in got if i["table"] == table and i["code"] == code]
    assert match, f"account {account_id}: expected ({table}, {code}); got {got}"
    for w in detail_words:
        assert any(w in i["detail"] for i in match), f"{w!r} not in details {[i['detail'] for i in match]}"
    assert account_id not in r.account_risk["account_id"].to_list()
    assert account_id not in r.actions["account_id"].to_list()


def check_clean(r, *ids: int) -> None:
    for a in ids:
        assert issues_of(r, a) == [], issues_of(r, a)
        assert r.account_risk.filter(pl.col("account_id") == a).height == 1


# ---------------------------------------------------------------------------- one case per code
# id -> (tables for accounts 1 (clean) and 2 (faulty), expected table, code, words in the detail)


def _with(balances=(), orders=(), accounts=None, **ref) -> dict[str, pl.DataFrame]:
    return with_broken_reference(
        accounts=accounts or CLEAN, balances=CLEAN_BAL + list(balances), open_orders=list(orders), **ref
    )


def _ref_with(table: str, extra: list[dict]) -> dict[str, list[dict]]:
    base = reference_tables(broken=True)
    return {table: base[table].to_dicts() + extra}


def _dup_accounts() -> dict[str, pl.DataFrame]:
    return _with(accounts=[*CLEAN, account(2, "pro")])


def _accounts_with(row: dict) -> dict[str, pl.DataFrame]:
    return _with(accounts=[account(1), row])


CASES: dict[str, tuple[dict[str, pl.DataFrame], str, str, list[str]]] = {
    # the price in effect: stale, ambiguous, null
    "held_asset_with_stale_price": (
        _with([balance(2, STALE_PRICE, free=1)]),
        "prices",
        "stale_price",
        [STALE_PRICE, "max_price_age 24 h"],
    ),
    "order_leg_with_tied_prices": (
        _with(orders=[order(2, 5, TIED_PRICE, "USDT", "SELL", 1, 1)]),
        "prices",
        "ambiguous_price",
        [TIED_PRICE, "2 distinct prices", "2.0, 2.5"],
    ),
    "owed_asset_with_null_price": (
        _with([balance(2, NULL_PRICE, borrowed=1)]),
        "prices",
        "missing_price",
        [NULL_PRICE, "is null"],
    ),
    # missing_price
    "held_asset_without_price": (
        _with([balance(2, NO_PRICE, free=1)]),
        "prices",
        "missing_price",
        [NO_PRICE],
    ),
    "locked_only_without_price": (
        _with([balance(2, NO_PRICE, locked=1)]),
        "prices",
        "missing_price",
        [NO_PRICE],
    ),
    "owed_asset_without_price": (
        _with([balance(2, NO_PRICE, borrowed=1)]),
        "prices",
        "missing_price",
        [NO_PRICE],
    ),
    "interest_only_without_price": (
        _with([balance(2, NO_PRICE, interest=0.5)]),
        "prices",
        "missing_price",
        [NO_PRICE],
    ),
    "only_future_price": (
        _with([balance(2, LATE_PRICE, free=1)]),
        "prices",
        "missing_price",
        [LATE_PRICE],
    ),
    "order_base_without_price": (
        _with(orders=[order(2, 9, NO_PRICE, "USDT", "SELL", 1, 1)]),
        "prices",
        "missing_price",
        [NO_PRICE],
    ),
    "order_quote_without_price": (
        _with(orders=[order(2, 9, "BTC", NO_PRICE, "BUY", 1, 1)]),
        "prices",
        "missing_price",
        [NO_PRICE],
    ),
    # negative_quantity
    "negative_free": (
        _with([balance(2, "ETH", free=-1)]),
        "balances",
        "negative_quantity",
        ["ETH", "free=-1.0"],
    ),
    "negative_locked": (
        _with([balance(2, "ETH", free=2, locked=-1)]),
        "balances",
        "negative_quantity",
        ["locked=-1.0"],
    ),
    "negative_borrowed": (
        _with([balance(2, "ETH", borrowed=-1)]),
        "balances",
        "negative_quantity",
        ["borrowed=-1.0"],
    ),
    "negative_interest": (
        _with([balance(2, "ETH", borrowed=1, interest=-0.1)]),
        "balances",
        "negative_quantity",
        ["interest=-0.1"],
    ),
    "negative_order_price": (
        _with(orders=[order(2, 9, "BTC", "USDT", "BUY", -100, 1)]),
        "open_orders",
        "negative_quantity",
        ["-100"],
    ),
    "negative_order_qty": (
        _with(orders=[order(2, 9, "BTC", "USDT", "SELL", 100, -1)]),
        "open_orders",
        "negative_quantity",
        ["-1.0"],
    ),
    "negative_price": (
        _with([balance(2, NEG_PRICE, free=1)]),
        "prices",
        "negative_quantity",
        [NEG_PRICE, "-1.0"],
    ),
    # duplicate_row
    "account_twice": (_dup_accounts(), "accounts", "duplicate_row", ["2 times"]),
    "balance_twice": (_with([balance(2, "USDT", free=500)]), "balances", "duplicate_row", ["2"]),
    "order_id_twice": (
        _with(orders=[order(2, 9, "BTC", "USDT", "BUY", 1, 1), order(2, 9, "BTC", "USDT", "BUY", 1, 1)]),
        "open_orders",
        "duplicate_row",
        ["order"],
    ),
    # unknown_mode / bad_value
    "unknown_mode": (_accounts_with(account(2, "isolated")), "accounts", "unknown_mode", ["isolated"]),
    "mode_wrong_case": (_accounts_with(account(2, "Pro")), "accounts", "unknown_mode", ["Pro"]),
    "mode_null": (_accounts_with(account(2, None)), "accounts", "unknown_mode", ["null"]),
    "leverage_4": (
        _accounts_with(account(2, "classic", 4)),
        "accounts",
        "bad_value",
        ["classic_leverage", "4"],
    ),
    "leverage_null_on_pro": (
        _accounts_with(account(2, "pro", None)),
        "accounts",
        "bad_value",
        ["classic_leverage"],
    ),
    "activated_null": (
        _accounts_with(account(2, cross_margin_activated=None)),
        "accounts",
        "bad_value",
        ["cross_margin_activated"],
    ),
    "country_not_iso": (_accounts_with(account(2, country="France")), "accounts", "bad_value", ["France"]),
    # two upper-case letters are not enough: reserved, user-assigned and lower-case codes are refused
    "country_reserved_uk": (
        _accounts_with(account(2, country="UK")),
        "accounts",
        "bad_value",
        ["UK", "ISO 3166-1"],
    ),
    "country_user_assigned_xk": (_accounts_with(account(2, country="XK")), "accounts", "bad_value", ["XK"]),
    "country_user_assigned_xx": (_accounts_with(account(2, country="XX")), "accounts", "bad_value", ["XX"]),
    "country_lower_case": (_accounts_with(account(2, country="sg")), "accounts", "bad_value", ["sg"]),
    "country_null": (_accounts_with(account(2, country=None)), "accounts", "bad_value", ["null"]),
    "side_lowercase": (
        _with(orders=[order(2, 9, "BTC", "USDT", "buy", 1, 1)]),
        "open_orders",
        "bad_value",
        ["buy"],
    ),
    "switch_time_null": (
        _with() | {"mode_switches": frame("mode_switches", [switch(2, None)])},
        "mode_switches",
        "bad_value",
        ["switched_at"],
    ),
    # missing tiers / brackets
    "held_asset_without_collateral_tiers": (
        _with([balance(2, NO_TIERS, free=1)]),
        "collateral_tiers",
        "missing_collateral_tiers",
        [NO_TIERS],
    ),
    "order_base_without_collateral_tiers": (
        _with(orders=[order(2, 9, NO_TIERS, "USDT", "BUY", 1, 1)]),
        "collateral_tiers",
        "missing_collateral_tiers",
        [NO_TIERS],
    ),
    "order_quote_without_collateral_tiers": (
        _with(orders=[order(2, 9, "BTC", NO_TIERS, "SELL", 1, 1)]),
        "collateral_tiers",
        "missing_collateral_tiers",
        [NO_TIERS],
    ),
    "owed_asset_without_brackets": (
        _with([balance(2, NO_BRACKETS, borrowed=1)]),
        "liability_brackets",
        "missing_liability_brackets",
        [NO_BRACKETS],
    ),
    "interest_only_without_brackets": (
        _with([balance(2, NO_BRACKETS, interest=1e-8)]),
        "liability_brackets",
        "missing_liability_brackets",
        [NO_BRACKETS],
    ),
    # bad_tier_table
    "tiers_gap": (
        _with([balance(2, GAP, free=1)]),
        "collateral_tiers",
        "bad_tier_table",
        [GAP, "gap"],
    ),
    "tiers_overlap": (
        _with([balance(2, OVERLAP, free=1)]),
        "collateral_tiers",
        "bad_tier_table",
        ["overlap"],
    ),
    "tiers_rate_above_1": (
        _with([balance(2, BAD_RATE, free=1)]),
        "collateral_tiers",
        "bad_tier_table",
        ["1.5"],
    ),
    "tiers_not_from_zero": (
        _with([balance(2, NOT_AT_ZERO, free=1)]),
        "collateral_tiers",
        "bad_tier_table",
        ["starts at 100"],
    ),
    "brackets_negative_rate": (
        _with([balance(2, BAD_BRACKET, borrowed=1)]),
        "liability_brackets",
        "bad_tier_table",
        [BAD_BRACKET, "-0.1"],
    ),
    "brackets_imr_nan": (
        _with(
            [balance(2, "XB", borrowed=1)],
            prices=[
                *reference_tables(True)["prices"].to_dicts(),
                *ticking("XB", 1.0),
            ],
            **_ref_with("liability_brackets", brackets("XB", [(0, None, 0.1, NAN)])),
        ),
        "liability_brackets",
        "bad_tier_table",
        ["initial_margin_rate"],
    ),
    "brackets_gap": (
        _with(
            [balance(2, "XB", borrowed=1)],
            prices=[
                *reference_tables(True)["prices"].to_dicts(),
                *ticking("XB", 1.0),
            ],
            **_ref_with("liability_brackets", brackets("XB", [(0, 10, 0.1, 0.2), (20, None, 0.1, 0.2)])),
        ),
        "liability_brackets",
        "bad_tier_table",
        ["gap"],
    ),
    "tiers_last_slice_bounded": (
        _with(
            [balance(2, "XT", free=1)],
            prices=[
                *reference_tables(True)["prices"].to_dicts(),
                *ticking("XT", 1.0),
            ],
            **_ref_with("collateral_tiers", tiers("XT", [(0, 10, 0.9), (10, 20, 0.8)])),
        ),
        "collateral_tiers",
        "bad_tier_table",
        ["XT"],
    ),
    # non_finite_value
    "nan_free": (_with([balance(2, "ETH", free=NAN)]), "balances", "non_finite_value", ["NaN"]),
    "inf_borrowed": (_with([balance(2, "ETH", borrowed=INF)]), "balances", "non_finite_value", ["inf"]),
    "minus_inf_locked": (_with([balance(2, "ETH", locked=-INF)]), "balances", "non_finite_value", ["-inf"]),
    "nan_order_price": (
        _with(orders=[order(2, 9, "BTC", "USDT", "BUY", NAN, 1)]),
        "open_orders",
        "non_finite_value",
        ["NaN"],
    ),
    "inf_price": (
        _with([balance(2, INF_PRICE, free=1)]),
        "prices",
        "non_finite_value",
        [INF_PRICE, "inf"],
    ),
    "nan_price_of_order_leg": (
        _with(orders=[order(2, 9, NAN_PRICE, "USDT", "SELL", 1, 1)]),
        "prices",
        "non_finite_value",
        ["NaN"],
    ),
    "sum_overflows": (_with([balance(2, "BTC", free=1e305)]), "balances", "non_finite_value", ["overflow"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_case_per_code(case):
    t, table, code, words = CASES[case]
    r = run(t)
    check_excluded(r, 2, table, code, words)
    check_clean(r, 1)
    assert set(r.data_issues["account_id"].to_list()) == {2}


def test_every_spec_code_has_a_literal_case():
    assert {c for _, _, c, _ in CASES.values()} == set(ISSUE_CODES) - {"unknown_account"}  # below


@pytest.mark.parametrize("table", ["balances", "open_orders", "mode_switches"])
def test_unknown_account(table):
    rows = {
        "balances": {"balances": [*CLEAN_BAL, balance(77, "USDT", free=1)]},
        "open_orders": {"balances": CLEAN_BAL, "open_orders": [order(77, 9, "BTC", "USDT", "BUY", 1, 1)]},
        "mode_switches": {
            "balances": CLEAN_BAL,
            "mode_switches": [switch(77, NEW)],
        },
    }[table]
    r = run(with_broken_reference(accounts=CLEAN, **rows))
    check_excluded(r, 77, table, "unknown_account", ["not in accounts"])
    check_clean(r, 1, 2)


def test_null_account_id_in_accounts_is_an_issue_not_a_crash():
    r = run(with_broken_reference(accounts=[account(1), account(None)], balances=CLEAN_BAL[:2]))
    got = issues_of(r, None)
    assert [(i["table"], i["code"]) for i in got] == [("accounts", "bad_value")]
    check_clean(r, 1)
    assert r.account_risk.height == 1


def test_one_account_with_several_faults_is_listed_once_per_fault_and_excluded_once():
    t = _with(
        [balance(2, "ETH", free=-1), balance(2, NO_PRICE, free=1)],
        orders=[order(2, 9, "BTC", "USDT", "HOLD", 1, 1)],
    )
    r = run(t)
    codes = {(i["table"], i["code"]) for i in issues_of(r, 2)}
    assert codes == {
        ("balances", "negative_quantity"),
        ("prices", "missing_price"),
        ("open_orders", "bad_value"),
    }
    assert r.data_issues.filter(pl.col("account_id") == 2).height == 3
    check_clean(r, 1)


# ---------------------------------------------------------------------------- counter-cases: no issue

NO_ISSUE = {
    # docs/rules.md §6: "a balance row that is all zeros needs nothing"
    "all_zero_row_of_unpriced_asset": _with([balance(2, UNTOUCHED)]),
    "all_zero_row_without_tiers": _with([balance(2, NO_TIERS)]),
    # collateral tiers are needed for held / traded assets only; brackets for owed assets only
    "owed_only_asset_without_collateral_tiers": _with([balance(2, NO_TIERS, borrowed=1)]),
    "held_only_asset_without_brackets": _with([balance(2, NO_BRACKETS, free=1)]),
    "held_only_asset_with_bad_brackets": _with([balance(2, BAD_BRACKET, free=1)]),
    "owed_only_asset_with_bad_collateral_tiers": _with([balance(2, GAP, borrowed=1)]),
    # reference data an account does not touch: broken or missing for UNTOUCHED, NOPRICE, INFP, ...
    "broken_reference_data_untouched": _with(),
    # zero price is a price (not missing, not negative)
    "zero_price": _with(
        [balance(2, "Z0", free=5, borrowed=2)],
        prices=[
            *reference_tables(True)["prices"].to_dicts(),
            *ticking("Z0", 0.0),
        ],
        collateral_tiers=reference_tables(True)["collateral_tiers"].to_dicts()
        + tiers("Z0", [(0, None, 0.5)]),
        liability_brackets=reference_tables(True)["liability_brackets"].to_dicts()
        + brackets("Z0", [(0, None, 0.1, 0.2)]),
    ),
    # tier versions: a broken table superseded before as_of, or taking effect after it, is not in effect
    "broken_tiers_superseded_or_future": _with(
        [balance(2, "XT", free=3)],
        prices=[
            *reference_tables(True)["prices"].to_dicts(),
            *ticking("XT", 1.0),
        ],
        collateral_tiers=reference_tables(True)["collateral_tiers"].to_dicts()
        + tiers("XT", [(5, 1, 9.0)], EPOCH - dt.timedelta(days=1))
        + tiers("XT", [(0, None, 0.5)], EPOCH)
        + tiers("XT", [(0, 1, 2.0), (3, None, -1.0)], NEW + dt.timedelta(microseconds=1)),
    ),
    # a NaN / inf / negative price of a superseded snapshot is not the price in effect
    "bad_old_price_superseded": _with(
        [balance(2, "XT", free=3)],
        prices=[
            *reference_tables(True)["prices"].to_dicts(),
            *price("XT", NAN, EPOCH - dt.timedelta(days=2)),
            *price("XT", -4.0, EPOCH - dt.timedelta(days=1)),
            *ticking("XT", 2.0),
            *price("XT", INF, NEW + dt.timedelta(seconds=1)),
        ],
        collateral_tiers=reference_tables(True)["collateral_tiers"].to_dicts()
        + tiers("XT", [(0, None, 0.5)]),
    ),
    # the same order_id in two different accounts is not a duplicate row of either account
    "same_order_id_in_two_accounts": _with(
        orders=[order(1, 9, "BTC", "USDT", "BUY", 1, 1), order(2, 9, "BTC", "USDT", "SELL", 1, 1)]
    ),
    # a mode switch far in the past, or in the future, is valid data
    "switches_outside_today": _with()
    | {"mode_switches": frame("mode_switches", [switch(2, EPOCH), switch(2, NEW + dt.timedelta(1))])},
}


@pytest.mark.parametrize("case", list(NO_ISSUE))
def test_no_issue(case):
    r = run(NO_ISSUE[case])
    assert r.data_issues.height == 0, r.data_issues.to_dicts()
    check_clean(r, 1, 2)


def test_zero_price_values_are_exact():
    r = run(NO_ISSUE["zero_price"])
    row = r.account_risk.filter(pl.col("account_id") == 2).to_dicts()[0]
    assert row["total_asset_usdt"] == 500.0  # the USDT row only; Z0 is worth 0
    assert row["total_liability_usdt"] == 0.0  # Z0 owed but worth 0: no liability in USDT
    assert row["maintenance_margin_usdt"] == 0.0
    assert row["classic_margin_level"] == math.inf


# ---------------------------------------------------------------------------- conservation


def conservation(r, input_ids: set[int], unknown_ids: set[int]) -> None:
    """Every input account is in exactly one of account_risk / data_issues; nothing else appears."""
    risk = r.account_risk["account_id"].to_list()
    assert len(risk) == len(set(risk)), "an account scored twice"
    risk_ids = set(risk)
    issue_ids = set(r.data_issues["account_id"].drop_nulls().to_list())
    assert risk_ids.isdisjoint(issue_ids)
    assert risk_ids | (issue_ids & input_ids) == input_ids
    assert issue_ids - input_ids == unknown_ids
    assert set(r.actions["account_id"].to_list()) <= risk_ids
    # issues of unknown accounts are only ever unknown_account
    assert set(r.data_issues.filter(pl.col("account_id").is_in(sorted(unknown_ids)))["code"].to_list()) <= {
        "unknown_account"
    }
    assert r.data_issues["detail"].null_count() == 0
    assert (r.data_issues["detail"].str.len_chars() > 5).all()
    assert r.data_issues.is_duplicated().sum() == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conservation_with_faults_of_every_kind(seed):
    clean = clean_tables(3000, seed=seed)
    assert run(clean).data_issues.height == 0  # the generator's clean input has no issue
    t, expected, unknown = inject(clean, seed=seed, per_kind=3)
    r = run(t)
    input_ids = set(t["accounts"]["account_id"].to_list())
    conservation(r, input_ids, unknown)

    got: dict[int, set[tuple[str, str]]] = {}
    for row in r.data_issues.iter_rows(named=True):
        got.setdefault(row["account_id"], set()).add((row["table"], str(row["code"])))
    for a, exp in expected.items():
        assert exp <= got.get(a, set()), f"account {a}: expected {exp}, got {got.get(a)}"
        extra = got[a] - exp
        if extra:  # the only tolerated extra: a NaN/inf input also makes the account's sums non-finite
            assert extra == {("balances", "non_finite_value")} and "non_finite_value" in {
                c for _, c in exp
            }, f"account {a}: unexpected extra issues {extra}"
    # no clean account was flagged, and every code of docs/rules.md §6 was produced
    assert set(got) - set(expected) == unknown
    assert {c for codes in got.values() for _, c in codes} == set(ISSUE_CODES)
    # the faulty accounts are the only ones missing from account_risk
    assert r.account_risk.height == len(input_ids) - len(expected)


def assert_same_results(a, b) -> None:
    """Same rows, same issues, same decisions; floats equal up to summation order (a few ulps)."""
    assert a.data_issues.equals(b.data_issues)
    ra, rb = a.account_risk, b.account_risk
    assert ra["account_id"].equals(rb["account_id"])
    for c, dtype in ACCOUNT_RISK.items():
        if dtype == pl.Float64:
            x, y = ra[c].to_numpy(), rb[c].to_numpy()
            with np.errstate(invalid="ignore"):  # inf - inf
                # a null (the distances: none in range) is NaN here, and equal to a null
                same = (x == y) | (abs(x - y) <= 1e-12 * abs(x)) | (np.isnan(x) & np.isnan(y))
            assert same.all(), (c, ra.filter(~pl.Series(same))["account_id"].head(3).to_list())
        else:
            assert ra[c].equals(rb[c]), c
    assert a.actions.drop("amount_usdt").equals(b.actions.drop("amount_usdt"))


def test_results_do_not_depend_on_row_order():
    t, _, _ = inject(clean_tables(500, seed=5), seed=5, per_kind=1)
    a = run(t)
    shuffled = {k: v.sample(fraction=1.0, shuffle=True, seed=99) for k, v in t.items()}
    assert_same_results(a, run(shuffled))


def test_multi_row_group_inputs_give_the_same_issues(tmp_path):
    """Inputs stored in many small parquet row groups (rows of one account spread over them) load and
    give the same data issues and results as the same tables in one piece. Regression: polars 2.1
    pl.format panicked on such input under the streaming engine (details now use data_issues.fmt)."""
    from crossmargin.io.inputs import load_tables

    t, _expected, unknown = inject(clean_tables(30_000, seed=4), seed=4, per_kind=5)
    a = run(t)
    for name, df in t.items():
        df.write_parquet(tmp_path / f"{name}.parquet", row_group_size=997)
    b = run(load_tables(tmp_path))
    conservation(b, set(t["accounts"]["account_id"].to_list()), unknown)
    assert_same_results(a, b)


def test_conservation_on_crossmargin_sample_faults():
    """The same law on the project's synthetic generator (crossmargin.synthetic) with injected faults."""
    from crossmargin.synthetic import generate_with_faults

    t, expected = generate_with_faults(3000, seed=3, faults=0.05)
    r = run(t)
    input_ids = set(t["accounts"]["account_id"].drop_nulls().to_list())
    stray: set[int] = set()
    for name in ["balances", "open_orders", "mode_switches"]:
        stray |= set(t[name]["account_id"].to_list()) - input_ids
    conservation(r, input_ids, stray)
    assert expected.height >= 15 * 5
    got = {(row["account_id"], row["table"], str(row["code"])) for row in r.data_issues.iter_rows(named=True)}
    got_codes = {(a, c) for a, _, c in got}
    missing = [e for e in expected.iter_rows(named=True) if (e["account_id"], e["code"]) not in got_codes]
    assert missing == [], missing[:5]
    assert set(expected["code"].to_list()) <= {c for _, c in got_codes}


# ----------------------------------------------------------------------------- the row pass's flag


def _flags_and_rules(t: dict[str, pl.DataFrame]) -> tuple[int, int]:
    """Row by row, the row pass's flag (rows.balance_breaks, rows.order_breaks: the asset rules
    evaluated once per asset) equals "some rule of the table's list breaks" (first_broken is not
    null), for balances and open orders; returns (broken rows, rows)."""
    lazy = {name: frame.lazy() for name, frame in t.items()}
    terms = engine.reference(lazy, POLICY)
    bal = terms.terms_of(terms.indexed(lazy["balances"], "asset"))
    ords = terms.indexed(terms.indexed(lazy["open_orders"], "base_asset", BASE), "quote_asset", QUOTE)
    ords = terms.terms_of(terms.terms_of(ords, BASE), QUOTE)
    broken = rows_total = 0
    for table, fast, rules in [
        (bal, rows.balance_breaks(terms), rows.balance_rules()),
        (ords, rows.order_breaks(terms), rows.order_rules()),
    ]:
        got = table.select(fast.alias("fast"), first_broken(rules).is_not_null().alias("exact")).collect()
        assert got["fast"].null_count() == 0
        assert got["fast"].to_list() == got["exact"].to_list()
        broken, rows_total = broken + int(got["exact"].sum()), rows_total + got.height
    return broken, rows_total


@pytest.mark.parametrize("case", list(CASES))
def test_the_row_pass_flag_agrees_with_the_rules_on_every_literal_case(case):
    _flags_and_rules(CASES[case][0])


@pytest.mark.parametrize("seed", [0, 1])
def test_the_row_pass_flag_agrees_with_the_rules_on_a_faulty_book(seed):
    t, _, _ = inject(clean_tables(3000, seed=seed), seed=seed, per_kind=3)
    broken, total = _flags_and_rules(t)
    assert 0 < broken < total


def test_a_zero_balance_of_an_unknown_asset_breaks_no_rule():
    """A balance row of an asset no price or table names breaks a rule only if it holds or owes it."""
    t = with_broken_reference(
        accounts=CLEAN,
        balances=[*CLEAN_BAL, balance(1, "NOSUCHASSET"), balance(2, "NOSUCHASSET", free=1)],
    )
    assert _flags_and_rules(t) == (1, len(CLEAN_BAL) + 2)
