"""Airflow 3 DAG `crossmargin_nightly`: run the job, verify its outputs, write the cohort report.

Install with `pip install -c constraints.txt -e '.[airflow]'` and put this file in the dags folder. Each task calls
`python -m crossmargin ...` with the worker's own interpreter (`sys.executable`), so nothing depends
on PATH, and a non-zero exit fails the task with the command's stderr in the log and the exception.

Schedule: `CronDataIntervalTimetable("0 0 * * *", timezone="UTC")`, one run per day. The run that
starts at midnight D covers the interval [D-1, D) and scores the book **as of the end of the data
interval**, D 00:00:00Z (its logical date is D-1: Airflow labels an interval by its start).

as_of, in this order:
1. the `as_of` param (`YYYY-MM-DD`, meaning that midnight UTC), to re-run any night by hand;
2. `data_interval_end`: scheduled and backfill runs, and `dag.test(logical_date=...)`. For a manual
   trigger *with* a logical date Airflow 3 infers the interval from the trigger time, so it ends at
   the last midnight UTC at or before the moment the run was triggered (not at the logical date);
3. a manual trigger without a logical date has no data interval in Airflow 3: the last midnight UTC
   at or before the run's `run_after` (the trigger time).
A manual run therefore re-scores the most recent night unless `as_of` says otherwise.

Failures: a task fails at once, without retries, when `crossmargin` exits with an error a retry
cannot fix: 2 (a bad option, policy or destination), 3 (a broken input: a missing or empty table, a
table shrunk below its share of the previous night's, a bad column) or 4 (too many data issues).
Anything else (exit 5: Ray could not run a bucket; a worker killed by a signal; an unexpected crash)
is retried per `retries` / `retry_delay`.

Baseline: the run task passes the previous night's partition (or the latest earlier one when that night
has none) as `--baseline`, so a night whose export lost rows stops instead of being scored as the book.

Paths (params, overridable per run via trigger conf or `dag.test(run_conf=...)`):
- `input_template`: the input directory, `{date}` replaced by the as_of date (`/data/in/{date}`);
  without `{date}` the same directory is read every day;
- `out_root`: every night publishes `OUT_ROOT/as_of=YYYY-MM-DD/` (the job writes it atomically and
  replaces its own earlier output, so a retry or re-run republishes the same partition) and the
  cohort report `OUT_ROOT/reports/as_of=YYYY-MM-DD/cohort_report.html` (outside the partition: the
  job refuses to replace a directory holding files it did not write); the report task also rewrites
  the programme page over every night of the root, `OUT_ROOT/reports/programme.html`.
An empty param falls back to the Airflow Variable `crossmargin_input` / `crossmargin_out_root`, then
to the environment variable CROSSMARGIN_INPUT / CROSSMARGIN_OUT_ROOT. Paths must be absolute.

The `verify` task declares the Asset `crossmargin_risk_partition` as its outlet: an asset event is
emitted only for a partition whose files match its manifest, with extra `{"as_of", "partition"}`,
so downstream DAGs can `schedule=[RISK_PARTITION]` and read the path from the triggering event.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    CronDataIntervalTimetable,
    Param,
    Variable,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowException, AirflowFailException

RISK_PARTITION = Asset(name="crossmargin_risk_partition", group="crossmargin")

# (param, Airflow Variable, environment variable) for each path setting
SETTINGS = {
    "input_template": ("crossmargin_input", "CROSSMARGIN_INPUT"),
    "out_root": ("crossmargin_out_root", "CROSSMARGIN_OUT_ROOT"),
}


# exit codes of `crossmargin` that a retry cannot fix: bad option, policy or destination; broken input;
# data-issue rate above the limit. The task fails at once; every other failure is retried.
FINAL_EXITS = {2: "option, policy or destination", 3: "input", 4: "data-issue rate"}


def failure(command: str, returncode: int, stderr: str) -> AirflowException:
    """The exception a failed `crossmargin COMMAND` raises: AirflowFailException (no retry) for an
    exit in FINAL_EXITS, else AirflowException (retried: exit 5, a killed worker, a crash)."""
    message = f"crossmargin {command} exited with {returncode}: {stderr.strip() or '(no stderr)'}"
    if returncode in FINAL_EXITS:
        return AirflowFailException(f"{message} [{FINAL_EXITS[returncode]} problem: not retried]")
    return AirflowException(message)


def crossmargin(*args: str) -> str:
    """Run `python -m crossmargin ARGS` with this interpreter; its stdout, or raise with its stderr."""
    cmd = [sys.executable, "-m", "crossmargin", *args]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print(proc.stdout, end="", flush=True)
    print(proc.stderr, end="", file=sys.stderr, flush=True)
    if proc.returncode != 0:
        raise failure(args[0], proc.returncode, proc.stderr)
    return proc.stdout


def last_midnight(t: dt.datetime) -> dt.datetime:
    """The latest midnight UTC at or before `t`."""
    return t.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def resolve_as_of(
    param: str | None, data_interval_end: dt.datetime | None, run_after: dt.datetime
) -> dt.datetime:
    """The run's as_of (always a midnight UTC): the param, else the interval end, else run_after."""
    if param:
        try:
            day = dt.date.fromisoformat(param)
        except ValueError:
            raise AirflowFailException(f"param as_of must be a date YYYY-MM-DD, got {param!r}") from None
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return last_midnight(data_interval_end if data_interval_end is not None else run_after)


def setting(params: dict[str, Any], name: str) -> str:
    """A path setting: the run's param, else the Airflow Variable, else the environment variable."""
    variable, env = SETTINGS[name]
    value = params.get(name) or Variable.get(variable, default=None) or os.environ.get(env)
    if not value:
        raise AirflowFailException(
            f"no {name}: pass the param {name}, or set the Airflow Variable {variable} or ${env}"
        )
    if not Path(value).is_absolute():
        raise AirflowFailException(f"{name} must be an absolute path, got {value!r}")
    return value


def plan() -> dict[str, str]:
    """as_of and the paths of this run, from the task context."""
    ctx = get_current_context()
    params = ctx["params"]
    as_of = resolve_as_of(params.get("as_of"), ctx.get("data_interval_end"), ctx["dag_run"].run_after)
    day = as_of.date().isoformat()
    out_root = Path(setting(params, "out_root"))
    from crossmargin.io.partitions import baseline_for  # light; imported here, not when the DAG is parsed

    previous = baseline_for(out_root, as_of.date())
    return {
        "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": setting(params, "input_template").replace("{date}", day),
        "partition": str(out_root / f"as_of={day}"),
        "baseline": str(previous) if previous is not None else "",
        "report": str(out_root / "reports" / f"as_of={day}" / "cohort_report.html"),
    }


with DAG(
    dag_id="crossmargin_nightly",
    description="crossmargin run -> verify -> cohort report, one partition per night",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2024, 12, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=3),
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    params={
        "input_template": Param(
            "", type="string", description="Input directory; {date} becomes YYYY-MM-DD of as_of"
        ),
        "out_root": Param("", type="string", description="Root of the as_of=YYYY-MM-DD partitions"),
        "as_of": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="Score as of this date's midnight UTC instead of the data interval end",
        ),
    },
    tags=["risk", "margin"],
) as dag:

    @task(task_id="run")
    def run_job() -> dict[str, str]:
        """Score the book into the night's partition (replaces the partition's previous run)."""
        p = plan()
        baseline = ["--baseline", p["baseline"]] if p["baseline"] else []
        crossmargin("run", "--as-of", p["as_of"], "--input", p["input"], "--out", p["partition"], *baseline)
        return p

    @task(outlets=[RISK_PARTITION])
    def verify(p: dict[str, str]) -> dict[str, str]:
        """Recheck the partition against its manifest; then announce it as an asset event."""
        crossmargin("verify", "--out", p["partition"])
        get_current_context()["outlet_events"][RISK_PARTITION].extra = {
            "as_of": p["as_of"],
            "partition": p["partition"],
        }
        return p

    @task
    def cohort_report(p: dict[str, str]) -> str:
        """The HTML migration cohort report of the partition, written next to (not into) it, and the
        programme page over every night of the root (OUT_ROOT/reports/programme.html)."""
        crossmargin("report", "--out", p["partition"], "--html", p["report"])
        root = str(Path(p["partition"]).parent)
        crossmargin("report", "--root", root, "--html", str(Path(root) / "reports" / "programme.html"))
        return p["report"]

    cohort_report(verify(run_job()))
