"""Where an explanation's inputs come from: an input directory at an as_of, or a run's directory.

`from_input`: the input tables, the policy resolved at as_of (with a user's policy file), the same
checks as `crossmargin run` before any work (schemas: exit 3; an empty table: exit 3).

`from_run`: a run's output directory (its manifest.json). The explanation must be of that run, so
before any work every input file the manifest lists is checked against its recorded name and sha256,
and the policy against its recorded digest; any difference refuses with one line, exit 2. The as_of,
the policy file and the baseline are the run's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from crossmargin.errors import CrossmarginError
from crossmargin.io.feed import Baseline, check_feed
from crossmargin.io.inputs import changed_inputs, load_inputs
from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.policy import Policy, resolve


class ExplainError(CrossmarginError):
    """An account or a run that cannot be explained: one line, exit 2."""

    exit_code = 2


@dataclass(frozen=True)
class Source:
    """The input tables and the policy in force an explanation is computed from."""

    tables: dict[str, pl.LazyFrame]
    policy: Policy
    input_dir: Path
    policy_file: Path | None
    run: Path | None  # the run's output directory, when explaining a run
    baseline: Baseline | None  # the run's baseline, as its manifest recorded it

    def record(self) -> dict[str, Any]:
        """Where the numbers come from, JSON-ready."""
        return {
            "input_dir": str(self.input_dir.absolute()),
            "policy_file": str(self.policy_file) if self.policy_file else None,
            "run": str(self.run.absolute()) if self.run else None,
            "baseline": str(self.baseline.directory) if self.baseline else None,
        }


def from_input(input_dir: Path, as_of: dt.datetime, policy_file: Path | None = None) -> Source:
    """The tables of `input_dir` with the policy in force at `as_of`, checked as `crossmargin run` does."""
    policy = resolve(as_of, policy_file)
    return _loaded(Path(input_dir), policy, policy_file, None, None)


def _loaded(
    input_dir: Path, policy: Policy, policy_file: Path | None, baseline: Baseline | None, run: Path | None
) -> Source:
    loaded = load_inputs(input_dir)
    check_feed({name: f for name, (_, f) in loaded.items()}, policy, baseline)
    tables = {name: frame for name, (frame, _) in loaded.items()}
    return Source(tables, policy, input_dir, policy_file, run, baseline)


def from_run(out_dir: Path) -> Source:
    """The inputs, as_of, policy and baseline of the run in `out_dir`, refused unless they are still
    the run's (one line, exit 2)."""
    from crossmargin.analytics.rundir import read_manifest

    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    input_dir = Path(_field(manifest, "input_dir", out_dir))
    recorded = manifest.get("inputs")
    if not isinstance(recorded, dict) or set(recorded) != set(INPUT_SCHEMAS):
        raise ExplainError(f"{out_dir}/manifest.json does not list the run's input tables")
    _check_inputs(recorded, input_dir, out_dir)
    as_of = dt.datetime.fromisoformat(_field(manifest, "as_of", out_dir))
    policy_file = Path(manifest["policy_file"]) if manifest.get("policy_file") else None
    policy = _run_policy(manifest, as_of, policy_file, out_dir)
    return _loaded(input_dir, policy, policy_file, _baseline(manifest.get("baseline")), out_dir)


def _field(manifest: dict[str, Any], key: str, out_dir: Path) -> str:
    value = manifest.get(key)
    if not isinstance(value, str) or not value:
        raise ExplainError(f"{out_dir}/manifest.json records no {key}")
    return value


def _check_inputs(recorded: dict[str, Any], input_dir: Path, out_dir: Path) -> None:
    """Every input file is the one the run read (name and sha256), else ExplainError naming the table."""
    stale = "the explanation would not be of that run"
    try:
        changed = changed_inputs(recorded, input_dir)
    except CrossmarginError as exc:
        raise ExplainError(f"{exc} ({out_dir} read it from {input_dir}): {stale}") from None
    if changed:
        table = changed[0]
        raise ExplainError(
            f"input table '{table}' in {input_dir} no longer matches {out_dir}/manifest.json "
            f"(file {recorded[table].get('file')!r}, sha256 {str(recorded[table].get('sha256'))[:12]}...): {stale}"
        )


def _run_policy(
    manifest: dict[str, Any], as_of: dt.datetime, policy_file: Path | None, out_dir: Path
) -> Policy:
    """The policy the run resolved, as long as its text is still the run's (the recorded digest)."""
    policy = resolve(as_of, policy_file)
    if policy.source_sha256 != manifest.get("policy_sha256"):
        what = f"policy file {policy_file}" if policy_file else "shipped policy"
        raise ExplainError(
            f"the {what} is not the one {out_dir} ran with (policy_sha256 differs from its manifest.json): "
            "the explanation would not be of that run"
        )
    return policy


def _baseline(record: Any) -> Baseline | None:
    """The run's baseline, as its manifest recorded it (the baseline's row count per table)."""
    if not isinstance(record, dict):
        return None
    tables = record.get("tables") or {}
    rows = {
        t: e["baseline_rows"]
        for t, e in tables.items()
        if isinstance(e, dict) and e.get("baseline_rows") is not None
    }
    return Baseline(Path(record.get("dir", "")), record.get("as_of"), rows)
