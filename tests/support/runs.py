"""Real runs of the job for the analyst-surface tests (SQL reports, diff, HTML report, notebooks).

`sample_runs()` runs `crossmargin.job.run_job` once per test session (cached) on the committed
sample `data/sample` (or, if it is absent, on `crossmargin.synthetic.write_sample(accounts=300, seed=1)`):

- `new`: as_of 2025-01-21T10:00Z (new Pro formula, non-compliant Pro accounts switched now);
- `old`: as_of 2025-01-14T00:00Z (old formula, non-compliant Pro accounts pending);
- `faulty`: a sample with injected data faults (so data_issues is not empty), as_of 2025-01-21T10:00Z.

`sample_root()` backfills the same input (a directory of symlinks per night) into a root of nightly
partitions: 2025-01-13 under another policy version (a policy file naming its own version),
2025-01-14, 2025-01-15, 2025-01-16 and 2025-01-18 under the shipped one; 2025-01-17 is missing.
`scenario_run()`: the `new` run with the shipped stress scenarios.

Everything lives in one temporary directory removed at interpreter exit.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from crossmargin.job import run_job
from support import REPO

NEW_AS_OF = dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC)
OLD_AS_OF = dt.datetime(2025, 1, 14, tzinfo=dt.UTC)
# the golden runs (tests/golden/): the two sides of the new-formula cut-over
GOLDEN_AS_OFS = {"new": "2025-01-21T10:00:00Z", "old": "2025-01-21T09:59:59Z"}


@dataclass(frozen=True)
class Runs:
    root: Path
    input_dir: Path
    new: Path
    old: Path
    faulty: Path


def _has_inputs(d: Path) -> bool:
    return any((d / f"accounts.{ext}").is_file() for ext in ("parquet", "csv"))


def _write_sample(dest: Path, faults: float = 0.0) -> Path:
    from crossmargin.synthetic import write_sample

    write_sample(dest, accounts=300, seed=1, faults=faults)
    return dest


@functools.cache
def sample_runs() -> Runs:
    root = Path(tempfile.mkdtemp(prefix="crossmargin-analytics-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    committed = REPO / "data" / "sample"
    input_dir = committed if _has_inputs(committed) else _write_sample(root / "sample")
    new = root / "run_2025-01-21"
    old = root / "run_2025-01-14"
    faulty = root / "run_faulty"
    run_job(NEW_AS_OF, input_dir, new)
    run_job(OLD_AS_OF, input_dir, old)
    run_job(NEW_AS_OF, _write_sample(root / "sample_faulty", faults=0.05), faulty, max_issue_rate=1.0)
    return Runs(root=root, input_dir=input_dir, new=new, old=old, faulty=faulty)


ROOT_NIGHTS = ["2025-01-13", "2025-01-14", "2025-01-15", "2025-01-16", "2025-01-18"]
MISSING_NIGHT = "2025-01-17"
OTHER_POLICY_NIGHT = "2025-01-13"
OTHER_POLICY_VERSION = "2025.01-other-rules"


@dataclass(frozen=True)
class SampleRoot:
    root: Path
    template: str  # the backfill --input TEMPLATE
    policy_file: Path  # the policy of OTHER_POLICY_NIGHT


@functools.cache
def sample_root() -> SampleRoot:
    from crossmargin.backfill import backfill

    runs = sample_runs()
    base = runs.root / "programme"
    for night in ROOT_NIGHTS:
        (base / "in").mkdir(parents=True, exist_ok=True)
        (base / "in" / night).symlink_to(runs.input_dir.resolve(), target_is_directory=True)
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


@functools.cache
def scenario_run() -> Path:
    runs = sample_runs()
    out = runs.root / "run_scenarios"
    run_job(NEW_AS_OF, runs.input_dir, out, scenarios="default")
    return out


def risk(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "account_risk.parquet").with_columns(
        pl.col("margin_mode").cast(pl.String), pl.col("borrow_blocked_reason").cast(pl.String)
    )


def actions(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "actions.parquet").with_columns(pl.col("action").cast(pl.String))


def issues(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "data_issues.parquet").with_columns(pl.col("code").cast(pl.String))
