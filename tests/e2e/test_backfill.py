"""`crossmargin backfill`: one partition per day, up-to-date days skipped, failed days named at the end.

Run for real through the command line. The inputs are copies of data/sample, whose prices are hourly
on 2025-01-20..22: at 2025-01-20T00:00Z and 2025-01-21T00:00Z every price is fresh (no data issue,
the default --max-issue-rate holds).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from crossmargin.backfill import day_ranges, parse_day
from crossmargin.errors import UsageError
from crossmargin.io.outputs import verify_outputs
from support import REPO, SAMPLE
from support.cli import Ran, cli, cli_process

DAYS = ["2025-01-20", "2025-01-21", "2025-01-22"]  # the last one lacks balances.parquet


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """tmp/in/DAY/ for the three days (day 3 broken); tmp/out is the output root (not created yet)."""
    for day in DAYS:
        d = tmp_path / "in" / day
        d.mkdir(parents=True)
        for f in SAMPLE.glob("*.parquet"):
            shutil.copy2(f, d / f.name)
    (tmp_path / "in" / DAYS[2] / "balances.parquet").unlink()
    return tmp_path


def backfill(base: Path, *extra: str, first: str = DAYS[0], last: str = DAYS[2]):
    args = ["backfill", "--from", first, "--to", last, "--input", str(base / "in" / "{date}")]
    return cli(*args, "--out-root", str(base / "out"), *extra)


def partition(base: Path, day: str) -> Path:
    return base / "out" / f"as_of={day}"


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under `directory`: bytes, mtime (ns) and inode."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def day_line(stdout: str, day: str) -> str:
    lines = [ln for ln in stdout.splitlines() if ln.startswith(f"{day}: ")]
    assert len(lines) == 1, stdout
    return lines[0]


def assert_failed_days(res, days: str, failed: int, total: int) -> None:
    """Exit 1, one stderr line naming exactly the failed days, no traceback."""
    assert res.exit_code == 1, (res.output, res.exception)
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith(f"crossmargin: error: {failed} of {total} day(s) failed: {days} ")
    assert "Traceback" not in res.output


def test_each_day_is_a_partition_as_of_its_midnight_and_failed_days_are_named(book: Path) -> None:
    res = backfill(book)
    assert_failed_days(res, "2025-01-22", 1, 3)
    for day in DAYS[:2]:
        out = partition(book, day)
        assert verify_outputs(out) == []
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["as_of"] == f"{day}T00:00:00Z"
        assert manifest["input_dir"] == str(book / "in" / day)
        assert pl.read_parquet(out / "account_risk.parquet").height == 461
        assert day_line(res.stdout, day).startswith(f"{day}: ran (no partition yet): as_of {day}T00:00:00Z")
    assert not partition(book, DAYS[2]).exists()
    assert day_line(res.stdout, DAYS[2]) == (
        f"{DAYS[2]}: failed (exit 3): input table 'balances' is missing: expected "
        f"{book / 'in' / DAYS[2] / 'balances.parquet'} or balances.csv"
    )
    assert res.stdout.splitlines()[-1] == (
        "backfill 2025-01-20..2025-01-22: 2 ran, 0 skipped (up to date), 1 failed"
    )
    # nothing but the partitions under the root (no staging or rejected directories left behind)
    assert sorted(p.name for p in (book / "out").iterdir()) == ["as_of=2025-01-20", "as_of=2025-01-21"]

    # the same bytes as the nightly `crossmargin run` at that midnight
    single = cli(
        *[
            "run",
            "--as-of",
            "2025-01-21T00:00:00Z",
            "--input",
            str(book / "in" / DAYS[1]),
            "--out",
            str(book / "one"),
        ],
    )
    assert single.exit_code == 0, single.output
    for table in ("account_risk", "actions", "data_issues"):
        name = f"{table}.parquet"
        assert (book / "one" / name).read_bytes() == (partition(book, DAYS[1]) / name).read_bytes()


def test_second_run_skips_up_to_date_days_untouched_and_retries_failed_ones(book: Path) -> None:
    assert backfill(book).exit_code == 1
    before = snapshot(book / "out")

    again = backfill(book)
    assert_failed_days(again, "2025-01-22", 1, 3)
    for day in DAYS[:2]:
        assert day_line(again.stdout, day) == f"{day}: skipped (up to date)"
    assert day_line(again.stdout, DAYS[2]).startswith(f"{DAYS[2]}: failed (exit 3): input table 'balances'")
    assert "0 ran, 2 skipped (up to date), 1 failed" in again.stdout
    assert snapshot(book / "out") == before  # same files, bytes, mtimes and inodes

    # day 3's input arrives: the next backfill runs it alone and succeeds
    shutil.copy2(SAMPLE / "balances.parquet", book / "in" / DAYS[2] / "balances.parquet")
    fixed = backfill(book)
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stderr == ""
    assert day_line(fixed.stdout, DAYS[2]).startswith(f"{DAYS[2]}: ran (no partition yet): as_of ")
    assert verify_outputs(partition(book, DAYS[2])) == []
    after = snapshot(book / "out")
    assert {k: v for k, v in after.items() if not k.startswith(f"as_of={DAYS[2]}")} == before


def test_force_reruns_up_to_date_days(book: Path) -> None:
    assert backfill(book, last=DAYS[1]).exit_code == 0
    before = snapshot(book / "out")
    res = backfill(book, "--force", last=DAYS[1])
    assert res.exit_code == 0, res.output
    for day in DAYS[:2]:
        assert day_line(res.stdout, day).startswith(f"{day}: ran (--force): as_of {day}T00:00:00Z")
        assert verify_outputs(partition(book, day)) == []
        risk = f"as_of={day}/account_risk.parquet"
        after = (partition(book, day) / "account_risk.parquet").stat().st_ino
        assert after != before[risk][2], "the partition was not rewritten"
        assert (partition(book, day) / "account_risk.parquet").read_bytes() == before[risk][0]


def test_a_changed_input_file_reruns_only_its_day(book: Path) -> None:
    assert backfill(book, last=DAYS[1]).exit_code == 0
    before = snapshot(book / "out")
    # same rows, different bytes (another compression): the checksum differs
    orders = book / "in" / DAYS[0] / "open_orders.parquet"
    pl.read_parquet(orders).write_parquet(orders, compression="uncompressed")

    res = backfill(book, last=DAYS[1])
    assert res.exit_code == 0, res.output
    assert day_line(res.stdout, DAYS[0]).startswith(f"{DAYS[0]}: ran (input changed: open_orders): as_of ")
    assert day_line(res.stdout, DAYS[1]) == f"{DAYS[1]}: skipped (up to date)"
    manifest = json.loads((partition(book, DAYS[0]) / "manifest.json").read_text())
    assert (
        manifest["inputs"]["open_orders"]["sha256"]
        != json.loads(before[f"as_of={DAYS[0]}/manifest.json"][0])["inputs"]["open_orders"]["sha256"]
    )
    assert {k: v for k, v in snapshot(book / "out").items() if k.startswith(f"as_of={DAYS[1]}")} == {
        k: v for k, v in before.items() if k.startswith(f"as_of={DAYS[1]}")
    }


def test_a_partition_that_does_not_verify_is_rerun(book: Path) -> None:
    assert backfill(book, last=DAYS[0]).exit_code == 0
    risk = partition(book, DAYS[0]) / "actions.parquet"
    good = risk.read_bytes()
    risk.write_bytes(good[:-10])  # truncated after the run
    res = backfill(book, last=DAYS[0])
    assert res.exit_code == 0, res.output
    assert day_line(res.stdout, DAYS[0]).startswith(f"{DAYS[0]}: ran (outputs do not verify (actions: ")
    assert risk.read_bytes() == good


def test_a_policy_file_reruns_every_day(book: Path) -> None:
    assert backfill(book, last=DAYS[1]).exit_code == 0
    policy = book / "desk.toml"
    policy.write_text(
        '[[version]]\nname = "desk-1"\neffective_from = 1970-01-01T00:00:00Z\n'
        "[version.classic.leverage.3]\nmargin_call = 1.3\n"
    )
    res = backfill(book, "--policy", str(policy), last=DAYS[1])
    assert res.exit_code == 0, res.output
    for day in DAYS[:2]:
        assert day_line(res.stdout, day).startswith(f"{day}: ran (policy changed): ")
    again = backfill(book, "--policy", str(policy), last=DAYS[1])
    assert [day_line(again.stdout, d) for d in DAYS[:2]] == [f"{d}: skipped (up to date)" for d in DAYS[:2]]
    # back to the shipped policy: a change again
    back = backfill(book, last=DAYS[0])
    assert day_line(back.stdout, DAYS[0]).startswith(f"{DAYS[0]}: ran (policy changed): ")


def test_a_missing_input_directory_is_a_failed_day(book: Path) -> None:
    res = backfill(book, first="2025-01-18", last=DAYS[0])
    assert_failed_days(res, "2025-01-18..2025-01-19", 2, 3)
    missing = book / "in" / "2025-01-18"
    assert day_line(res.stdout, "2025-01-18") == (
        f"2025-01-18: failed (exit 3): input directory {missing} does not exist"
    )
    assert day_line(res.stdout, DAYS[0]).startswith(f"{DAYS[0]}: ran ")
    assert verify_outputs(partition(book, DAYS[0])) == []
    assert sorted(p.name for p in (book / "out").iterdir()) == [f"as_of={DAYS[0]}"]


def test_a_destination_that_is_not_ours_fails_that_day_only(book: Path) -> None:
    stranger = partition(book, DAYS[0])
    stranger.mkdir(parents=True)
    (stranger / "notes.txt").write_text("mine")
    res = backfill(book, last=DAYS[1])
    assert_failed_days(res, "2025-01-20", 1, 2)
    assert day_line(res.stdout, DAYS[0]).startswith(f"{DAYS[0]}: failed (exit 2): ")
    assert (stranger / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in stranger.iterdir()) == ["notes.txt"]
    assert verify_outputs(partition(book, DAYS[1])) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"--input": "in/plain"}, ["--input", "no {date} placeholder"]),
        ({"--from": "2025-1-20"}, ["--from '2025-1-20' is not a date YYYY-MM-DD"]),
        ({"--to": "2025-02-30"}, ["--to '2025-02-30' is not a date YYYY-MM-DD"]),
        ({"--from": "20250120"}, ["--from '20250120' is not a date"]),
        ({"--from": "2025-01-22", "--to": "2025-01-20"}, ["--from 2025-01-22 is after --to 2025-01-20"]),
        ({"--max-issue-rate": "1.5"}, ["--max-issue-rate 1.5 is outside [0, 1]"]),
        ({"--policy": "nowhere.toml"}, ["--policy", "is not a file"]),
        ({"--buckets": "0"}, ["--buckets 0 must be at least 1"]),
        ({"--engine": "spark"}, ["--engine 'spark' is not one of local, ray"]),
        ({"--scenarios": "nowhere.toml"}, ["--scenarios", "nowhere.toml"]),
    ],
)
def test_bad_options_exit_2_with_one_line_before_any_day(
    book: Path, change: dict[str, str], words: list[str]
) -> None:
    opts = {
        "--from": DAYS[0],
        "--to": DAYS[1],
        "--input": str(book / "in" / "{date}"),
        "--out-root": str(book / "out"),
    }
    opts.update({k: str(book / v) if k in ("--input", "--policy") else v for k, v in change.items()})
    res = cli("backfill", *[x for kv in opts.items() for x in kv])
    assert res.exit_code == 2, (res.output, res.exception)
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.stdout == ""
    assert res.stderr.startswith("crossmargin: error: ")
    assert res.stderr.count("\n") == 1, res.stderr
    for w in words:
        assert w in res.stderr
    assert not (book / "out").exists()


def test_python_m_crossmargin_backfill_exit_codes(book: Path) -> None:
    """The real entry point: a bad template is exit 2, a failed day exit 1, a clean range exit 0."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def run(*args: str) -> Ran:
        return cli_process("backfill", "--out-root", book / "out", *args, env=env, module=True)

    bad = run("--from", DAYS[0], "--to", DAYS[0], "--input", str(book / "in"))
    assert bad.exit_code == 2
    assert bad.stderr.startswith("crossmargin: error: --input") and bad.stderr.count("\n") == 1
    template = str(book / "in" / "{date}")
    failed = run("--from", DAYS[1], "--to", DAYS[2], "--input", template)
    assert failed.exit_code == 1, failed.stderr
    assert "1 of 2 day(s) failed: 2025-01-22" in failed.stderr
    assert "Traceback" not in failed.stderr
    ok = run("--from", DAYS[0], "--to", DAYS[1], "--input", template)
    assert ok.exit_code == 0, ok.stderr
    assert "1 ran, 1 skipped (up to date), 0 failed" in ok.stdout


def test_day_ranges_and_dates() -> None:
    days = [
        parse_day(d, "--from") for d in ("2025-01-03", "2025-01-05", "2025-01-06", "2025-01-07", "2025-02-01")
    ]
    assert day_ranges(days) == "2025-01-03, 2025-01-05..2025-01-07, 2025-02-01"
    assert day_ranges(days[:1]) == "2025-01-03"
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        parse_day("2025-W03-1", "--from")


def test_a_range_reads_back_as_docs_operations_says(book: Path) -> None:
    import duckdb

    assert backfill(book, last=DAYS[1]).exit_code == 0
    (book / "out" / "as_of=2025-01-22.rejected").mkdir()  # as a day stopped by the issue-rate gate
    glob = str(book / "out" / "as_of=????-??-??" / "account_risk.parquet")
    rows = duckdb.sql(
        f"SELECT as_of, count(*) FROM read_parquet('{glob}', hive_partitioning = false) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    midnights = [dt.datetime(2025, 1, d, tzinfo=dt.UTC) for d in (20, 21)]
    assert rows == [(midnights[0], 461), (midnights[1], 461)]  # timestamps (aware), not hive dates
    frame = pl.scan_parquet(glob).group_by("as_of").len().sort("as_of").collect()
    assert frame["as_of"].dt.date().cast(pl.String).to_list() == DAYS[:2]
    assert frame["as_of"].dtype == pl.Datetime("us", "UTC")


def test_a_night_the_scheduler_already_ran_is_skipped(book: Path) -> None:
    """The nightly run (`crossmargin run` at midnight into OUT_ROOT/as_of=D) leaves an up-to-date day."""
    nightly = cli(
        *[
            "run",
            "--as-of",
            f"{DAYS[0]}T00:00:00Z",
            "--input",
            str(book / "in" / DAYS[0]),
            "--out",
            str(partition(book, DAYS[0])),
        ],
    )
    assert nightly.exit_code == 0, nightly.output
    before = snapshot(partition(book, DAYS[0]))
    res = backfill(book, last=DAYS[1])
    assert res.exit_code == 0, res.output
    assert day_line(res.stdout, DAYS[0]) == f"{DAYS[0]}: skipped (up to date)"
    assert day_line(res.stdout, DAYS[1]).startswith(f"{DAYS[1]}: ran (no partition yet): ")
    assert snapshot(partition(book, DAYS[0])) == before


def test_scenarios_and_buckets_reach_every_day_and_the_skip_rule(book: Path) -> None:
    """--scenarios and --buckets are passed to every day's run; a partition is up to date only for the
    scenario set it was run with (the buckets do not change the outputs)."""
    res = backfill(book, "--scenarios", "default", "--buckets", "2", last=DAYS[1])
    assert res.exit_code == 0, (res.output, res.exception)
    for day in DAYS[:2]:
        manifest = json.loads((partition(book, day) / "manifest.json").read_text())
        assert manifest["buckets"] == 2
        assert manifest["scenarios"]["source"] == "default"
        assert pl.read_parquet(partition(book, day) / "scenario_risk.parquet").height == 9 * 461
    again = backfill(book, "--scenarios", "default", last=DAYS[1])
    assert again.exit_code == 0
    assert day_line(again.stdout, DAYS[0]).endswith("skipped (up to date)")
    plain = backfill(book, last=DAYS[1])
    assert plain.exit_code == 0
    assert "no scenarios asked for" in day_line(plain.stdout, DAYS[0])
    assert not (partition(book, DAYS[0]) / "scenario_risk.parquet").exists()
