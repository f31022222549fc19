"""The thin entry points in jobs/: they run the CLI and hold no logic of their own."""

from __future__ import annotations

import ast
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


def test_airflow_dag_chains_cli_tasks() -> None:
    """Parsed, not imported: Airflow is an optional extra. Tasks are CLI calls: run >> verify >> report."""
    tree = ast.parse((ROOT / "jobs" / "airflow_dag.py").read_text())
    commands = {
        kw.value.values[0].value.split()[1] if isinstance(kw.value, ast.JoinedStr) else None
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "BashOperator"
        for kw in node.keywords
        if kw.arg == "bash_command"
    }
    assert commands == {"run", "verify", "report"}
    assert "run >> verify >> cohort" in (ROOT / "jobs" / "airflow_dag.py").read_text()
