"""Named stress scenarios and scenario_risk.parquet (docs/rules.md §8.1, §8.3).

A scenario of multipliers all 1 reproduces account_risk to the bit; moved prices are those of the
scenario (named assets, stable assets, the default); the shipped set; `run --scenarios` end to end
(the file, the manifest, verify, the same bytes whatever --buckets, chunks of bounded size) and its
user errors. Literal frames price every asset one hour before as_of; the CLI runs use data/sample
(fresh at 2025-01-21T10:00:00Z).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from crossmargin import scenario_set
from crossmargin.engine import scenarios, score
from crossmargin.io.inputs import load_inputs
from crossmargin.policy import resolve
from crossmargin.scenario_set import Scenario, ScenarioSet
from support import SAMPLE
from support import reference as ref
from support.inputs import (
    NEW,
    account,
    balance,
    brackets,
    one_bracket,
    one_slice,
    order,
    price,
    run,
    tables,
    tiers,
    ts,
)

H = dt.timedelta(hours=1)


def sample_tables() -> dict[str, pl.LazyFrame]:
    return {name: frame for name, (frame, _) in load_inputs(SAMPLE).items()}


def scenario_frame(t, as_of: dt.datetime, scenario_set: ScenarioSet) -> tuple[pl.DataFrame, pl.DataFrame]:
    scores = score(t, resolve(as_of), scenario_set)
    return scores.account_risk, pl.concat(list(scores.scenario_risk))


# ----------------------------------------------------------------------------- all-1 reproduces account_risk


@pytest.mark.parametrize("as_of", [NEW, ts("2025-01-21T09:59:59Z")])
def test_multipliers_all_one_reproduce_account_risk_exactly(as_of: dt.datetime) -> None:
    """On the sample book (both formulas): every quantity, level, flag and amount equal, bit for bit."""
    flat = ScenarioSet(
        (
            Scenario("flat", 1.0),
            Scenario("flat, every asset named", 1.0, 1.0, {"BTC": 1.0, "USDT": 1.0, "USDC": 1.0}),
        ),
        "test",
    )
    risk, sr = scenario_frame(sample_tables(), as_of, flat)
    assert sr.height == 2 * risk.height
    shared = [c for c in sr.columns if c in risk.columns]
    assert len(shared) >= 28
    for name in flat.names:
        got = sr.filter(pl.col("scenario") == name).select(shared)
        assert_frame_equal(got, risk.select(shared), check_exact=True)


def test_rows_are_account_then_scenario_order() -> None:
    risk, sr = scenario_frame(sample_tables(), NEW, scenario_set.load_scenarios("default"))
    names = scenario_set.load_scenarios("default").names
    assert sr["account_id"].to_list() == [a for a in risk["account_id"].to_list() for _ in names]
    assert sr["scenario"].cast(pl.String).to_list() == names * risk.height
    assert sr.schema == pl.Schema(scenarios.scenario_schema(scenario_set.load_scenarios("default")))


# ----------------------------------------------------------------------------- moved prices, hand-worked


def _book() -> dict[str, pl.DataFrame]:
    """Account 1 (Classic 3x): 1 BTC at 100, 50 USDC at 1, owes 60 USDT. Account 2 (Pro): 2 ETH at 10
    (tiers 1.0 up to 15 USDT, 0.5 above), 100 USDT, owes 0.5 BTC at 100 (brackets 10 % up to 40 USDT,
    20 % above), a BUY of 1 ETH at 12 USDT open."""
    fresh = NEW - H
    return tables(
        accounts=[account(1, "classic", 3), account(2, "pro")],
        balances=[
            balance(1, "BTC", free=1.0),
            balance(1, "USDC", free=50.0),
            balance(1, "USDT", borrowed=60.0),
            balance(2, "ETH", free=2.0),
            balance(2, "USDT", free=100.0),
            balance(2, "BTC", borrowed=0.5),
        ],
        open_orders=[order(2, 1, "ETH", "USDT", "BUY", 12.0, 1.0)],
        prices=[
            price("USDT", 1.0, fresh),
            price("USDC", 1.0, fresh),
            price("BTC", 100.0, fresh),
            price("ETH", 10.0, fresh),
        ],
        collateral_tiers=[
            one_slice("BTC", 0.9),
            one_slice("USDC", 1.0),
            tiers("ETH", [(0, 15, 1.0), (15, None, 0.5)]),
        ],
        liability_brackets=[brackets("BTC", [(0, 40, 0.1, 0.2), (40, None, 0.2, 0.4)]), one_bracket("USDC")],
    )


def test_hand_worked_scenarios() -> None:
    """BTC −30 % alone, a uniform −50 %, and a depeg of every stable asset but USDT (× 0.97).

    Account 1, BTC × 0.7: A = 70 + 50 = 120, L = 60, level 2; uniform × 0.5: A = 50 + 50 = 100
    (USDC is stable), level 100/60; depeg: A = 100 + 48.5 = 148.5.
    Account 2, uniform × 0.5: ETH 5 -> holding 10 (collateral 10, first tier), USDT 100, debt
    0.5 BTC at 50 = 25 (MM 2.5, first bracket); the BUY gives 12 USDT × 1 and receives 1 ETH at 5
    × 1.0: loss 7. Level new = (110 − 25 − 7)/2.5 = 31.2. At r = 0: collateral 15 + 0.5·5 + 100 =
    117.5, debt 50 (MM 4 + 2 = 6), loss 12 − 10 = 2: (117.5 − 50 − 2)/6.
    """
    s = ScenarioSet(
        (
            Scenario("BTC -30%", 1.0, 1.0, {"BTC": 0.7}),
            Scenario("uniform -50%", 0.5),
            Scenario("depeg", 1.0, 0.97, {"USDT": 1.0}),
        ),
        "test",
    )
    risk, sr = scenario_frame(_book(), NEW, s)

    def at(aid: int, name: str) -> dict:
        return sr.filter(pl.col("account_id") == aid, pl.col("scenario") == name).to_dicts()[0]

    assert at(1, "BTC -30%")["total_asset_usdt"] == pytest.approx(120.0)
    assert at(1, "BTC -30%")["classic_margin_level"] == pytest.approx(2.0)
    assert at(1, "uniform -50%")["classic_margin_level"] == pytest.approx(100 / 60)
    assert at(1, "uniform -50%")["total_liability_usdt"] == 60.0
    assert at(1, "depeg")["total_asset_usdt"] == pytest.approx(148.5)
    two = at(2, "uniform -50%")
    assert two["collateral_usdt"] == pytest.approx(110.0)
    assert two["maintenance_margin_usdt"] == pytest.approx(2.5)
    assert two["open_order_loss_usdt"] == pytest.approx(7.0)
    assert two["pro_margin_level"] == pytest.approx(31.2)
    base = risk.filter(pl.col("account_id") == 2).to_dicts()[0]
    assert base["pro_margin_level"] == pytest.approx(65.5 / 6)
    assert at(2, "BTC -30%")["open_order_loss_usdt"] == base["open_order_loss_usdt"]  # no BTC leg


def test_scenario_agrees_with_the_reference_at_moved_prices() -> None:
    """Every quantity and level of scenario_risk equals the scalar reference valued at the same
    multipliers (within 1e-9 relative), for each shipped scenario."""
    t = _book()
    default = scenario_set.load_scenarios("default")
    policy = resolve(NEW)
    _, sr = scenario_frame(t, NEW, default)
    lists = {name: frame.to_dicts() for name, frame in t.items()}
    for s in default.scenarios:
        moved = ref.moved(lists, dict(s.assets or {}), s.default, tuple(policy.stable_assets), s.stable)
        want = ref.compute(moved, policy, hypothetical=True).account_risk
        for aid, row in want.items():
            got = sr.filter(pl.col("account_id") == aid, pl.col("scenario") == s.name).to_dicts()[0]
            for c in [*scenarios.SCENARIO_QUANTITIES, "bad_debt_usdt", "partial_repayment_usdt"]:
                assert got[c] == pytest.approx(row[c], rel=1e-9, abs=1e-9), (s.name, aid, c)
            for c in (
                "margin_call",
                "liquidation",
                "borrow_blocked",
                "eligible_for_pro",
                "can_switch_to_classic",
            ):
                assert got[c] is row[c], (s.name, aid, c)


def test_a_uniform_scenario_at_the_reported_distance_is_at_the_threshold() -> None:
    """liquidation_drop of the Classic account read back as a scenario: liquidated there, not before."""
    risk = run(_book(), NEW).account_risk
    d = risk.filter(pl.col("account_id") == 1)["liquidation_drop"][0]
    assert 0 < d < 1
    s = ScenarioSet((Scenario("at", 1 - d), Scenario("before", 1 - d * (1 - 1e-6))), "test")
    _, sr = scenario_frame(_book(), NEW, s)
    one = sr.filter(pl.col("account_id") == 1)
    assert one.filter(pl.col("scenario") == "at")["margin_level"][0] == pytest.approx(1.1, rel=1e-9)
    assert one.filter(pl.col("scenario") == "before")["liquidation"][0] is False


def test_chunks_of_bounded_size_give_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forced into chunks of a few accounts: the same frame as one chunk."""
    default = scenario_set.load_scenarios("default")
    _, whole = scenario_frame(sample_tables(), NEW, default)
    monkeypatch.setattr(scenarios, "ROWS_PER_CHUNK", 200)
    scores = score(sample_tables(), resolve(NEW), default)
    chunks = list(scores.scenario_risk)
    assert len(chunks) > 10
    assert_frame_equal(pl.concat(chunks), whole, check_exact=True)


@pytest.mark.parametrize("rows_per_chunk", [200, 12_000_000], ids=["chunks of a few accounts", "one chunk"])
def test_rows_of_accounts_with_a_data_issue_are_left_out(
    monkeypatch: pytest.MonkeyPatch, rows_per_chunk: int
) -> None:
    """The scenarios value the rows the row pass read, every account's: accounts that leave the
    outputs with a data issue (a negative quantity; ids 2 and 4, between the valid 1, 3 and 5, where 5
    has no balance rows) are left out of scenario_risk, and their rows change no other account's:
    the same rows as without them."""
    monkeypatch.setattr(scenarios, "ROWS_PER_CHUNK", rows_per_chunk)
    default = scenario_set.load_scenarios("default")
    book = _book()
    renumber = pl.col("account_id").replace(2, 3)
    clean = {
        name: frame.with_columns(renumber) if "account_id" in frame.columns else frame
        for name, frame in book.items()
    }
    clean["accounts"] = pl.concat(
        [clean["accounts"], clean["accounts"].head(1).with_columns(account_id=pl.lit(5, pl.Int64))]
    )
    bad_rows = pl.DataFrame(
        [balance(i, "BTC", free=-1.0) for i in (2, 4)] + [balance(i, "USDT", borrowed=5.0) for i in (2, 4)]
    )
    faulty = dict(clean)
    faulty["accounts"] = pl.concat(
        [clean["accounts"], clean["accounts"].head(2).with_columns(account_id=pl.Series([2, 4]))]
    )
    faulty["balances"] = pl.concat([clean["balances"], bad_rows.cast(clean["balances"].schema)])
    risk, got = scenario_frame(faulty, NEW, default)
    assert risk["account_id"].to_list() == [1, 3, 5]
    _, want = scenario_frame(clean, NEW, default)
    assert_frame_equal(got, want, check_exact=True)


# ----------------------------------------------------------------------------- scenario files


def test_the_shipped_set() -> None:
    s = scenario_set.load_scenarios("default")
    assert s.names == [
        "uniform -10%",
        "uniform -20%",
        "uniform -30%",
        "uniform -50%",
        "uniform +20%",
        "uniform +50%",
        "uniform +100%",
        "BTC -30%",
        "stablecoin depeg",
    ]
    policy = resolve(NEW)
    depeg = s.scenarios[-1]
    assert depeg.multiplier("USDT", True) == 1.0
    assert all(depeg.multiplier(a, True) == 0.97 for a in policy.stable_assets if a != "USDT")
    assert depeg.multiplier("BTC", False) == 1.0
    assert s.scenarios[7].multiplier("BTC", False) == 0.7
    assert s.scenarios[7].multiplier("ETH", False) == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenario = 3", "no [[scenario]]"),
        ("[[scenario]]\ndefault = 0.9", "needs a non-empty `name`"),
        ("[[scenario]]\nname = 'a'", "needs `default`"),
        ("[[scenario]]\nname = 'a'\ndefault = -1", ">= 0"),
        ("[[scenario]]\nname = 'a'\ndefault = nan", ">= 0"),
        ("[[scenario]]\nname = 'a'\ndefault = 1\n[[scenario]]\nname = 'a'\ndefault = 2", "appears twice"),
        ("[[scenario]]\nname = 'a'\ndefault = 1\nassets = { BTC = 'x' }", "assets.BTC"),
        ("[[scenario]]\nname = 'a'\ndefault = 1\nshock = 2", "unknown key"),
        ("[[scenario", "not valid TOML"),
    ],
)
def test_bad_scenario_files(text: str, message: str) -> None:
    with pytest.raises(scenario_set.UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        scenario_set.parse_scenarios(text, "f.toml")


# ----------------------------------------------------------------------------- the run command


def crossmargin(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("crossmargin")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300, check=False)


def run_sample(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return crossmargin(
        "run", "--as-of", "2025-01-21T10:00:00Z", "--input", str(SAMPLE), "--out", str(out), *extra
    )


def test_run_with_the_shipped_scenarios(tmp_path: Path) -> None:
    one, three = tmp_path / "one", tmp_path / "three"
    proc = run_sample(one, "--scenarios", "default")
    assert proc.returncode == 0, proc.stderr
    assert run_sample(three, "--scenarios", "default", "--buckets", "3").returncode == 0
    risk = pl.read_parquet(one / "account_risk.parquet")
    sr = pl.read_parquet(one / "scenario_risk.parquet")
    assert sr.height == 9 * risk.height
    manifest = json.loads((one / "manifest.json").read_text())
    assert manifest["outputs"]["scenario_risk"]["rows"] == sr.height
    assert [s["name"] for s in manifest["scenarios"]["scenarios"]][-1] == "stablecoin depeg"
    assert crossmargin("verify", "--out", str(one)).returncode == 0
    # scenario_risk, nine times account_risk's rows, is the one table written with LZ4
    codecs = {
        f: pq.ParquetFile(one / f"{f}.parquet").metadata.row_group(0).column(0).compression
        for f in ("account_risk", "scenario_risk")
    }
    assert codecs == {"account_risk": "ZSTD", "scenario_risk": "LZ4"}
    for f in ("account_risk", "actions", "data_issues", "scenario_risk"):
        assert (one / f"{f}.parquet").read_bytes() == (three / f"{f}.parquet").read_bytes(), f
    # a later run without scenarios replaces the directory (scenario_risk was ours) and drops the file
    assert run_sample(one).returncode == 0
    assert not (one / "scenario_risk.parquet").exists()


@pytest.mark.parametrize("rows_per_chunk", [300, 12_000_000], ids=["parts of a row group", "a row group"])
def test_row_groups_hold_whole_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows_per_chunk: int
) -> None:
    """With row groups of 100 rows at most, scenario_risk's hold 11 whole accounts (99 rows) each, the
    last the rest: an account's nine scenarios never straddle two row groups, and the file has the
    same bytes in one bucket or three, and whether a chunk is a row group or a part of one."""
    from crossmargin import job
    from crossmargin.io import outputs

    monkeypatch.setitem(outputs.PARQUET_OPTIONS, "row_group_size", 100)
    monkeypatch.setattr(scenarios, "ROWS_PER_CHUNK", rows_per_chunk)
    as_of = dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC)
    for name, buckets in (("one", 1), ("three", 3)):
        job.run_job(as_of, SAMPLE, tmp_path / name, buckets=buckets, scenarios="default")
    one = tmp_path / "one" / "scenario_risk.parquet"
    assert one.read_bytes() == (tmp_path / "three" / "scenario_risk.parquet").read_bytes()
    meta = pq.ParquetFile(one).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    accounts = pl.read_parquet(tmp_path / "one" / "account_risk.parquet").height
    assert sizes == [99] * (accounts // 11) + ([9 * (accounts % 11)] if accounts % 11 else [])
    ids = pl.read_parquet(one, columns=["account_id"])["account_id"]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    assert all(ids[s] != ids[s - 1] for s in starts[1:])  # a row group starts with a new account


def test_run_with_a_scenario_file(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(
        '[[scenario]]\nname = "flat"\ndefault = 1.0\n\n[[scenario]]\nname = "crash"\ndefault = 0.25\n'
    )
    out = tmp_path / "out"
    assert run_sample(out, "--scenarios", str(f)).returncode == 0
    risk = pl.read_parquet(out / "account_risk.parquet")
    sr = pl.read_parquet(out / "scenario_risk.parquet")
    flat = sr.filter(pl.col("scenario") == "flat")
    assert_frame_equal(
        flat.select("account_id", "margin_level"), risk.select("account_id", "margin_level"), check_exact=True
    )
    crash = sr.filter(pl.col("scenario") == "crash")
    assert crash["liquidation"].sum() > risk["liquidation"].sum()


@pytest.mark.parametrize("content", [None, "[[scenario]]\nname = 'x'\n"])
def test_run_refuses_a_bad_scenario_file_before_any_work(tmp_path: Path, content: str | None) -> None:
    f = tmp_path / "bad.toml"
    if content is not None:
        f.write_text(content)
    out = tmp_path / "out"
    proc = run_sample(out, "--scenarios", str(f))
    assert proc.returncode == 2
    assert proc.stderr.startswith("crossmargin: error: --scenarios")
    assert "Traceback" not in proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------- reading them: SQL and HTML


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenario-run") / "out"
    proc = run_sample(out, "--scenarios", "default")
    assert proc.returncode == 0, proc.stderr
    return out


def test_scenario_summary_report(scenario_run: Path) -> None:
    """Per scenario and margin mode, the counts and sums recomputed here from the two parquet files."""
    from crossmargin.analytics.sql import run_report

    got = run_report("scenario_summary", scenario_run)
    names = scenario_set.load_scenarios("default").names
    assert got["scenario"].unique(maintain_order=True).to_list() == names  # in the file's order
    risk = pl.read_parquet(scenario_run / "account_risk.parquet").select(
        "account_id",
        pl.col("margin_call").alias("mc_now"),
        pl.col("liquidation").alias("liq_now"),
        pl.col("bad_debt_usdt").alias("bad_now"),
    )
    sr = pl.read_parquet(scenario_run / "scenario_risk.parquet").join(risk, on="account_id")
    want = sr.group_by(pl.col("scenario").cast(pl.String), pl.col("margin_mode").cast(pl.String)).agg(
        pl.len().alias("accounts"),
        (pl.col("margin_call") & ~pl.col("mc_now")).sum().alias("newly_at_margin_call"),
        (pl.col("liquidation") & ~pl.col("liq_now")).sum().alias("newly_at_liquidation"),
        pl.col("bad_debt_usdt").sum(),
        (pl.col("bad_debt_usdt").sum() - pl.col("bad_now").sum()).alias("bad_debt_change_usdt"),
    )
    joined = got.join(want, on=["scenario", "margin_mode"], suffix="_want")
    assert joined.height == got.height == 2 * len(names)
    for c in ("accounts", "newly_at_margin_call", "newly_at_liquidation"):
        assert (joined[c] == joined[f"{c}_want"]).all(), c
    for c in ("bad_debt_usdt", "bad_debt_change_usdt"):
        assert ((joined[c] - joined[f"{c}_want"]).abs() <= 1e-6 * (1 + joined[c].abs())).all(), c
    crash = got.filter(pl.col("scenario") == "uniform -50%")["newly_at_liquidation"].sum()
    assert crash > got.filter(pl.col("scenario") == "uniform -10%")["newly_at_liquidation"].sum()


def test_reports_without_scenarios(tmp_path: Path) -> None:
    """A run without --scenarios: scenario_summary has no rows; liquidation_distance covers every account."""
    from crossmargin.analytics.sql import run_report

    out = tmp_path / "plain"
    assert run_sample(out).returncode == 0
    assert run_report("scenario_summary", out).height == 0
    bands = run_report("liquidation_distance", out)
    risk = pl.read_parquet(out / "account_risk.parquet")
    assert bands["accounts"].sum() == risk.height
    now = bands.filter(pl.col("liquidation_drop_band") == "now")["accounts"].sum()
    assert now == risk.filter(pl.col("liquidation_drop") == 0).height
    never = bands.filter(pl.col("liquidation_drop_band") == "never")["accounts"].sum()
    assert never == risk["liquidation_drop"].null_count()


def test_html_report_has_the_scenario_section(scenario_run: Path, tmp_path: Path) -> None:
    html_path = tmp_path / "report.html"
    proc = crossmargin("report", "--out", str(scenario_run), "--html", str(html_path))
    assert proc.returncode == 0, proc.stderr
    text = html_path.read_text(encoding="utf-8")
    assert "Stress scenarios and distance to liquidation" in text
    assert "stablecoin depeg" in text
    assert "liquidation_distance" in text
