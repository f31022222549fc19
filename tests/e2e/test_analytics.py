"""SQL reports, `crossmargin sql` and `crossmargin diff` on real runs of the job.

Every report's numbers are checked against an independent polars computation over the run's
account_risk / actions / data_issues files.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crossmargin.analytics import out_dir_from_env, read_manifest
from crossmargin.analytics.diff import CHANGES, DIFF_SCHEMA, DiffError, diff_runs, summarize
from crossmargin.analytics.rundir import RunDirError
from crossmargin.analytics.sql import ReportError, list_reports, query, report_grain, report_sql, run_report
from crossmargin.errors import CrossmarginError
from crossmargin.io import schemas
from crossmargin.policy import resolve
from support import REPO
from support.cli import assert_one_error_line, cli, cli_process
from support.runs import NEW_AS_OF, OLD_AS_OF, actions, issues, risk

REPORTS = {
    "borrow_blocks",
    "data_issues_summary",
    "margin_calls_liquidations",
    "margin_level_distribution",
    "migration_cohorts",
    "partial_repayments",
    "pro_eligibility_funnel",
    "pro_formula_impact",
    "liquidation_distance",
    "risk_overview",
    "scenario_summary",
    "account_states",
    "cohort_headline",
    "migration_states",
    "due_for_migration_grid",
    "scenario_totals",
    "remediation",
}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# ------------------------------------------------------------------ report files
def test_every_report_is_listed_and_dbt_shaped():
    assert set(list_reports()) == REPORTS
    for name in list_reports():
        text = report_sql(name)
        assert text.startswith("-- One row per"), name  # header states the grain first
        assert report_grain(name).startswith("One row per") and report_grain(name).endswith("."), name
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        assert re.search(r"^with\b", body.strip()), name  # CTEs
        assert body.strip().endswith("select * from final"), name


def test_reports_hold_no_decision_threshold_literal():
    """Decision thresholds come from the policy_thresholds view, never from a literal in a report."""
    policy = resolve(NEW_AS_OF)
    values = {policy.new_min_net_equity_usdt, policy.old_min_classic_collateral_margin_level}
    for tier in policy.classic.values():
        values |= {tier.initial_risk_ratio, tier.margin_call, tier.liquidation}
    for name in list_reports():
        body = "\n".join(line.split("--")[0] for line in report_sql(name).splitlines())
        literals = {float(x) for x in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?:e\d+)?(?![\w.])", body)}
        assert not (literals & values), (name, literals & values)


def test_unknown_report_and_bad_out_dir(sample_runs, tmp_path):
    with pytest.raises(ReportError, match="unknown report"):
        run_report("no_such_report", sample_runs.new)
    with pytest.raises(ReportError, match="unknown report"):
        run_report("../risk_overview", sample_runs.new)
    with pytest.raises(RunDirError, match="not a run's output directory"):
        run_report("risk_overview", tmp_path)
    # the analyst errors are the project's errors: crossmargin.cli.main prints them, exit 2
    assert issubclass(ReportError, CrossmarginError) and ReportError.exit_code == 2
    assert issubclass(RunDirError, CrossmarginError) and RunDirError.exit_code == 2
    assert issubclass(DiffError, CrossmarginError) and DiffError.exit_code == 2


def test_analytics_never_import_typer_or_exit():
    """Library code raises CrossmarginError; only the CLI knows about typer and exit codes."""
    code = (
        "import sys\n"
        "import crossmargin.analytics, crossmargin.analytics.sql, crossmargin.analytics.diff\n"
        "import crossmargin.analytics.html, crossmargin.analytics.rundir\n"
        "assert 'typer' not in sys.modules, 'analytics imported typer'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    for path in (REPO / "src" / "crossmargin" / "analytics").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import typer|from typer)|sys\.exit\(|SystemExit", text, re.M), path.name


# ------------------------------------------------------------------ numbers agree with the outputs
def test_risk_overview_matches_account_risk(sample_runs):
    got = run_report("risk_overview", sample_runs.new).sort("margin_mode")
    r = risk(sample_runs.new)
    want = (
        r.group_by("margin_mode")
        .agg(
            pl.len().cast(pl.Int64).alias("accounts"),
            pl.col("total_liability_usdt").sum(),
            pl.col("bad_debt_usdt").sum(),
            pl.col("margin_call").sum().cast(pl.Int64).alias("margin_calls"),
            pl.col("liquidation").sum().cast(pl.Int64).alias("liquidations"),
            pl.col("borrow_blocked").sum().cast(pl.Int64).alias("borrow_blocked"),
            pl.col("due_for_migration").sum().cast(pl.Int64).alias("due_for_migration"),
            pl.col("migrate_now").sum().cast(pl.Int64).alias("migrate_now"),
            pl.col("eligible_for_pro").sum().cast(pl.Int64).alias("eligible_for_pro"),
            pl.col("partial_repayment_usdt").sum(),
        )
        .sort("margin_mode")
    )
    assert got["accounts"].sum() == r.height > 0
    assert_frame_equal(got.select(want.columns), want, check_exact=False, rel_tol=1e-9)


def test_margin_calls_and_liquidations_by_mode_and_leverage(sample_runs):
    for out in (sample_runs.new, sample_runs.old):
        got = run_report("margin_calls_liquidations", out).sort("margin_mode", "classic_leverage")
        r = risk(out)
        want = (
            r.group_by("margin_mode", "classic_leverage")
            .agg(
                pl.len().cast(pl.Int64).alias("accounts"),
                pl.col("margin_call").sum().cast(pl.Int64).alias("margin_calls"),
                (pl.col("margin_call") & ~pl.col("liquidation"))
                .sum()
                .cast(pl.Int64)
                .alias("margin_call_only"),
                pl.col("liquidation").sum().cast(pl.Int64).alias("liquidations"),
            )
            .sort("margin_mode", "classic_leverage")
        )
        assert_frame_equal(got.select(want.columns), want)
        # the action rows agree with the flags, and carry the mode/leverage reason
        a = actions(out).join(r.select("account_id", "margin_mode", "classic_leverage"), on="account_id")
        mc = a.filter(pl.col("action") == "MARGIN_CALL").height
        lq = a.filter(pl.col("action") == "LIQUIDATION").height
        assert got["margin_call_action_rows"].sum() == mc == got["margin_call_only"].sum()
        assert got["liquidation_action_rows"].sum() == lq == got["liquidations"].sum()
        for mode, lev, reasons in got.select("margin_mode", "classic_leverage", "action_reasons").iter_rows():
            if reasons is not None:
                assert reasons == ("pro" if mode == "pro" else f"classic_{lev}x")


def test_borrow_blocks_by_reason(sample_runs):
    got = run_report("borrow_blocks", sample_runs.new).sort("margin_mode", "borrow_blocked_reason")
    r = risk(sample_runs.new)
    want = (
        r.filter("borrow_blocked")
        .group_by("margin_mode", "borrow_blocked_reason")
        .agg(pl.len().cast(pl.Int64).alias("blocked_accounts"), pl.col("total_liability_usdt").sum())
        .sort("margin_mode", "borrow_blocked_reason")
    )
    assert want.height > 0
    assert_frame_equal(got.select(want.columns), want, check_exact=False, rel_tol=1e-9)
    assert (got["action_rows"] == got["blocked_accounts"]).all()
    assert set(got["borrow_blocked_reason"]) <= set(schemas.BORROW_BLOCKED_REASONS)
    # share of the mode's accounts
    per_mode = dict(r.group_by("margin_mode").len().iter_rows())
    for mode, n, share in got.select("margin_mode", "blocked_accounts", "share_of_mode_accounts").iter_rows():
        assert _close(share, n / per_mode[mode])


def _funnel_expected(r: pl.DataFrame, conditions: list[str]) -> pl.DataFrame:
    classic = r.filter(pl.col("margin_mode") == "classic").select("account_id", "pro_ineligible_reasons")
    rows = []
    for i, cond in enumerate(conditions):
        fails = classic.filter(pl.col("pro_ineligible_reasons").list.contains(cond))
        sole = fails.filter(pl.col("pro_ineligible_reasons").list.len() == 1)
        earlier = conditions[: i + 1]
        remaining = classic.filter(
            ~pl.col("pro_ineligible_reasons").list.eval(pl.element().is_in(earlier)).list.any()
        )
        rows.append((i + 1, cond, fails.height, sole.height, classic.height - fails.height, remaining.height))
    return pl.DataFrame(
        rows,
        schema=[
            "step",
            "condition",
            "failing_accounts",
            "sole_blocker_accounts",
            "passing_accounts",
            "remaining_accounts",
        ],
        orient="row",
    )


@pytest.mark.parametrize(
    ("which", "conditions"), [("new", schemas.PRO_CONDITIONS_NEW), ("old", schemas.PRO_CONDITIONS_OLD)]
)
def test_pro_eligibility_funnel(sample_runs, which, conditions):
    out = getattr(sample_runs, which)
    got = run_report("pro_eligibility_funnel", out)
    r = risk(out)
    steps = got.filter(pl.col("condition") != "eligible_for_pro")
    assert steps["condition"].to_list() == conditions  # the policy in force, in order, nothing unknown
    want = _funnel_expected(r, conditions)
    assert_frame_equal(steps.select(want.columns), want, check_dtypes=False)
    eligible = got.filter(pl.col("condition") == "eligible_for_pro").row(0, named=True)
    n_eligible = r.filter("eligible_for_pro").height
    assert eligible["remaining_accounts"] == n_eligible == steps["remaining_accounts"][-1]
    assert n_eligible == actions(out).filter(pl.col("action") == "ELIGIBLE_FOR_PRO").height
    assert steps["failing_accounts"].sum() > 0


def test_pro_formula_impact_counts_threshold_crossings(sample_runs):
    got = run_report("pro_formula_impact", sample_runs.new)
    r = risk(sample_runs.new)
    p = resolve(NEW_AS_OF)
    thresholds = {
        "new_min_pro_margin_level": p.new_min_pro_margin_level,
        "pro_margin_call": p.pro_margin_call,
        "pro_liquidation": p.pro_liquidation,
    }
    assert set(got["threshold"]) == set(thresholds)
    total_crossed = 0
    for row in got.iter_rows(named=True):
        t = thresholds[row["threshold"]]
        assert row["threshold_value"] == t
        m = r.filter(pl.col("margin_mode") == row["margin_mode"])
        down = m.filter((pl.col("pro_margin_level_old") > t) & ~(pl.col("pro_margin_level_new") > t))
        up = m.filter(~(pl.col("pro_margin_level_old") > t) & (pl.col("pro_margin_level_new") > t))
        assert row["accounts"] == m.height
        assert row["above_old_formula"] == m.filter(pl.col("pro_margin_level_old") > t).height
        assert row["above_new_formula"] == m.filter(pl.col("pro_margin_level_new") > t).height
        assert row["crossed_down"] == down.height
        assert row["crossed_up"] == up.height
        assert (
            row["crossed_down_haircut_only"]
            + row["crossed_down_open_order_loss_only"]
            + row["crossed_down_both"]
        ) == down.height
        assert row["crossed_down_haircut_only"] == down.filter(pl.col("open_order_loss_usdt") == 0).height
        assert _close(row["crossed_down_open_order_loss_usdt"], down["open_order_loss_usdt"].sum())
        total_crossed += down.height
    # the new formula only ever lowers the level: nobody crosses upward
    assert got["crossed_up"].sum() == 0
    assert total_crossed > 0, "the sample should hold accounts whose Pro level the new formula pushes down"


def test_migration_cohorts_add_up(sample_runs):
    for out in (sample_runs.new, sample_runs.old):
        got = run_report("migration_cohorts", out)
        r = risk(out)
        pro = r.filter(pl.col("margin_mode") == "pro")
        assert got["accounts"].sum() == pro.height > 0
        assert got["due_for_migration_accounts"].sum() == pro.filter("due_for_migration").height
        assert got["migrate_now_accounts"].sum() == pro.filter("migrate_now").height
        assert (
            got["accounts_needing_repayment"].sum() == pro.filter(pl.col("partial_repayment_usdt") > 0).height
        )
        assert _close(got["partial_repayment_usdt"].sum(), pro["partial_repayment_usdt"].sum())
        assert _close(got["bad_debt_usdt"].sum(), pro["bad_debt_usdt"].sum())
        assert _close(got["total_liability_usdt"].sum(), pro["total_liability_usdt"].sum())
        # compliance states read from the engine's flags
        states = dict(got.group_by("compliance_state").agg(pl.col("accounts").sum()).iter_rows())
        assert states.get("compliant", 0) == pro.filter("pro_compliant").height
        assert states.get("switch_now", 0) == pro.filter("migrate_now").height
        assert (
            states.get("pending", 0)
            == pro.filter(pl.col("due_for_migration") & ~pl.col("migrate_now")).height
        )
        # no null bucket: every account lands in exactly one bucket
        assert got["classic_margin_level_bucket"].null_count() == 0
        assert got["net_equity_bucket"].null_count() == 0
        no_liab = got.filter(pl.col("classic_margin_level_bucket") == "no liability")["accounts"].sum()
        assert no_liab == pro.filter(pl.col("total_liability_usdt") == 0).height
        # grain: one row per (state, level bucket, equity bucket, country)
        keys = ["compliance_state", "classic_margin_level_bucket", "net_equity_bucket", "country"]
        assert got.select(keys).is_unique().all()
    # the switch date: the sample's due accounts are pending on 2025-01-14 and switched on 2025-01-21
    old_states = set(run_report("migration_cohorts", sample_runs.old)["compliance_state"])
    new_states = set(run_report("migration_cohorts", sample_runs.new)["compliance_state"])
    assert "pending" in old_states and "switch_now" not in old_states
    assert "switch_now" in new_states and "pending" not in new_states


def test_partial_repayments_match_actions(sample_runs):
    for out, state in ((sample_runs.new, "due"), (sample_runs.old, "pending")):
        got = run_report("partial_repayments", out)
        r = risk(out).filter("due_for_migration")
        a = actions(out)
        assert set(got["migration_state"]) == {state}
        assert got["due_accounts"].sum() == r.height > 0
        assert (
            got["accounts_needing_repayment"].sum() == r.filter(pl.col("partial_repayment_usdt") > 0).height
        )
        amounts = a.filter(pl.col("action") == "PARTIAL_REPAYMENT")["amount_usdt"].sum()
        assert _close(got["partial_repayment_usdt"].sum(), r["partial_repayment_usdt"].sum())
        assert _close(got["repayment_action_usdt"].sum(), amounts)
        for row in got.iter_rows(named=True):
            assert _close(row["partial_repayment_usdt"], row["repayment_action_usdt"])


def test_margin_level_distribution_buckets(sample_runs):
    got = run_report("margin_level_distribution", sample_runs.new)
    r = risk(sample_runs.new)
    series = {
        ("classic", "classic_margin_level"),
        ("pro", "pro_margin_level_old"),
        ("pro", "pro_margin_level_new"),
    }
    assert set(got.select("margin_mode", "level_name").unique().iter_rows()) == series
    for mode, level in series:
        part = got.filter((pl.col("margin_mode") == mode) & (pl.col("level_name") == level))
        values = r.filter(pl.col("margin_mode") == mode)[level]
        assert part["accounts"].sum() == values.len()
        assert (
            part.filter(pl.col("bucket_label") == "+inf")["accounts"].item() == (values == float("inf")).sum()
        )
        assert part.filter(pl.col("bucket_label") == "<= 0")["accounts"].item() == (values <= 0).sum()
        finite = part.filter(
            pl.col("lower_bound").is_finite()
            & pl.col("upper_bound").is_finite()
            & (pl.col("lower_bound") > 0)
        )
        for lo, hi, n in finite.select("lower_bound", "upper_bound", "accounts").iter_rows():
            exact = ((values >= lo) & (values < hi)).sum()
            near = ((values >= lo * (1 - 1e-12)) & (values < hi * (1 + 1e-12))).sum()
            assert exact <= n <= near  # (bounds are 10^(k/10): allow a level sitting on a rounded edge)


def test_data_issues_summary(sample_runs):
    got = run_report("data_issues_summary", sample_runs.faulty)
    i = issues(sample_runs.faulty)
    assert i.height > 0
    want = (
        i.group_by("table", "code")
        .agg(
            pl.col("account_id").n_unique().cast(pl.Int64).alias("accounts"),
            pl.len().cast(pl.Int64).alias("issue_rows"),
        )
        .sort("table", "code")
    )
    assert_frame_equal(got.select(want.columns).sort("table", "code"), want)
    assert set(got["distinct_accounts_all_issues"]) == {i["account_id"].n_unique()}
    assert run_report("data_issues_summary", sample_runs.new).height == issues(sample_runs.new).height == 0


def test_views_expose_the_run_policy(sample_runs):
    info = query(sample_runs.old, "select * from run_info").row(0, named=True)
    assert info["as_of"] == OLD_AS_OF and info["new_formula"] is False and info["policy_matches_run"] is True
    th = query(sample_runs.new, "select name, classic_leverage, value from policy_thresholds")
    p = resolve(NEW_AS_OF)
    values = {(n, lev): v for n, lev, v in th.iter_rows()}
    assert values[("pro_margin_call", None)] == p.pro_margin_call
    assert values[("classic_margin_call", 5)] == p.classic[5].margin_call


# ------------------------------------------------------------------ crossmargin sql
def _headers(text: str) -> set[str]:
    """Column headers of the printed tables (the cells of their header rows)."""
    return {cell.strip() for line in text.splitlines() if "┃" in line for cell in line.split("┃")} - {""}


def test_sql_cli_table_csv_parquet(sample_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the current directory unless told
    res = cli("sql", "list")
    assert res.exit_code == 0 and all(name in res.stdout for name in REPORTS), res

    res = cli("sql", "borrow_blocks", "--out", sample_runs.new)
    assert res.exit_code == 0, res
    assert "pro_not_compliant" in res.stdout and "blocked_accounts" in _headers(res.stdout)

    # csv without --dest: printed, not written
    res = cli("sql", "pro_eligibility_funnel", "--out", sample_runs.new, "--format", "csv")
    expected = run_report("pro_eligibility_funnel", sample_runs.new)
    assert res.exit_code == 0, res
    assert_frame_equal(pl.read_csv(io.StringIO(res.stdout), schema=expected.schema), expected)

    dest = tmp_path / "x" / "funnel.csv"
    res = cli("sql", "pro_eligibility_funnel", "--out", sample_runs.new, "--format", "csv", "--dest", dest)
    assert res.exit_code == 0, res
    assert str(dest) in res.stdout and "rows" in res.stdout
    assert_frame_equal(pl.read_csv(dest, schema=expected.schema), expected)
    # a CSV cannot say who wrote it: replacing one needs --force
    res = cli("sql", "pro_eligibility_funnel", "--out", sample_runs.new, "--format", "csv", "--dest", dest)
    assert_one_error_line(res, 2, "refusing to replace", "--force")
    dest.write_text("mine\n")
    args = [
        "sql",
        "pro_eligibility_funnel",
        "--out",
        sample_runs.new,
        "--format",
        "csv",
        "--dest",
        dest,
        "--force",
    ]
    assert cli(*args).exit_code == 0
    assert_frame_equal(pl.read_csv(dest, schema=expected.schema), expected)

    pq_dest = tmp_path / "cohorts.parquet"
    for _ in range(2):  # a parquet file the command wrote is replaced on a rerun
        res = cli(
            "sql", "migration_cohorts", "--out", sample_runs.new, "--format", "parquet", "--dest", pq_dest
        )
        assert res.exit_code == 0, res
        assert_frame_equal(pl.read_parquet(pq_dest), run_report("migration_cohorts", sample_runs.new))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohorts.parquet", "x"]


def _corrupt_runs(sample_runs, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Directories that are not a usable run, with a word the one-line error must hold."""
    cases = {}

    def copy(name: str) -> Path:
        return _copy_run(sample_runs.new, tmp_path / name)

    cases["missing"] = (tmp_path / "missing", "no such directory")
    (tmp_path / "a_file").write_text("x")
    cases["a_file"] = (tmp_path / "a_file", "not a directory")
    (tmp_path / "empty").mkdir()
    cases["empty"] = (tmp_path / "empty", "no manifest.json")
    d = copy("garbage")
    (d / "manifest.json").write_text("{not json")
    cases["garbage"] = (d, "manifest.json is corrupt")
    d = copy("binary")
    (d / "manifest.json").write_bytes(b"\xff\xfe\x00")
    cases["binary"] = (d, "manifest.json is corrupt")
    d = copy("list")
    (d / "manifest.json").write_text("[1, 2]")
    cases["list"] = (d, "not a JSON object")
    d = copy("bad_entry")
    (d / "manifest.json").write_text(json.dumps({"outputs": {"actions": "actions.parquet"}}))
    cases["bad_entry"] = (d, "outputs.actions")
    d = copy("no_actions")
    (d / "actions.parquet").unlink()
    cases["no_actions"] = (d, "missing actions.parquet")
    return cases


def test_sql_cli_errors_are_one_line(sample_runs, tmp_path):
    res = cli("sql", "nope", "--out", sample_runs.new)
    assert_one_error_line(res, 2, "unknown report 'nope'")
    res = cli("sql", "risk_overview", "--out", sample_runs.new, "--format", "xml")
    assert_one_error_line(res, 2, "unknown format 'xml'")
    res = cli("sql", "risk_overview", "--out", sample_runs.new, "--format", "parquet")
    assert_one_error_line(res, 2, "needs --dest")
    for out, word in _corrupt_runs(sample_runs, tmp_path).values():
        res = cli("sql", "risk_overview", "--out", out)
        assert_one_error_line(res, 2, word)
    # an output file that is not parquet: DuckDB's multi-line message becomes one line
    d = _copy_run(sample_runs.new, tmp_path / "torn")
    (d / "account_risk.parquet").write_bytes(b"not a parquet file")
    assert_one_error_line(cli("sql", "risk_overview", "--out", d), 2, str(d))
    # destinations that cannot be written
    (tmp_path / "plain").write_text("x")
    res = cli(
        "sql",
        "risk_overview",
        "--out",
        sample_runs.new,
        "--format",
        "csv",
        "--dest",
        tmp_path / "plain" / "r.csv",
    )
    assert_one_error_line(res, 2, "cannot write", "is not a directory")
    res = cli("sql", "risk_overview", "--out", sample_runs.new, "--format", "csv", "--dest", tmp_path)
    assert_one_error_line(res, 2, "is a directory")
    # and the same through a real process: one line, no traceback
    assert_one_error_line(
        cli_process("sql", "risk_overview", "--out", tmp_path / "missing"), 2, "no such directory"
    )


def test_sql_table_fits_100_columns(sample_runs, monkeypatch):
    """COLUMNS=100: no printed line is wider, and every column's header shows in full."""
    monkeypatch.setenv("COLUMNS", "100")
    for name in list_reports():
        out = sample_runs.faulty if name == "data_issues_summary" else sample_runs.new
        res = cli("sql", name, "--out", out)
        assert res.exit_code == 0, res
        widest = max(len(line) for line in res.stdout.splitlines())
        assert widest <= 100, (name, widest)
        assert set(run_report(name, out).columns) <= _headers(res.stdout)
    listing = cli("sql", "list").stdout
    assert max(len(line) for line in listing.splitlines()) <= 100
    # a real process reads COLUMNS from its environment
    res = cli_process(
        "sql", "migration_cohorts", "--out", sample_runs.new, env={**os.environ, "COLUMNS": "100"}
    )
    assert res.exit_code == 0, res.stderr
    assert max(len(line) for line in res.stdout.splitlines()) <= 100
    assert set(run_report("migration_cohorts", sample_runs.new).columns) <= _headers(res.stdout)
    assert "switch_now" in res.stdout


def test_split_tables_repeat_every_label_column_at_120_columns(sample_runs, monkeypatch):
    """migration_cohorts at COLUMNS=120: every part shows all four label columns, then its own columns."""
    monkeypatch.setenv("COLUMNS", "120")
    res = cli("sql", "migration_cohorts", "--out", sample_runs.new)
    assert res.exit_code == 0, res
    assert max(len(line) for line in res.stdout.splitlines()) <= 120
    labels = ["compliance_state", "classic_margin_level_bucket", "net_equity_bucket", "country"]
    headers = [
        [c.strip() for c in line.split("┃") if c.strip()]
        for line in res.stdout.splitlines()
        if line.startswith("┃")
    ]
    parts = [h for h in headers if h[:1] == ["compliance_state"]]
    assert len(parts) >= 3, res.stdout  # split over several tables
    for part in parts:
        assert part[:4] == labels, part
    others = [c for part in parts for c in part[4:]]
    assert sorted(others) == sorted(
        c for c in run_report("migration_cohorts", sample_runs.new).columns if c not in labels
    )
    # each part lists every row's labels: the rows of each part are the report's rows
    assert (
        res.stdout.count("switch_now")
        == len(parts)
        * run_report("migration_cohorts", sample_runs.new)
        .filter(pl.col("compliance_state") == "switch_now")
        .height
    )


def test_verify_cli(sample_runs, tmp_path):
    res = cli("verify", "--out", sample_runs.new)
    assert res.exit_code == 0 and "match" in res.stdout, res
    for name, (out, word) in _corrupt_runs(sample_runs, tmp_path).items():
        if name == "no_actions":  # a listed file gone is what verify finds: exit 1, the problem named
            res = cli("verify", "--out", out)
            assert (
                res.exit_code == 1
                and "actions.parquet is missing" in res.stderr
                and "Traceback" not in res.stderr
            )
            continue
        assert_one_error_line(cli("verify", "--out", out), 2, word)
    assert_one_error_line(cli_process("verify", "--out", tmp_path / "missing"), 2, "no such directory")


def test_out_dir_from_env_resolves_from_where_the_command_was_typed(sample_runs, tmp_path, monkeypatch):
    typed = tmp_path / "repo"
    _copy_run(sample_runs.new, typed / "out" / "today")
    (typed / "notebooks").mkdir()
    monkeypatch.chdir(typed / "notebooks")  # a notebook kernel's working directory
    monkeypatch.setenv("PWD", str(typed))  # what the shell exported
    monkeypatch.setenv("CROSSMARGIN_OUT", "out/today")
    assert out_dir_from_env() == typed / "out" / "today"
    assert read_manifest(out_dir_from_env())["as_of"] == "2025-01-21T10:00:00Z"
    # no PWD (or a stale one): the working directory
    monkeypatch.setenv("PWD", str(tmp_path / "gone"))
    monkeypatch.setenv("CROSSMARGIN_OUT", "../out/today")
    assert out_dir_from_env() == typed / "out" / "today"
    monkeypatch.setenv("CROSSMARGIN_OUT", str(sample_runs.new))
    assert out_dir_from_env() == sample_runs.new
    monkeypatch.setenv("CROSSMARGIN_OUT", "out/nothing")
    with pytest.raises(RunDirError, match="no such directory"):
        out_dir_from_env()
    monkeypatch.delenv("CROSSMARGIN_OUT")
    with pytest.raises(RunDirError, match="set CROSSMARGIN_OUT"):
        out_dir_from_env()


# ------------------------------------------------------------------ diff
def _state(out: Path) -> pl.DataFrame:
    mig = (
        actions(out)
        .filter(pl.col("action") == "MIGRATE_TO_CLASSIC")
        .select("account_id", pl.col("reason").alias("migration_state"))
    )
    return (
        risk(out)
        .join(mig, on="account_id", how="left")
        .with_columns(pl.col("migration_state").fill_null("none"))
    )


def test_diff_between_two_as_of_matches_flags(sample_runs):
    d = diff_runs(sample_runs.old, sample_runs.new)
    assert d.schema == pl.Schema(DIFF_SCHEMA)
    b, a = _state(sample_runs.old), _state(sample_runs.new)
    j = b.join(a, on="account_id", suffix="_a")
    assert j.height == b.height == a.height  # same input: same accounts on both days

    def ids(change: str) -> set[int]:
        return set(d.filter(pl.col("change") == change)["account_id"])

    def flagged(expr: pl.Expr) -> set[int]:
        return set(j.filter(expr)["account_id"])

    expected = {
        "new_margin_call": flagged(~pl.col("margin_call") & pl.col("margin_call_a")),
        "resolved_margin_call": flagged(pl.col("margin_call") & ~pl.col("margin_call_a")),
        "new_liquidation": flagged(~pl.col("liquidation") & pl.col("liquidation_a")),
        "resolved_liquidation": flagged(pl.col("liquidation") & ~pl.col("liquidation_a")),
        "new_borrow_block": flagged(~pl.col("borrow_blocked") & pl.col("borrow_blocked_a")),
        "resolved_borrow_block": flagged(pl.col("borrow_blocked") & ~pl.col("borrow_blocked_a")),
        "became_eligible_for_pro": flagged(~pl.col("eligible_for_pro") & pl.col("eligible_for_pro_a")),
        "lost_eligibility": flagged(pl.col("eligible_for_pro") & ~pl.col("eligible_for_pro_a")),
        "migration_state_changed": flagged(pl.col("migration_state") != pl.col("migration_state_a")),
        "new_account": set(),
        "dropped_account": set(),
        "mode_changed": set(),
    }
    for change, want in expected.items():
        assert ids(change) == want, change
    # known change: an account due on both days goes from pending (before 2025-01-15) to due
    pending_to_due = flagged(
        (pl.col("migration_state") == "pending") & (pl.col("migration_state_a") == "due")
    )
    assert pending_to_due and pending_to_due <= ids("migration_state_changed")
    rows = d.filter(pl.col("change") == "migration_state_changed")
    assert set(rows.select("detail_before", "detail_after").unique().iter_rows()) >= {("pending", "due")}
    assert d.height > 0 and diff_runs(sample_runs.new, sample_runs.new).height == 0


def _copy_run(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def test_diff_reports_exactly_the_changes_made(sample_runs, tmp_path):
    """Edit a copy of a run's outputs in known ways; the diff lists exactly those (account, change)."""
    before = sample_runs.new
    after = _copy_run(before, tmp_path / "after")
    r = pl.read_parquet(before / "account_risk.parquet")
    act = pl.read_parquet(before / "actions.parquet")
    iss = pl.read_parquet(before / "data_issues.parquet")

    classic_ok = r.filter(
        (pl.col("margin_mode") == "classic")
        & ~pl.col("margin_call")
        & ~pl.col("borrow_blocked")
        & ~pl.col("eligible_for_pro")
    )["account_id"].to_list()
    blocked_pro = r.filter(
        (pl.col("margin_mode") == "pro") & pl.col("borrow_blocked") & ~pl.col("due_for_migration")
    )["account_id"].to_list()
    due = r.filter("due_for_migration")["account_id"].to_list()
    assert len(classic_ok) >= 3 and due
    dropped, called, eligible = classic_ok[:3]
    new_id = int(r["account_id"].max()) + 1000

    edited = r.filter(pl.col("account_id") != dropped).with_columns(
        margin_call=pl.when(pl.col("account_id") == called).then(True).otherwise(pl.col("margin_call")),
        eligible_for_pro=pl.when(pl.col("account_id") == eligible)
        .then(True)
        .otherwise(pl.col("eligible_for_pro")),
    )
    edited = (
        pl.concat(
            [
                edited,
                r.filter(pl.col("account_id") == classic_ok[3]).with_columns(
                    account_id=pl.lit(new_id, pl.Int64)
                ),
            ]
        )
        if len(classic_ok) > 3
        else edited
    )
    expected = {
        (dropped, "dropped_account"),
        (dropped, "new_data_issue"),
        (called, "new_margin_call"),
        (eligible, "became_eligible_for_pro"),
    }
    if len(classic_ok) > 3:
        expected.add((new_id, "new_account"))
    if blocked_pro:  # a Pro account whose block reason changes
        x = blocked_pro[0]
        old_reason = r.filter(pl.col("account_id") == x)["borrow_blocked_reason"].cast(pl.String).item()
        new_reason = next(c for c in schemas.BORROW_BLOCKED_REASONS if c != old_reason)
        edited = edited.with_columns(
            borrow_blocked_reason=pl.when(pl.col("account_id") == x)
            .then(pl.lit(new_reason))
            .otherwise(pl.col("borrow_blocked_reason").cast(pl.String))
        )
        expected.add((x, "borrow_block_reason_changed"))
    # a due account's MIGRATE_TO_CLASSIC action disappears (it became compliant)
    gone = due[0]
    act2 = act.filter(~((pl.col("account_id") == gone) & (pl.col("action") == "MIGRATE_TO_CLASSIC")))
    expected.add((gone, "migration_state_changed"))
    edited.cast(schemas.ACCOUNT_RISK).sort("account_id").write_parquet(after / "account_risk.parquet")
    act2.write_parquet(after / "actions.parquet")
    new_issue = pl.DataFrame(
        {
            "account_id": [dropped],
            "table": ["balances"],
            "code": ["missing_price"],
            "detail": ["asset X has no price"],
            "policy_version": [r["policy_version"][0]],
        }
    ).cast(schemas.DATA_ISSUES)
    pl.concat([iss, new_issue]).write_parquet(after / "data_issues.parquet")

    d = diff_runs(before, after)
    assert set(d.select("account_id", pl.col("change").cast(pl.String)).iter_rows()) == expected
    row = d.filter(pl.col("change") == "migration_state_changed").row(0, named=True)
    assert (row["detail_before"], row["detail_after"]) == ("due", "none")
    row = d.filter(pl.col("change") == "new_data_issue").row(0, named=True)
    assert row["detail_after"] == "missing_price" and row["margin_mode_after"] is None

    back = diff_runs(after, before)  # the reverse diff undoes each change
    assert (dropped, "new_account") in set(
        back.select("account_id", pl.col("change").cast(pl.String)).iter_rows()
    )
    assert (dropped, "resolved_data_issue") in set(
        back.select("account_id", pl.col("change").cast(pl.String)).iter_rows()
    )


def test_diff_cli_prints_counts_and_writes_only_with_dest(sample_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("diff", "--before", sample_runs.old, "--after", sample_runs.new)
    assert res.exit_code == 0, res
    assert list(tmp_path.iterdir()) == []  # no --dest: nothing written, in the current directory or elsewhere
    d = diff_runs(sample_runs.old, sample_runs.new)
    counts = dict(summarize(d).with_columns(pl.col("change").cast(pl.String)).iter_rows())
    assert list(counts) == CHANGES
    n = counts["migration_state_changed"]
    assert n > 0 and re.search(rf"migration_state_changed\s*│\s*{n:,}\s*│", res.stdout), res.stdout
    assert "2025-01-14T00:00:00Z" in res.stdout and "2025-01-21T10:00:00Z" in res.stdout
    assert "not written" in res.stdout

    dest = tmp_path / "d" / "diff.parquet"
    for _ in range(2):  # a diff it wrote is replaced by the next one
        res = cli("diff", "--before", sample_runs.old, "--after", sample_runs.new, "--dest", dest)
        assert res.exit_code == 0, res
        assert_frame_equal(pl.read_parquet(dest), d)
        assert f"-> {dest}" in res.stdout

    other = tmp_path / "other.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(other)
    before = other.read_bytes()
    res = cli("diff", "--before", sample_runs.old, "--after", sample_runs.new, "--dest", other)
    assert_one_error_line(res, 2, "refusing to replace", "--force")
    assert other.read_bytes() == before
    res = cli("diff", "--before", sample_runs.old, "--after", sample_runs.new, "--dest", other, "--force")
    assert res.exit_code == 0 and pl.read_parquet(other).equals(d)


def test_diff_cli_errors_are_one_line(sample_runs, tmp_path):
    for out, word in _corrupt_runs(sample_runs, tmp_path).values():
        assert_one_error_line(cli("diff", "--before", out, "--after", sample_runs.new), 2, word)
        assert_one_error_line(cli("diff", "--before", sample_runs.new, "--after", out), 2, word)
    d = _copy_run(sample_runs.new, tmp_path / "no_column")
    pl.read_parquet(d / "account_risk.parquet").drop("margin_call").write_parquet(d / "account_risk.parquet")
    assert_one_error_line(cli("diff", "--before", sample_runs.old, "--after", d), 2, "cannot compare")
    (tmp_path / "plain").write_text("x")
    res = cli(
        "diff",
        "--before",
        sample_runs.old,
        "--after",
        sample_runs.new,
        "--dest",
        tmp_path / "plain" / "d.parquet",
    )
    assert_one_error_line(res, 2, "is not a directory")
    res = cli_process("diff", "--before", tmp_path / "missing", "--after", sample_runs.new)
    assert_one_error_line(res, 2, "no such directory")
