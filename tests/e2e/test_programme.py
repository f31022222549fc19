"""Reports and the page over every night of a root (`crossmargin sql NAME --root`, `report --root`).

Two roots: the `sample_root` fixture (tests/conftest.py: the committed sample backfilled for five
nights, one missing night, one night under another policy version), and a tiny root written here from
literal frames (tests/support/inputs.py) whose accounts change compliance state and margin mode from
night to night, so every transition is known by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from crossmargin.analytics.programme import render_programme_page
from crossmargin.analytics.root import open_root, query_root, run_root_report
from crossmargin.analytics.sql import list_reports, report_info
from crossmargin.job import run_job
from support.cli import assert_one_error_line, cli, cli_process
from support.inputs import account, balance, tables, ts
from support.runs import MISSING_NIGHT, OTHER_POLICY_NIGHT, OTHER_POLICY_VERSION, ROOT_NIGHTS, risk

ROOT_REPORTS = {
    "account_states",
    "programme_cohort",
    "programme_nights",
    "programme_progress",
    "programme_transitions",
}
PROGRESS_COLUMNS = [
    "as_of",
    "accounts",
    "pro_accounts",
    "pro_compliant",
    "due_for_migration",
    "migrate_now",
    "eligible_for_pro",
    "partial_repayment_usdt",
    "newly_compliant",
]


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _partition_risk(root: Path, night: str) -> pl.DataFrame:
    return risk(root / f"as_of={night}")


# ------------------------------------------------------------------ programme_progress on the sample
def _expected_progress(root: Path) -> pl.DataFrame:
    rows, previous = [], None
    first, last = _day(ROOT_NIGHTS[0]), _day(ROOT_NIGHTS[-1])
    for i in range((last - first).days + 1):
        night = (first + dt.timedelta(days=i)).isoformat()
        if night not in ROOT_NIGHTS:
            rows.append({"as_of": _day(night)})
            continue
        r = _partition_risk(root, night)
        pro = r.filter(pl.col("margin_mode") == "pro")
        newly = None
        if previous is not None:
            before = previous.filter(pl.col("margin_mode") == "pro").select("account_id", was="pro_compliant")
            joined = pro.join(before, on="account_id")
            newly = joined.filter(pl.col("pro_compliant") & ~pl.col("was")).height
        rows.append(
            {
                "as_of": _day(night),
                "accounts": r.height,
                "pro_accounts": pro.height,
                "pro_compliant": pro.filter("pro_compliant").height,
                "due_for_migration": r.filter("due_for_migration").height,
                "migrate_now": r.filter("migrate_now").height,
                "eligible_for_pro": r.filter("eligible_for_pro").height,
                "partial_repayment_usdt": r["partial_repayment_usdt"].sum(),
                "newly_compliant": newly,
            }
        )
        previous = r
    return pl.DataFrame(rows, schema={c: (pl.Date if c == "as_of" else None) for c in PROGRESS_COLUMNS})


def test_programme_progress_is_one_row_per_night_from_the_partitions(sample_root):
    root = sample_root.root
    got = run_root_report("programme_progress", open_root(root))
    assert got.columns == PROGRESS_COLUMNS
    expected = _expected_progress(root)
    assert got["as_of"].to_list() == expected["as_of"].to_list()
    for g, e in zip(got.iter_rows(named=True), expected.iter_rows(named=True), strict=True):
        for col in PROGRESS_COLUMNS[1:]:
            if e.get(col) is None:
                assert g[col] is None, (g["as_of"], col, g[col])
            elif col == "partial_repayment_usdt":
                assert abs(g[col] - e[col]) <= 1e-9 * max(1.0, abs(e[col])), (g["as_of"], col)
            else:
                assert g[col] == e[col], (g["as_of"], col, g[col], e[col])
    missing = got.filter(pl.col("as_of") == _day(MISSING_NIGHT)).row(0, named=True)
    assert all(missing[c] is None for c in PROGRESS_COLUMNS[1:])  # a gap, never interpolated
    assert got["newly_compliant"][0] is None  # the first night has no previous night
    # on the night after the missing one, the previous night is the last partition before it
    assert got.filter(pl.col("as_of") == _day("2025-01-18"))["newly_compliant"][0] is not None
    assert got["due_for_migration"].max() > 0 and got["pro_compliant"].max() > 0


def test_programme_nights_call_out_missing_nights_and_other_policy_versions(sample_root):
    nights = run_root_report("programme_nights", open_root(sample_root.root))
    assert nights.filter(~pl.col("has_partition"))["as_of"].to_list() == [_day(MISSING_NIGHT)]
    other = nights.filter("other_policy_version")
    assert other["as_of"].to_list() == [_day(OTHER_POLICY_NIGHT)]
    assert other["policy_version"][0] == OTHER_POLICY_VERSION
    assert nights["latest_policy_version"].unique().to_list() != [OTHER_POLICY_VERSION]
    assert nights.filter("has_partition")["accounts_scored"].to_list() == [
        _partition_risk(sample_root.root, n).height for n in ROOT_NIGHTS
    ]


def test_a_window_of_nights(sample_root):
    root = sample_root.root
    res = cli(
        "sql",
        "programme_progress",
        "--root",
        root,
        "--from",
        "2025-01-14",
        "--to",
        "2025-01-15",
        "--format",
        "csv",
    )
    assert res.exit_code == 0, res
    got = pl.read_csv(res.stdout.encode(), try_parse_dates=True)
    assert got["as_of"].to_list() == [_day("2025-01-14"), _day("2025-01-15")]
    assert got["newly_compliant"][0] is None and got["newly_compliant"][1] is not None


# ------------------------------------------------------------------ transitions and cohort, by hand
NIGHTS = ["2024-12-20", "2024-12-21", "2024-12-23"]  # 2024-12-22 missing
LATER = ts("2024-12-21T00:00:00Z")  # questionnaire done on night 2


def _book(night: int) -> dict[str, pl.DataFrame]:
    """Account 1: Pro, pending on night 1, compliant from night 2. Account 2: Pro, pending, switched to
    Classic on night 3 (and at margin call there). Account 3: Classic throughout. Account 4: Pro,
    compliant, gone after night 1. Account 5: Classic, new on night 2."""
    accounts = [
        account(1, "pro", questionnaire_completed_at=LATER, terms_agreed_at=LATER),
        account(2, "pro" if night < 3 else "classic", questionnaire_completed_at=None),
        account(3),
    ]
    balances = [balance(i, "USDT", free=10_000.0) for i in (1, 2, 3)]
    if night == 1:
        accounts.append(account(4, "pro"))
        balances.append(balance(4, "USDT", free=10.0))
    if night >= 2:
        accounts.append(account(5))
        balances.append(balance(5, "USDT", free=10.0))
    if night == 3:  # account 2 now borrows: classic margin level 1.2 <= 1.3 (margin call)
        balances[1] = balance(2, "USDT", free=12_000.0, borrowed=10_000.0)
    return tables(accounts=accounts, balances=balances)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("tiny")
    for i, night in enumerate(NIGHTS, start=1):
        inputs = base / "in" / night
        inputs.mkdir(parents=True)
        for name, frame in _book(i).items():
            frame.write_parquet(inputs / f"{name}.parquet")
        run_job(ts(f"{night}T00:00:00Z"), inputs, base / "root" / f"as_of={night}")
    return base / "root"


def test_transitions_between_states_modes_and_margin_states(tiny_root):
    got = run_root_report("programme_transitions", open_root(tiny_root))
    rows = {(str(r[0]), r[1], r[2], r[3]): r[4] for r in got.select(got.columns[:5]).iter_rows()}
    assert rows == {
        ("2024-12-21", "compliance_state", "pending", "compliant"): 1,  # account 1
        ("2024-12-21", "compliance_state", "compliant", "absent"): 1,  # account 4 gone
        ("2024-12-21", "compliance_state", "absent", "classic"): 1,  # account 5 new
        ("2024-12-21", "margin_mode", "pro", "absent"): 1,
        ("2024-12-21", "margin_mode", "absent", "classic"): 1,
        ("2024-12-21", "margin_state", "none", "absent"): 1,
        ("2024-12-21", "margin_state", "absent", "none"): 1,
        ("2024-12-23", "compliance_state", "pending", "classic"): 1,  # account 2 switched
        ("2024-12-23", "margin_mode", "pro", "classic"): 1,
        ("2024-12-23", "margin_state", "none", "margin_call"): 1,
    }
    assert set(got.filter(pl.col("as_of") == _day("2024-12-23"))["days_since_previous"]) == {2}
    assert set(got.filter(pl.col("as_of") == _day("2024-12-23"))["previous_as_of"]) == {_day("2024-12-21")}


def test_cohort_of_the_first_night_followed_across_nights(tiny_root):
    got = run_root_report("programme_cohort", open_root(tiny_root))
    rows = {(str(a), s): n for a, s, n in got.select("as_of", "state", "accounts").iter_rows()}
    assert rows == {
        ("2024-12-20", "pending"): 2,
        ("2024-12-21", "compliant"): 1,
        ("2024-12-21", "pending"): 1,
        ("2024-12-23", "compliant"): 1,
        ("2024-12-23", "classic"): 1,
    }
    assert set(got["cohort_as_of"]) == {_day(NIGHTS[0])}
    assert got.filter(pl.col("as_of") == _day("2024-12-23"))["share_of_cohort"].to_list() == [0.5, 0.5]
    progress = run_root_report("programme_progress", open_root(tiny_root))
    assert progress["newly_compliant"].to_list() == [None, 1, None, 0]
    assert progress["pro_accounts"].to_list() == [3, 2, None, 1]


# ------------------------------------------------------------------ verification and the command line
def test_a_partition_that_does_not_verify_is_left_out_and_named(sample_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(sample_root.root, root)
    bad = root / "as_of=2025-01-15"
    (bad / "actions.parquet").write_bytes((bad / "actions.parquet").read_bytes()[:-10] + b"0123456789")
    wrong = root / "as_of=2025-01-16"
    manifest = json.loads((wrong / "manifest.json").read_text())
    (wrong / "manifest.json").write_text(json.dumps({**manifest, "as_of": "2025-01-10T00:00:00Z"}))
    (root / "as_of=2025-01-18.rejected").mkdir()  # not a partition
    res = cli("sql", "programme_nights", "--root", root, "--format", "csv")
    assert res.exit_code == 0, res
    warnings = res.stderr.splitlines()
    assert len(warnings) == 2, res.stderr
    assert warnings[0].startswith(f"crossmargin: warning: left out {bad}: does not verify: actions")
    assert warnings[1].startswith(
        f"crossmargin: warning: left out {wrong}: manifest.json is for as_of 2025-01-10"
    )
    nights = pl.read_csv(res.stdout.encode(), try_parse_dates=True)
    left = nights.filter(~pl.col("has_partition"))
    assert left["as_of"].cast(pl.String).to_list() == ["2025-01-15", "2025-01-16", MISSING_NIGHT]
    assert left["left_out_reason"][0].startswith("does not verify")
    assert left["left_out_reason"][2] is None  # simply missing
    progress = run_root_report("programme_progress", open_root(root))
    assert progress.filter(pl.col("as_of") == _day("2025-01-15"))["accounts"][0] is None
    text = render_programme_page(open_root(root))
    assert "left out, does not verify" in text and "3 nights without a verified partition" in text


def test_sql_list_shows_both_kinds_and_tags_are_consistent():
    assert set(list_reports("root")) == ROOT_REPORTS
    assert "account_states" in list_reports("run")  # a per-account report reads either
    res = cli("sql", "list")
    assert res.exit_code == 0
    run_head, root_head = (
        res.stdout.index("Reports over one run"),
        res.stdout.index("Reports over every night of a root"),
    )
    assert (
        run_head < res.stdout.index("migration_cohorts") < root_head < res.stdout.index("programme_progress")
    )
    for name in list_reports(None):
        info = report_info(name)
        assert info.labels, f"{name}: no -- labels: tag"
        assert set(info.reads) <= set(list_reports(None)), name


def test_root_command_line_errors_are_one_line(sample_runs, sample_root, tmp_path):
    root = sample_root.root
    new = sample_runs.new
    cases = [
        (["sql", "programme_progress", "--root", tmp_path / "nope"], "no such directory"),
        (["sql", "programme_progress", "--root", tmp_path], "holds no partition"),
        (
            ["sql", "programme_progress", "--root", root, "--from", "2025-1-3"],
            "--from '2025-1-3' is not a date",
        ),
        (
            ["sql", "programme_progress", "--root", root, "--from", "2025-01-16", "--to", "2025-01-14"],
            "is after --to",
        ),
        (["sql", "programme_progress", "--root", root, "--from", "2026-01-01"], "holds no partition"),
        (["sql", "programme_progress", "--out", new], "give --root ROOT"),
        (["sql", "risk_overview", "--root", root], "give --out DIR"),
        (["sql", "risk_overview", "--out", new, "--from", "2025-01-14"], "--from and --to need --root"),
        (["sql", "risk_overview", "--out", new, "--root", root], "not both"),
        (["report", "--html", tmp_path / "x.html"], "give --out DIR"),
        (
            ["report", "--root", root / "as_of=2025-01-14", "--html", tmp_path / "x.html"],
            "holds no partition",
        ),
    ]
    for args, words in cases:
        assert_one_error_line(cli(*args), 2, words)
    assert not (tmp_path / "x.html").exists()
    assert_one_error_line(
        cli_process("report", "--root", tmp_path / "nope", "--html", tmp_path / "x.html"), 2, "nope"
    )


def test_programme_page_over_the_root(sample_root, tmp_path):
    root = sample_root.root
    dest = tmp_path / "programme.html"
    for _ in range(2):  # a page it wrote is replaced by the next one
        res = cli("report", "--root", root, "--html", dest)
        assert res.exit_code == 0, res
        assert "wrote" in res.stdout and "2 charts" in res.stdout  # the time series, the cohort
    text = dest.read_text(encoding="utf-8")
    assert text == render_programme_page(open_root(root))  # rerun = same bytes
    assert f"1 night without a verified partition</b> ({MISSING_NIGHT})" in text
    assert (
        "1 partition under another policy version</b>" in text
        and f"{OTHER_POLICY_NIGHT}: policy {OTHER_POLICY_VERSION}" in text
    )
    for heading in (
        "The programme night by night",
        "Transitions between states",
        "The cohort due on the first night",
        "Nights covered",
    ):
        assert f"<h2>{heading}</h2>" in text
    assert "5 nights with a verified partition of 6 nights" in text
    # the tables are the reports' rows, laid out
    progress = run_root_report("programme_progress", open_root(root))
    last = progress.filter(pl.col("accounts").is_not_null()).row(-1, named=True)
    assert f'<div class="v">{last["pro_compliant"]:,}</div><div class="l">compliant</div>' in text


def test_query_root_reads_the_reports_by_name(sample_root):
    got = query_root(open_root(sample_root.root), "select count(*) as n from programme_progress")
    assert got["n"][0] == len(ROOT_NIGHTS) + 1
