"""`crossmargin sample` (src/crossmargin/synthetic/) and the committed data/sample/.

* determinism (same seed -> same bytes), schema conformance, csv == parquet == in-memory;
* realism of the random accounts (heavy tail, modes, quotes, switches, reference data shapes);
* injected faults: each faulted account is reported with its expected docs/rules.md §6 code, nothing else is;
* the golden test: compute() on the showcase at 2025-01-21T10:00:00Z gives every showcase account
  exactly the flags and actions of its row in tests/support/showcase_expected.py (and data/sample/README.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crossmargin import synthetic as S
from crossmargin.engine import score as compute
from crossmargin.errors import UsageError
from crossmargin.io.inputs import load_tables
from crossmargin.io.schemas import (
    BORROW_BLOCKED_REASONS,
    INPUT_SCHEMAS,
    ISSUE_CODES,
    PRO_CONDITIONS_NEW,
    TABLES,
)
from crossmargin.policy import resolve
from crossmargin.synthetic import population, writer
from crossmargin.synthetic.universe import REF_PRICE, SYMBOLS, TIER_V1, utc
from support import REPO
from support.showcase_expected import expected, expected_actions, showcase_markdown

SAMPLE_DIR = REPO / "data" / "sample"
# the exact command of data/sample/README.md: crossmargin sample --accounts 400 --seed 1 --out data/sample
SAMPLE_ACCOUNTS, SAMPLE_SEED = 400, 1
AS_OF = S.SHOWCASE_AS_OF


@pytest.fixture(scope="module")
def random_tables() -> dict[str, pl.DataFrame]:
    return S.generate(20_000, seed=3)


@pytest.fixture(scope="module")
def random_result(random_tables):
    return compute(random_tables, resolve(AS_OF))


# ------------------------------------------------------------------ determinism and schemas


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_same_bytes(tmp_path, fmt):
    a = S.write_sample(tmp_path / "a", accounts=1500, seed=9, faults=0.02, fmt=fmt)
    S.write_sample(tmp_path / "b", accounts=1500, seed=9, faults=0.02, fmt=fmt)
    S.write_sample(tmp_path / "c", accounts=1500, seed=10, faults=0.02, fmt=fmt)
    assert "1,500 random accounts" in a and "30 injected faults" in a
    fa, fb, fc = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert sorted(fa) == sorted(f"{t}.{fmt}" for t in TABLES)
    assert fa == fb
    # another seed changes the random accounts, not the (seed-independent) reference data
    assert fa[f"balances.{fmt}"] != fc[f"balances.{fmt}"]
    assert fa[f"prices.{fmt}"] == fc[f"prices.{fmt}"]


def test_files_match_generate_and_schemas(tmp_path):
    S.write_sample(tmp_path / "p", accounts=700, seed=4, faults=0.03)
    S.write_sample(tmp_path / "c", accounts=700, seed=4, faults=0.03, fmt="csv")
    mem = S.generate(700, seed=4, faults=0.03)
    from_parquet = {k: v.collect() for k, v in load_tables(tmp_path / "p").items()}
    from_csv = {k: v.collect() for k, v in load_tables(tmp_path / "c").items()}
    for name in TABLES:
        assert mem[name].schema == pl.Schema(INPUT_SCHEMAS[name]), name  # dtypes and column order
        assert from_parquet[name].equals(mem[name], null_equal=True), name
        assert from_csv[name].equals(mem[name], null_equal=True), name


def test_writing_over_an_input_directory_is_refused_and_deletes_nothing(tmp_path):
    S.write_sample(tmp_path, accounts=10, seed=1, fmt="csv")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(UsageError, match=r"already holds accounts\.csv"):
        S.write_sample(tmp_path, accounts=10, seed=1)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_parquet_row_groups_are_1m_rows(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1000)
    monkeypatch.setattr(population, "CHUNK_ACCOUNTS", 700)  # chunks do not line up with row groups
    S.write_sample(tmp_path, accounts=2600, seed=2)
    meta = pq.ParquetFile(tmp_path / "balances.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes[:-1] == [1000] * (len(sizes) - 1) and 0 < sizes[-1] <= 1000 and len(sizes) > 5
    # chunking changes nothing but the layout: same rows as one pass with the same chunk size
    assert pl.read_parquet(tmp_path / "balances.parquet").equals(S.generate(2600, 2)["balances"])


def test_bad_arguments():
    with pytest.raises(ValueError):
        S.generate(10, seed=1, faults=1.5)
    with pytest.raises(ValueError):
        S.generate(-1, seed=1)
    with pytest.raises(ValueError):
        S.write_sample(Path("/tmp/never-written"), 1, 1, fmt="json")


# ------------------------------------------------------------------ realism


def test_keys_unique_without_faults(random_tables):
    t = random_tables
    assert t["accounts"]["account_id"].is_unique().all()
    assert not t["balances"].select(pl.struct("account_id", "asset").is_duplicated().any()).item()
    assert t["open_orders"]["order_id"].is_unique().all()
    known = set(t["accounts"]["account_id"])
    for name in ("balances", "open_orders", "mode_switches"):
        assert set(t[name]["account_id"]) <= known, name
    for name in TABLES:  # no NaN / inf / negative numbers anywhere
        for col, dtype in INPUT_SCHEMAS[name].items():
            if dtype == pl.Float64():
                values = t[name][col].drop_nulls().to_numpy()
                assert np.isfinite(values).all() and (values >= 0).all(), (name, col)


def test_heavy_tail_of_assets_per_account(random_tables):
    bal = random_tables["balances"].filter(pl.col("account_id") >= S.FIRST_RANDOM_ID)
    per = bal.group_by("account_id").len()["len"]
    n_random = 20_000
    assert 0.005 < 1 - per.len() / n_random < 0.02  # ~1% of accounts have no balance rows
    assert 3.5 < bal.height / n_random < 6.0  # ~4.6 rows per account
    assert 2 <= per.median() <= 4
    assert (per <= 4).mean() > 0.55  # most hold 1-4 assets
    assert 0.002 < (per >= 20).mean() < 0.03 and per.max() >= 25  # ... and some 20+
    zero = bal.filter(
        (pl.col("free") == 0)
        & (pl.col("locked") == 0)
        & (pl.col("borrowed") == 0)
        & (pl.col("interest") == 0)
    )
    assert zero.height > 0  # all-zero rows (an emptied asset) exist and need no reference data
    assert set(bal["asset"]) == set(SYMBOLS)


def test_accounts_mix(random_tables):
    acc = random_tables["accounts"].filter(pl.col("account_id") >= S.FIRST_RANDOM_ID)
    mix = acc.group_by("margin_mode", "classic_leverage").len()
    assert mix.height == 4  # classic/pro x 3x/5x
    assert 0.15 < (acc["margin_mode"] == "pro").mean() < 0.35
    assert {"US", "CA", "NL"} <= set(acc["country"]) and acc["country"].n_unique() > 20
    pro = acc.filter(pl.col("margin_mode") == "pro")
    q = pro["questionnaire_completed_at"]
    cutoff = utc("2024-12-17T00:00:00Z")
    assert q.null_count() > 0  # never did the questionnaire
    assert (q < cutoff).sum() > 0  # did the old one only
    assert (q > AS_OF).sum() > 0  # did it after the showcase as_of
    assert ((q >= cutoff) & (q <= AS_OF)).mean() > 0.6  # most are compliant
    assert acc["cross_margin_activated"].mean() < 1 and acc["pro_quiz_passed"].mean() < 1


def test_orders_and_switches(random_tables):
    orders = random_tables["open_orders"].filter(pl.col("account_id") >= S.FIRST_RANDOM_ID)
    assert 0.7 < orders.height / 20_000 < 1.3  # ~1 open order per account
    assert {"USDT", "BTC", "ETH", "USDC", "FDUSD"} <= set(orders["quote_asset"])
    assert set(orders["side"]) == {"BUY", "SELL"}
    assert (orders["price"] > 0).all() and (orders["remaining_qty"] > 0).all()
    sw = random_tables["mode_switches"]
    day = sw.filter(pl.col("switched_at").is_between(utc("2025-01-21T00:00:00Z"), AS_OF, closed="both"))
    per_day = day.group_by("account_id").len()["len"]
    assert (per_day >= 5).sum() >= 5  # some accounts used every switch of the showcase day
    assert sw.filter(pl.col("switched_at") > AS_OF).height > 0  # and switches after it exist


def test_reference_data_shapes():
    ref = S.reference_tables()
    prices = ref["prices"]
    assert set(prices["asset"]) == set(SYMBOLS) and 25 <= len(SYMBOLS) <= 35
    assert (prices.filter(pl.col("asset") == "USDT")["price_usdt"] == 1.0).all()
    at = prices.filter(pl.col("priced_at") == AS_OF)
    assert dict(at.select("asset", "price_usdt").iter_rows()) == dict(
        zip(SYMBOLS, REF_PRICE.tolist(), strict=False)
    )
    counts = prices.group_by("asset").agg(
        (pl.col("priced_at") <= AS_OF).sum().alias("before"),
        (pl.col("priced_at") > AS_OF).sum().alias("after"),
    )
    assert (counts["before"] >= 3).all() and (counts["after"] >= 3).all()
    btc = prices.filter(pl.col("asset") == "BTC")["price_usdt"]
    assert btc.n_unique() > 50 and btc.min() > 60_000 and btc.max() < 180_000  # a walk, not a constant

    for name, rate in (
        ("collateral_tiers", "collateral_ratio"),
        ("liability_brackets", "maintenance_margin_rate"),
    ):
        t = ref[name]
        versions = t.group_by("asset").agg(pl.col("effective_from").n_unique())
        assert (versions["effective_from"] == 2).all() and set(versions["asset"]) == set(SYMBOLS)
        shape = (
            t.sort("asset", "effective_from", "lower_usdt")
            .group_by("asset", "effective_from", maintain_order=True)
            .agg(
                (pl.col("lower_usdt").first() == 0).alias("starts_at_0"),
                (pl.col("lower_usdt").slice(1) == pl.col("upper_usdt").slice(0, pl.len() - 1))
                .all()
                .alias("contiguous"),
                pl.col("upper_usdt").last().is_null().alias("open_ended"),
                (pl.col("upper_usdt").slice(0, pl.len() - 1).is_not_null()).all().alias("one_open_slice"),
                pl.col(rate).is_sorted(descending=(name == "collateral_tiers")).alias("monotone"),
            )
        )
        assert shape.select(pl.all_horizontal(pl.exclude("asset", "effective_from")).all()).item(), name
    tiers = ref["collateral_tiers"].filter(pl.col("effective_from") == AS_OF, pl.col("lower_usdt") == 0)
    first = dict(tiers.select("asset", "collateral_ratio").iter_rows())
    assert (
        first["USDT"] == first["USDC"] == 1.0
        and first["BTC"] == 0.95
        and first["PEPE"] < first["SOL"] < first["BTC"]
    )
    br = ref["liability_brackets"]
    assert (br["initial_margin_rate"] >= br["maintenance_margin_rate"]).all()


def test_spec_worked_example_brackets():
    """BTC / ETH brackets of the first version are the docs/rules.md §1 example: MM 31,330, IM 75,327.1."""
    br = S.reference_tables()["liability_brackets"].filter(pl.col("effective_from") == TIER_V1)

    def tiered(asset: str, x: float, rate: str) -> float:
        rows = br.filter(pl.col("asset") == asset).sort("lower_usdt")
        up = rows["upper_usdt"].fill_null(float("inf")).to_numpy()
        lo = rows["lower_usdt"].to_numpy()
        return float((rows[rate].to_numpy() * np.clip(x - lo, 0, up - lo)).sum())

    mm = tiered("BTC", 13 * 30_000, "maintenance_margin_rate") + tiered(
        "ETH", 13 * 3_000, "maintenance_margin_rate"
    )
    im = tiered("BTC", 13 * 30_000, "initial_margin_rate") + tiered("ETH", 13 * 3_000, "initial_margin_rate")
    assert mm == pytest.approx(31_330) and im == pytest.approx(75_327.1)


def test_realistic_decision_shares(random_result):
    risk = random_result.account_risk.filter(pl.col("account_id") >= S.FIRST_RANDOM_ID)
    assert risk.height == 20_000 and random_result.data_issues.height == 0
    pro = risk.filter(pl.col("margin_mode") == "pro")
    classic = risk.filter(pl.col("margin_mode") == "classic")
    shares = {
        "classic margin_call": classic["margin_call"].mean(),
        "classic liquidation": classic["liquidation"].mean(),
        "pro margin_call": pro["margin_call"].mean(),
        "pro liquidation": pro["liquidation"].mean(),
        "borrow_blocked": risk["borrow_blocked"].mean(),
        "pro due_for_migration": pro["due_for_migration"].mean(),
        "pro partial repayment": (pro["partial_repayment_usdt"] > 0).mean(),
        "bad debt": (risk["bad_debt_usdt"] > 0).mean(),
        "classic eligible_for_pro": classic["eligible_for_pro"].mean(),
        "pro can_switch_to_classic": pro["can_switch_to_classic"].mean(),
        "no switch left": (risk["switches_left_today"] == 0).mean(),
    }
    bounds = {
        "classic margin_call": (0.01, 0.08),
        "classic liquidation": (0.002, 0.03),
        "pro margin_call": (0.02, 0.2),
        "pro liquidation": (0.005, 0.08),
        "borrow_blocked": (0.05, 0.4),
        "pro due_for_migration": (0.1, 0.35),
        "pro partial repayment": (0.01, 0.15),
        "bad debt": (0.0003, 0.01),
        "classic eligible_for_pro": (0.01, 0.15),
        "pro can_switch_to_classic": (0.05, 0.6),
        "no switch left": (0.0002, 0.01),
    }
    bad = {k: v for k, v in shares.items() if not bounds[k][0] <= v <= bounds[k][1]}
    assert not bad, bad
    reasons = set(risk["borrow_blocked_reason"].drop_nulls().cast(pl.String))
    assert reasons == {"collateral_below_initial_risk_ratio", "pro_not_compliant", "no_available_margin"}
    failed = set(classic["pro_ineligible_reasons"].explode().drop_nulls())
    assert failed == {
        "cross_margin_activated",
        "pro_quiz_passed",
        "terms_agreed",
        "pro_margin_level_after_switch",
        "net_equity",
        "country_not_restricted",
        "switches_left_today",
    }
    assert (risk["open_order_loss_usdt"] > 0).mean() > 0.2


# ------------------------------------------------------------------ faults


def test_faults_injected_as_requested():
    _, expected = S.generate_with_faults(3000, seed=5, faults=0.05)
    assert expected.height == 150 and expected["account_id"].is_unique().all()
    assert set(expected["kind"]) == set(S.SAMPLE_FAULT_KINDS)
    assert set(expected["code"]) == set(ISSUE_CODES)  # every docs/rules.md §6 code is exercised
    assert (expected["account_id"] >= S.FIRST_RANDOM_ID).all()  # the showcase is never faulted
    assert S.generate_with_faults(3000, seed=5, faults=0.0)[1].height == 0


def test_inject_faults_on_given_tables():
    clean = S.generate(1000, seed=8)
    faulty = S.inject_faults(clean, 0.03, seed=2)
    tables, expected = faulty.tables, faulty.expected
    assert expected.height == 30 and set(expected["code"]) <= set(ISSUE_CODES)
    assert {"NOPRICE", "GAPTIER"} <= set(tables["collateral_tiers"]["asset"])
    assert "NOPRICE" not in set(tables["prices"]["asset"])
    for name in TABLES:
        assert tables[name].schema == pl.Schema(INPUT_SCHEMAS[name])


def test_engine_reports_each_injected_fault():
    tables, expected = S.generate_with_faults(3000, seed=6, faults=0.05)
    result = compute(tables, resolve(AS_OF))
    issues = result.data_issues.with_columns(pl.col("code").cast(pl.String))
    got = issues.group_by("account_id").agg(pl.col("code"))
    joined = expected.join(got, on="account_id", how="left")
    missing = joined.filter(~pl.col("code_right").fill_null([]).list.contains(pl.col("code")))
    assert missing.is_empty(), missing
    # nothing else is reported, and faulted accounts are never scored
    assert set(issues["account_id"]) == set(expected["account_id"])
    assert not set(result.account_risk["account_id"]) & set(expected["account_id"])
    # every input account is in exactly one of account_risk / data_issues
    inputs = set(tables["accounts"]["account_id"])
    assert inputs <= set(result.account_risk["account_id"]) | set(issues["account_id"])


# ------------------------------------------------------------------ the showcase (golden test)


def _same(got, want) -> bool:
    if isinstance(want, float):
        return got is not None and (got == want or math.isclose(got, want, rel_tol=1e-9))
    return got == want


def _check_showcase(risk: pl.DataFrame, actions: pl.DataFrame) -> list[str]:
    rows = {r["account_id"]: r for r in risk.filter(pl.col("account_id").is_in(S.SHOWCASE_IDS)).to_dicts()}
    problems = []
    for s in S.SHOWCASE:
        row = rows.get(s.account_id)
        if row is None:
            problems.append(f"{s.account_id}: not in account_risk")
            continue
        for key, want in expected(s).items():
            if not _same(row[key], want):
                problems.append(f"{s.account_id} ({s.shows}): {key} = {row[key]!r}, expected {want!r}")
        got = sorted(
            (a, r, m)
            for a, r, m in actions.filter(pl.col("account_id") == s.account_id)
            .select(pl.col("action").cast(pl.String), "reason", "amount_usdt")
            .iter_rows()
        )
        if got != sorted(expected_actions(s)):
            problems.append(
                f"{s.account_id} ({s.shows}): actions {got}, expected {sorted(expected_actions(s))}"
            )
    return problems


def test_showcase_ids_and_intents():
    assert list(range(1, len(S.SHOWCASE) + 1)) == S.SHOWCASE_IDS and max(S.SHOWCASE_IDS) < S.FIRST_RANDOM_ID
    assert len({s.shows for s in S.SHOWCASE}) == len(S.SHOWCASE)
    # every decision of docs/rules.md §4 is demonstrated both ways, every reason at least once
    exp = [expected(s) for s in S.SHOWCASE]
    for key in (
        "margin_call",
        "liquidation",
        "due_for_migration",
        "migrate_now",
        "eligible_for_pro",
        "can_switch_to_classic",
    ):
        assert {e[key] for e in exp} == {True, False}, key
    assert {e["borrow_blocked_reason"] for e in exp} == {None, *BORROW_BLOCKED_REASONS}
    reasons = {
        r
        for e, s in zip(exp, S.SHOWCASE, strict=False)
        if s.mode == "classic"
        for r in e["pro_ineligible_reasons"]
    }
    assert reasons == set(PRO_CONDITIONS_NEW)
    assert any(e["partial_repayment_usdt"] > 0 for e in exp) and any(e["bad_debt_usdt"] > 0 for e in exp)
    assert {e["switches_left_today"] for e in exp} >= {0, 1, 5}
    modes = {(s.mode, s.leverage) for s in S.SHOWCASE}
    assert modes == {("classic", 3), ("classic", 5), ("pro", 3), ("pro", 5)}


def test_showcase_boundaries_are_exact_in_float64():
    """The boundary accounts sit exactly on the thresholds: the float64 divisions give the threshold."""
    pol = resolve(AS_OF)
    assert pol.classic[3].margin_call == 1300.0 / 1000.0 and pol.classic[5].margin_call == 1150.0 / 1000.0
    assert 1100.0 / 1000.0 == pol.classic[3].liquidation == pol.classic[5].liquidation
    assert (
        pol.classic[3].initial_risk_ratio == 1500.0 / 1000.0
        and pol.classic[5].initial_risk_ratio == 1250.0 / 1000.0
    )
    mm = 0.05 * 1000.0  # USDT first bracket MMR (new tables) on 1,000 USDT
    assert 75.0 / mm == pol.pro_margin_call and 50.0 / mm == pol.pro_liquidation
    assert 1100.0 - 1000.0 - 0.1 * 1000.0 == 0.0  # available margin exactly 0
    assert pol.new_min_pro_margin_level == (0.75 * (176000.0 * 0.25) - 30000.0) / (0.05 * 30000.0)
    assert pol.new_min_net_equity_usdt == 5000.0


def test_showcase_golden_at_as_of():
    """compute() at 2025-01-21T10:00:00Z gives each showcase account the flags of its SHOWCASE row."""
    tables = S.generate(300, seed=11)  # the showcase with random neighbours (no effect on it)
    result = compute(tables, resolve(AS_OF))
    assert result.data_issues.filter(pl.col("account_id").is_in(S.SHOWCASE_IDS)).is_empty()
    problems = _check_showcase(result.account_risk, result.actions)
    assert not problems, "\n".join(problems)


def test_committed_sample_is_reproducible_and_golden(tmp_path):
    """data/sample/ is exactly what its README command writes, and a run over it passes the golden check."""
    S.write_sample(tmp_path, accounts=SAMPLE_ACCOUNTS, seed=SAMPLE_SEED)
    committed = {p.name: p.read_bytes() for p in SAMPLE_DIR.glob("*.parquet")}
    assert committed == _files(tmp_path)
    assert sum(len(b) for b in committed.values()) < 1_000_000
    readme = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    assert f"crossmargin sample --accounts {SAMPLE_ACCOUNTS} --seed {SAMPLE_SEED} --out data/sample" in readme
    assert showcase_markdown() in readme  # the table in the README is the one the test checks
    tables = load_tables(SAMPLE_DIR)
    result = compute(tables, resolve(AS_OF))
    assert result.data_issues.is_empty()
    problems = _check_showcase(result.account_risk, result.actions)
    assert not problems, "\n".join(problems)


# Earlier phases of the compliance programme on the showcase's Pro compliance accounts (26-33): old
# formula and old tier tables (USDT IMR 0.1112), borrowing disabled for non-compliant accounts only from
# 2024-12-19, switch to Classic only from 2025-01-15. (account_id: due, borrow_blocked_reason, repayment, liquidation)
EARLIER = {
    "2024-12-18T12:00:00Z": {
        26: (True, None, 0.0, False),
        27: (True, None, 600.0, False),  # available margin 200 - 111.2 > 0
        28: (True, "no_available_margin", 600.0, False),  # 100 - 111.2 < 0
        29: (True, None, 0.0, False),
        30: (True, None, 402.0, False),
        31: (True, "no_available_margin", 500.0, True),
        32: (False, None, 0.0, False),  # compliant since 2024-12-17T00:00Z
        33: (True, None, 0.0, False),
    },
    "2025-01-10T00:00:00Z": {
        26: (True, "pro_not_compliant", 0.0, False),
        27: (True, "pro_not_compliant", 600.0, False),
        28: (True, "pro_not_compliant", 600.0, False),  # terms agreed only on 2025-01-22
        29: (True, "pro_not_compliant", 0.0, False),
        30: (True, "pro_not_compliant", 402.0, False),
        31: (True, "pro_not_compliant", 500.0, True),
        32: (False, None, 0.0, False),
        33: (True, "pro_not_compliant", 0.0, False),
    },
}


@pytest.mark.parametrize("as_of", sorted(EARLIER))
def test_showcase_migration_before_switch_date(as_of):
    policy = resolve(utc(as_of))
    assert not policy.new_formula and not policy.noncompliant_switched
    result = compute(S.generate(0, seed=1), policy)
    risk = {r["account_id"]: r for r in result.account_risk.to_dicts()}
    for account_id, (due, reason, repay, liquidation) in EARLIER[as_of].items():
        row = risk[account_id]
        got = (
            row["due_for_migration"],
            row["borrow_blocked_reason"],
            row["partial_repayment_usdt"],
            row["liquidation"],
        )
        assert got == (due, reason, repay, liquidation), account_id
        assert row["migrate_now"] is False
    migrations = result.actions.filter(pl.col("action") == "MIGRATE_TO_CLASSIC")
    assert set(migrations["reason"]) == {"pending"}
    assert set(migrations["account_id"]) >= {a for a, v in EARLIER[as_of].items() if v[0]}
