"""The shared runs of the job (made once per session by the fixtures of tests/conftest.py): what they
are, and readers of a run's outputs.

- `sample_runs` (Runs): `crossmargin.job.run_job` on the committed sample `data/sample` (or, if it is
  absent, on `crossmargin.synthetic.write_sample(accounts=300, seed=1)`):
  `new` as_of 2025-01-21T10:00Z (new Pro formula, non-compliant Pro accounts switched now),
  `old` as_of 2025-01-14T00:00Z (old formula, non-compliant Pro accounts pending),
  `faulty` a sample with injected data faults (so data_issues is not empty), as_of 2025-01-21T10:00Z;
- `sample_root` (SampleRoot): the same input (a directory of symlinks per night) backfilled into a root
  of nightly partitions: OTHER_POLICY_NIGHT (2025-01-13) under another policy version (a policy file
  naming its own version), 2025-01-14, 2025-01-15, 2025-01-16 and 2025-01-18 under the shipped one;
  MISSING_NIGHT (2025-01-17) is missing;
- `scenario_run` (Path): the `new` run with the shipped stress scenarios;
- `golden_runs` ({name: Path}): the installed command on data/sample at GOLDEN_AS_OFS, the two sides of
  the new-formula cut-over (tests/golden/ holds their reviewed outputs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

NEW_AS_OF = dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC)
OLD_AS_OF = dt.datetime(2025, 1, 14, tzinfo=dt.UTC)
GOLDEN_AS_OFS = {"new": "2025-01-21T10:00:00Z", "old": "2025-01-21T09:59:59Z"}

ROOT_NIGHTS = ["2025-01-13", "2025-01-14", "2025-01-15", "2025-01-16", "2025-01-18"]
MISSING_NIGHT = "2025-01-17"
OTHER_POLICY_NIGHT = "2025-01-13"
OTHER_POLICY_VERSION = "2025.01-other-rules"


@dataclass(frozen=True)
class Runs:
    root: Path
    input_dir: Path
    new: Path
    old: Path
    faulty: Path


@dataclass(frozen=True)
class SampleRoot:
    root: Path
    template: str  # the backfill --input TEMPLATE
    policy_file: Path  # the policy of OTHER_POLICY_NIGHT


def risk(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "account_risk.parquet").with_columns(
        pl.col("margin_mode").cast(pl.String), pl.col("borrow_blocked_reason").cast(pl.String)
    )


def actions(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "actions.parquet").with_columns(pl.col("action").cast(pl.String))


def issues(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "data_issues.parquet").with_columns(pl.col("code").cast(pl.String))
