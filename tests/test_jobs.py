"""The thin entry points in jobs/: they run the CLI and hold no logic of their own.

The Airflow DAG is run by tests/test_airflow_dag.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def test_nightly_runs_the_job(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(ROOT / "jobs" / "nightly.py"),
        "--input",
        str(ROOT / "data" / "sample"),
        "--out",
        str(out),
        "--as-of",
        "2025-01-21T10:00:00Z",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("as_of 2025-01-21T10:00:00Z")
    assert pl.read_parquet(out / "account_risk.parquet").height == 460


def test_nightly_defaults_as_of_to_last_midnight(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "jobs" / "nightly.py"),
        "--input",
        str(ROOT / "data" / "sample"),
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "T00:00:00Z" in proc.stdout.split()[1]


def test_nightly_passes_failures_through(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "jobs" / "nightly.py"),
        "--input",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
