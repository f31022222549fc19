"""`crossmargin run --scenarios` end to end (docs/rules.md §8.1, §8.3): the file, the manifest, verify,
the same bytes whatever --buckets, row groups of whole accounts, a scenario file and its user errors;
the SQL reports and the HTML page on such a run. The runs use data/sample (fresh at
2025-01-21T10:00:00Z).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from crossmargin import scenario_set
from crossmargin.engine import scenarios
from support import SAMPLE
from support.cli import Ran, cli_process

# ----------------------------------------------------------------------------- the run command


def run_sample(out: Path, *extra: str) -> Ran:
    return cli_process(
        "run", "--as-of", "2025-01-21T10:00:00Z", "--input", str(SAMPLE), "--out", str(out), *extra
    )


def test_run_with_the_shipped_scenarios(tmp_path: Path) -> None:
    one, three = tmp_path / "one", tmp_path / "three"
    proc = run_sample(one, "--scenarios", "default")
    assert proc.exit_code == 0, proc.stderr
    assert run_sample(three, "--scenarios", "default", "--buckets", "3").exit_code == 0
    risk = pl.read_parquet(one / "account_risk.parquet")
    sr = pl.read_parquet(one / "scenario_risk.parquet")
    assert sr.height == 9 * risk.height
    manifest = json.loads((one / "manifest.json").read_text())
    assert manifest["outputs"]["scenario_risk"]["rows"] == sr.height
    assert [s["name"] for s in manifest["scenarios"]["scenarios"]][-1] == "stablecoin depeg"
    assert cli_process("verify", "--out", str(one)).exit_code == 0
    # scenario_risk, nine times account_risk's rows, is the one table written with LZ4
    codecs = {
        f: pq.ParquetFile(one / f"{f}.parquet").metadata.row_group(0).column(0).compression
        for f in ("account_risk", "scenario_risk")
    }
    assert codecs == {"account_risk": "ZSTD", "scenario_risk": "LZ4"}
    for f in ("account_risk", "actions", "data_issues", "scenario_risk"):
        assert (one / f"{f}.parquet").read_bytes() == (three / f"{f}.parquet").read_bytes(), f
    # a later run without scenarios replaces the directory (scenario_risk was ours) and drops the file
    assert run_sample(one).exit_code == 0
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
    assert run_sample(out, "--scenarios", str(f)).exit_code == 0
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
    assert proc.exit_code == 2
    assert proc.stderr.startswith("crossmargin: error: --scenarios")
    assert "Traceback" not in proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------- reading them: SQL and HTML


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
    assert run_sample(out).exit_code == 0
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
    proc = cli_process("report", "--out", str(scenario_run), "--html", str(html_path))
    assert proc.exit_code == 0, proc.stderr
    text = html_path.read_text(encoding="utf-8")
    assert "Stress scenarios and distance to liquidation" in text
    assert "stablecoin depeg" in text
    assert "liquidation_distance" in text
