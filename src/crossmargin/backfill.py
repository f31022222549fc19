"""Backfill: run the job once per day over a date range, one output partition per day.

Day D is scored as of D T00:00:00Z (the nightly convention: the run at midnight scores the book as
of that midnight) from the input directory TEMPLATE with `{date}` replaced by D, into
ROOT/as_of=D/, with the previous night's partition (or the latest earlier one, when that night has
none) as the baseline of its input row counts (a broken feed is not a book: feed.py). A day whose
partition is up to date (`why_run` returns None) is skipped; a day that
fails is reported and the next day runs; the caller learns of the failures at the end
(`BackfillFailed`, exit 1). The skip rule, layout and exit codes are described in
docs/operations.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossmargin.errors import CrossmarginError, InputSchemaError, UsageError
from crossmargin.executors import executor_for
from crossmargin.io import outputs
from crossmargin.io.inputs import changed_inputs
from crossmargin.io.partitions import baseline_for, partition_dir, run_manifest
from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.job import check_options, run_job
from crossmargin.policy import resolve
from crossmargin.progress import Progress
from crossmargin.scenario_set import load_scenarios

DATE_FIELD = "{date}"
_DAY = re.compile(r"\d{4}-\d\d-\d\d")


class BackfillFailed(CrossmarginError):
    """One or more days failed (each reported on its own line); every other day was still attempted."""

    exit_code = 1


@dataclass(frozen=True)
class DayResult:
    day: dt.date
    status: str  # "ran", "skipped" or "failed"
    detail: str = ""  # the job's summary, or why the day failed
    reason: str = ""  # why it ran: no partition yet, input changed, --force, ...
    exit_code: int = 0  # of a failed day: the job's own exit code (2, 3, 4, ...)

    def line(self) -> str:
        """The day's one summary line."""
        if self.status == "skipped":
            return f"{self.day}: skipped (up to date)"
        if self.status == "failed":
            return f"{self.day}: failed (exit {self.exit_code}): {self.detail}"
        return f"{self.day}: ran ({self.reason}): {self.detail}"


# ------------------------------------------------------------------ options


def parse_day(text: str, option: str) -> dt.date:
    """A calendar date written YYYY-MM-DD, or UsageError naming the option."""
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date YYYY-MM-DD (e.g. 2025-01-20)") from None


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from `first` to `last`, both included."""
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def check_template(template: str) -> None:
    if DATE_FIELD not in template:
        raise UsageError(
            f"--input {template!r} has no {DATE_FIELD} placeholder (e.g. /data/in/{DATE_FIELD}): "
            "each day needs its own input directory"
        )


# ------------------------------------------------------------------ one day


def as_of_for(day: dt.date) -> dt.datetime:
    """The valuation time of day D's partition: D at 00:00:00 UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def input_dir_for(template: str, day: dt.date) -> Path:
    return Path(template.replace(DATE_FIELD, day.isoformat()))


def why_run(
    out_dir: Path,
    input_dir: Path,
    as_of: dt.datetime,
    policy_file: Path | None,
    scenarios: dict[str, Any] | None = None,
) -> str | None:
    """Why the partition `out_dir` must be (re)computed, or None when it is up to date.

    Up to date: its manifest.json was written by crossmargin for this as_of, names the policy that
    `resolve(as_of, policy_file)` gives now (version and digest), the scenario set asked for now
    (`scenarios`: its manifest record, None for none) and the input files this day's directory holds
    now (same file names, same sha256), and its outputs verify. Checks run cheapest first; the input
    files are hashed last. (The engine and the buckets do not change the outputs.)
    """
    manifest = run_manifest(out_dir)
    if manifest is None:
        return "no partition yet" if not out_dir.exists() else "no readable crossmargin manifest.json"
    if manifest.get("as_of") != as_of.isoformat().replace("+00:00", "Z"):
        return f"manifest is for as_of {manifest.get('as_of')}"
    try:
        policy = resolve(as_of, policy_file)
    except CrossmarginError as exc:  # the run reports it
        return str(exc)
    if manifest.get("policy_sha256") != policy.source_sha256:
        return "policy changed"
    if manifest.get("policy_version") != policy.version:
        return f"policy version is now {policy.version}"
    if manifest.get("scenarios") != scenarios:
        if scenarios and manifest.get("scenarios"):
            return "scenario set changed"
        return "scenarios asked for" if scenarios else "no scenarios asked for"
    recorded = manifest.get("inputs")
    if not isinstance(recorded, dict) or set(recorded) != set(INPUT_SCHEMAS):
        return "manifest lists other input tables"
    try:
        problems = outputs.verify_outputs(out_dir)
    except (KeyError, TypeError, AttributeError):  # a hand-edited manifest
        problems = ["malformed outputs in manifest.json"]
    if problems:
        return f"outputs do not verify ({problems[0]})"
    try:
        changed = changed_inputs(recorded, input_dir)
    except CrossmarginError as exc:  # the run reports it
        return str(exc)
    if changed:
        return f"input changed: {', '.join(changed)}"
    return None


def backfill_day(
    day: dt.date,
    template: str,
    out_root: Path,
    policy_file: Path | None = None,
    max_issue_rate: float = 0.01,
    force: bool = False,
    progress: Progress | None = None,
    job: JobOptions | None = None,
) -> DayResult:
    """Skip, run or fail one day; a failure is returned, not raised."""
    job = job or JobOptions()
    as_of, input_dir, out_dir = as_of_for(day), input_dir_for(template, day), partition_dir(out_root, day)
    try:
        if not input_dir.is_dir():
            raise InputSchemaError(f"input directory {input_dir} does not exist")
        reason = "--force" if force else why_run(out_dir, input_dir, as_of, policy_file, job.scenario_record)
        if reason is None:
            return DayResult(day, "skipped")
        options = {
            "policy_file": policy_file,
            "max_issue_rate": max_issue_rate,
            "baseline": baseline_for(out_root, day),
            **job.run_job_options(),
        }
        if progress is None:
            summary = run_job(as_of, input_dir, out_dir, **options)
        else:
            with progress.paused():  # the job draws its own bar
                summary = run_job(as_of, input_dir, out_dir, **options)
        return DayResult(day, "ran", summary, reason)
    except CrossmarginError as exc:
        return DayResult(day, "failed", str(exc), exit_code=exc.exit_code)
    except OSError as exc:  # e.g. permission denied under the output root
        return DayResult(day, "failed", f"{exc.strerror or exc}: {exc.filename or out_dir}", exit_code=1)


@dataclass(frozen=True)
class JobOptions:
    """The `run` options a backfill passes to every day's job: buckets, engine, scenarios."""

    buckets: int | None = None
    engine: str = "local"
    ray_address: str | None = None
    scenarios: str | None = None  # a TOML file or "default"

    def check(self) -> None:
        """UsageError (exit 2) for a bad option, before any day runs."""
        check_options(0.0, self.buckets)
        executor_for(self.engine, self.ray_address)
        if self.scenarios is not None:
            load_scenarios(self.scenarios)

    @property
    def scenario_record(self) -> dict[str, Any] | None:
        """The scenario set as a run's manifest records it (None without scenarios)."""
        return load_scenarios(self.scenarios).as_record() if self.scenarios is not None else None

    def run_job_options(self) -> dict[str, Any]:
        return {
            "buckets": self.buckets,
            "executor": executor_for(self.engine, self.ray_address),
            "engine": self.engine,
            "scenarios": self.scenarios,
        }


# ------------------------------------------------------------------ the range


def day_ranges(days: list[dt.date]) -> str:
    """`2025-01-03, 2025-01-05..2025-01-09`: consecutive days collapsed (the failure line stays short)."""
    runs: list[list[dt.date]] = []
    for d in sorted(days):
        if runs and d - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def backfill(
    first: str,
    last: str,
    template: str,
    out_root: Path,
    policy_file: Path | None = None,
    max_issue_rate: float = 0.01,
    force: bool = False,
    report: Callable[[str], None] = print,
    job: JobOptions | None = None,
) -> list[DayResult]:
    """Every day from `first` to `last` (YYYY-MM-DD, inclusive), one `report` line per day, then a total.

    Options are checked before any day (UsageError, exit 2). A failed day does not stop the others;
    when any failed, BackfillFailed (exit 1) names them after the last day.
    """
    days = days_between(parse_day(first, "--from"), parse_day(last, "--to"))
    check_template(template)
    check_options(max_issue_rate, None)
    job = job or JobOptions()
    job.check()
    if policy_file is not None and not Path(policy_file).is_file():
        raise UsageError(f"--policy {policy_file} is not a file")
    out_root = Path(out_root)
    if out_root.exists() and not out_root.is_dir():
        raise UsageError(f"--out-root {out_root} is a file, not a directory")

    results: list[DayResult] = []
    with Progress(len(days), "backfill") as progress:
        for i, day in enumerate(days):
            progress.step(f"backfill {day} ({i + 1}/{len(days)})")
            result = backfill_day(day, template, out_root, policy_file, max_issue_rate, force, progress, job)
            results.append(result)
            with progress.paused():  # the line goes above the bar, not into it
                report(result.line())
            progress.advance()

    failed = [r for r in results if r.status == "failed"]
    counts = {s: sum(r.status == s for r in results) for s in ("ran", "skipped", "failed")}
    report(
        f"backfill {days[0]}..{days[-1]}: {counts['ran']} ran, {counts['skipped']} skipped (up to date), "
        f"{counts['failed']} failed"
    )
    if failed:
        raise BackfillFailed(
            f"{len(failed)} of {len(days)} day(s) failed: {day_ranges([r.day for r in failed])} "
            f"(reasons above; rerun the same command to retry them)"
        )
    return results
