"""The fixtures every layer shares: the runs of the job on the committed sample, made once per
session (what they hold: tests/support/runs.py). The input builder is tests/support/inputs.py, the
command-line runner tests/support/cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossmargin.job import run_job
from support import SAMPLE
from support.cli import cli_process
from support.runs import (
    GOLDEN_AS_OFS,
    NEW_AS_OF,
    OLD_AS_OF,
    OTHER_POLICY_NIGHT,
    OTHER_POLICY_VERSION,
    ROOT_NIGHTS,
    Runs,
    SampleRoot,
)


def _has_inputs(d: Path) -> bool:
    return any((d / f"accounts.{ext}").is_file() for ext in ("parquet", "csv"))


def _write_sample(dest: Path, faults: float = 0.0) -> Path:
    from crossmargin.synthetic import write_sample

    write_sample(dest, accounts=300, seed=1, faults=faults)
    return dest


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("sample-runs")
    input_dir = SAMPLE if _has_inputs(SAMPLE) else _write_sample(root / "sample")
    new, old, faulty = root / "run_2025-01-21", root / "run_2025-01-14", root / "run_faulty"
    run_job(NEW_AS_OF, input_dir, new)
    run_job(OLD_AS_OF, input_dir, old)
    run_job(NEW_AS_OF, _write_sample(root / "sample_faulty", faults=0.05), faulty, max_issue_rate=1.0)
    return Runs(root=root, input_dir=input_dir, new=new, old=old, faulty=faulty)


@pytest.fixture(scope="session")
def sample_root(sample_runs: Runs) -> SampleRoot:
    from crossmargin.backfill import backfill

    base = sample_runs.root / "programme"
    for night in ROOT_NIGHTS:
        (base / "in").mkdir(parents=True, exist_ok=True)
        (base / "in" / night).symlink_to(sample_runs.input_dir.resolve(), target_is_directory=True)
    template = str(base / "in" / "{date}")
    policy = base / "other_rules.toml"
    policy.write_text(
        f'[[version]]\nname = "{OTHER_POLICY_VERSION}"\neffective_from = 2024-01-01T00:00:00Z\n'
    )
    quiet = lambda line: None  # noqa: E731 - backfill's report callback
    root = base / "root"
    backfill(OTHER_POLICY_NIGHT, OTHER_POLICY_NIGHT, template, root, policy, report=quiet)
    for first, last in (("2025-01-14", "2025-01-16"), ("2025-01-18", "2025-01-18")):
        backfill(first, last, template, root, report=quiet)
    return SampleRoot(root=root, template=template, policy_file=policy)


@pytest.fixture(scope="session")
def scenario_run(sample_runs: Runs) -> Path:
    out = sample_runs.root / "run_scenarios"
    run_job(NEW_AS_OF, sample_runs.input_dir, out, scenarios="default")
    return out


@pytest.fixture(scope="session")
def golden_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("golden")
    for name, as_of in GOLDEN_AS_OFS.items():
        proc = cli_process("run", "--as-of", as_of, "--input", SAMPLE, "--out", base / name)
        assert proc.exit_code == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    return {name: base / name for name in GOLDEN_AS_OFS}
