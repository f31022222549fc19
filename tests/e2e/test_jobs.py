"""The thin entry points in jobs/: they run the CLI and hold no logic of their own.

The Airflow DAG is run by tests/e2e/test_airflow_dag.py."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from support import REPO, SAMPLE


def test_nightly_runs_the_job(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(REPO / "jobs" / "nightly.py"),
        "--input",
        str(SAMPLE),
        "--out",
        str(out),
        "--as-of",
        "2025-01-21T10:00:00Z",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("as_of 2025-01-21T10:00:00Z")
    assert pl.read_parquet(out / "account_risk.parquet").height == 461


def test_nightly_defaults_as_of_to_last_midnight_and_refuses_stale_prices(tmp_path: Path) -> None:
    """With no --as-of the job scores as of the last midnight UTC. The sample's prices end in
    February 2025, so tonight every account needs a stale price: the run stops (exit 4), writes
    nothing to --out and names each asset with its stale price and the accounts it took out."""
    cmd = [
        sys.executable,
        str(REPO / "jobs" / "nightly.py"),
        "--input",
        str(SAMPLE),
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 4, proc.stderr
    midnight = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT00:00:00Z")
    rejected = json.loads((tmp_path / "out.rejected" / "manifest.json").read_text())
    assert rejected["as_of"] == midnight
    assert "BTC stale_price (217 accounts)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_nightly_with_as_of_scores_the_sample(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "jobs" / "nightly.py"), "--as-of", "2025-01-21T10:00:00Z"]
    cmd += ["--input", str(SAMPLE), "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        "as_of 2025-01-21T10:00:00Z policy 2024.12-pro-migration: 461 accounts scored"
    )


def test_nightly_passes_failures_through(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(REPO / "jobs" / "nightly.py"),
        "--input",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- jobs/cohort_report.py
def _cohort_report(*args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(REPO / "jobs" / "cohort_report.py"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def test_cohort_report_writes_the_analyst_pack(sample_runs, tmp_path: Path) -> None:
    from polars.testing import assert_frame_equal

    from crossmargin.analytics.diff import diff_runs
    from crossmargin.analytics.sql import list_reports, run_report

    runs = sample_runs
    dest = tmp_path / "pack"
    for _ in range(2):  # a rerun replaces its own files
        proc = _cohort_report("--out", runs.new, "--dest", dest, "--before", runs.old, "--parquet")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
    names = [n for n in list_reports() if n != "account_states"]  # a per-account listing is not in the pack
    expected = {f"{n}.csv" for n in names} | {f"{n}.parquet" for n in names}
    assert {p.name for p in dest.iterdir()} == expected | {"cohort_report.html", "diff.parquet"}
    cohorts = run_report("migration_cohorts", runs.new)
    assert_frame_equal(pl.read_parquet(dest / "migration_cohorts.parquet"), cohorts)
    assert_frame_equal(pl.read_csv(dest / "migration_cohorts.csv", schema=cohorts.schema), cohorts)
    assert_frame_equal(pl.read_parquet(dest / "diff.parquet"), diff_runs(runs.old, runs.new))
    html = (dest / "cohort_report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 6
    assert "migration_state_changed=" in proc.stdout and "migration_cohorts: " in proc.stdout


def test_cohort_report_errors_are_one_line(sample_runs, tmp_path: Path) -> None:

    cases = [
        (["--out", tmp_path / "missing", "--dest", tmp_path / "a"], "no such directory"),
        (["--out", sample_runs.new, "--dest", tmp_path / "b", "--before", tmp_path], "no manifest.json"),
    ]
    (tmp_path / "plain").write_text("x")
    cases.append((["--out", sample_runs.new, "--dest", tmp_path / "plain"], "is not a directory"))
    for args, word in cases:
        proc = _cohort_report(*args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("cohort_report: error: ") and word in lines[0], lines
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "a").exists()
