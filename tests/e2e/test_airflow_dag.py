"""jobs/airflow_dag.py run for real by Airflow 3 (`dag.test()`, no scheduler) on data/sample.

Airflow reads its configuration when imported, so the runs happen in one subprocess
(tests/support/airflow_driver.py) with AIRFLOW_HOME, the dags folder and the metadata database in a temporary
directory; this process never imports airflow. The `[airflow]` extra is part of `[dev]`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from support import REPO, SAMPLE
from support.cli import cli_process

NIGHT = "2025-01-21"


@pytest.fixture(scope="module")
def airflow_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every scenario of this module through `dag.test()` in one Airflow process (about 20 s)."""
    tmp = tmp_path_factory.mktemp("airflow")
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(REPO / "jobs" / "airflow_dag.py", dags)
    (tmp / "in").mkdir()
    shutil.copytree(SAMPLE, tmp / "in" / NIGHT)
    broken = tmp / "broken" / "2025-01-22"  # the next night's input, without balances.parquet
    shutil.copytree(SAMPLE, broken, ignore=shutil.ignore_patterns("balances.*"))
    shrunken = tmp / "in" / "2025-01-22"  # the next night's export, with 40 % of the balance rows
    shutil.copytree(SAMPLE, shrunken)
    balances = pl.read_parquet(SAMPLE / "balances.parquet")
    balances.head(balances.height * 2 // 5).write_parquet(shrunken / "balances.parquet")

    paths = {"input_template": str(tmp / "in" / "{date}"), "out_root": str(tmp / "out")}
    partition = str(tmp / "out" / f"as_of={NIGHT}")
    scenarios = [
        # the nightly run scoring as of 2025-01-21T00:00Z (dag.test: data interval ends at that midnight)
        {
            "name": "nightly",
            "logical_date": f"{NIGHT}T00:00:00+00:00",
            "run_conf": paths,
            "watch": [partition],
        },
        # a later manual run re-scoring that night with the as_of param: the same partition, republished
        {
            "name": "rerun",
            "logical_date": "2025-01-25T06:00:00+00:00",
            "run_conf": {**paths, "as_of": NIGHT},
            "watch": [partition],
        },
        # no conf: input from the Airflow Variable (env backend), out_root from $CROSSMARGIN_OUT_ROOT
        {
            "name": "defaults",
            "logical_date": f"{NIGHT}T09:30:00+00:00",
            "run_conf": None,
            "env": {
                "AIRFLOW_VAR_CROSSMARGIN_INPUT": paths["input_template"],
                "CROSSMARGIN_OUT_ROOT": str(tmp / "out_env"),
            },
        },
        # with the DAG's own retry settings: a missing table is not retried
        {
            "name": "broken",
            "logical_date": "2025-01-22T00:00:00+00:00",
            "run_conf": {
                "input_template": str(tmp / "broken" / "{date}"),
                "out_root": str(tmp / "out_broken"),
            },
            "shipped_retries": True,
        },
        # the night after "nightly", under the same root: that partition is the baseline
        {
            "name": "shrunken",
            "logical_date": "2025-01-22T00:00:00+00:00",
            "run_conf": paths,
            "shipped_retries": True,
        },
        {"name": "unset", "logical_date": "2025-01-23T00:00:00+00:00", "run_conf": None},
    ]
    as_of_cases = [
        [None, "2025-01-21T00:00:00+00:00", "2025-01-21T00:04:00+00:00"],  # scheduled: the interval end
        [None, None, "2025-01-21T10:37:12+00:00"],  # manual, no logical date: last midnight of run_after
        ["2025-01-10", "2025-01-21T00:00:00+00:00", "2025-01-21T10:37:12+00:00"],  # the param wins
    ]
    spec = tmp / "scenarios.json"
    exit_codes = [1, 2, 3, 4, 5, -9]
    spec.write_text(
        json.dumps({"scenarios": scenarios, "as_of_cases": as_of_cases, "exit_codes": exit_codes})
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CROSSMARGIN_"))}
    env |= {
        "AIRFLOW_HOME": str(tmp / "home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    results = tmp / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "support" / "airflow_driver.py"), str(spec), str(results)],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"tmp": tmp, "log": proc.stdout + proc.stderr, **json.loads(results.read_text())}


def _partition_files(part: Path) -> set[str]:
    return {p.name for p in part.iterdir()}


def test_nightly_run_publishes_a_verified_partition_and_the_report(airflow_runs: dict) -> None:
    run = airflow_runs["scenarios"]["nightly"]
    assert run["state"] == "success"
    assert run["tasks"] == {"run": "success", "verify": "success", "cohort_report": "success"}
    out = airflow_runs["tmp"] / "out"
    part = out / f"as_of={NIGHT}"
    manifest = json.loads((part / "manifest.json").read_text())
    assert manifest["as_of"] == f"{NIGHT}T00:00:00Z"
    # only the job's own files in the partition (the report lives beside it)
    assert _partition_files(part) == {"manifest.json", *(f"{n}.parquet" for n in manifest["outputs"])}
    assert sorted(p.name for p in out.iterdir()) == [f"as_of={NIGHT}", "reports"]
    report = out / "reports" / f"as_of={NIGHT}" / "cohort_report.html"
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    # the report task also renders the programme page over every night of the root
    programme = (out / "reports" / "programme.html").read_text(encoding="utf-8")
    assert "crossmargin migration programme — 2025-01-21 to 2025-01-21" in programme
    verify = cli_process("verify", "--out", part, module=True, timeout=120)
    assert verify.exit_code == 0, verify.stderr


def test_verify_emits_the_partition_as_an_asset_event(airflow_runs: dict) -> None:
    part = str(airflow_runs["tmp"] / "out" / f"as_of={NIGHT}")
    assert airflow_runs["scenarios"]["nightly"]["asset_events"] == [
        {"asset": "crossmargin_risk_partition", "extra": {"as_of": f"{NIGHT}T00:00:00Z", "partition": part}}
    ]


def test_a_rerun_of_the_night_republishes_the_same_partition(airflow_runs: dict) -> None:
    first, rerun = airflow_runs["scenarios"]["nightly"], airflow_runs["scenarios"]["rerun"]
    assert rerun["state"] == "success"
    assert rerun["data_interval_end"].startswith("2025-01-25")  # the param, not the interval, decides
    assert rerun["asset_events"][0]["extra"] == first["asset_events"][0]["extra"]
    part = str(airflow_runs["tmp"] / "out" / f"as_of={NIGHT}")
    assert first["inodes"][part] is not None
    assert rerun["inodes"][part] not in (None, first["inodes"][part])  # a new directory swapped in


def test_paths_default_to_the_airflow_variable_and_the_environment(airflow_runs: dict) -> None:
    run = airflow_runs["scenarios"]["defaults"]
    assert run["state"] == "success"
    part = airflow_runs["tmp"] / "out_env" / f"as_of={NIGHT}"  # 09:30 logical date: as_of that midnight
    assert run["asset_events"][0]["extra"] == {"as_of": f"{NIGHT}T00:00:00Z", "partition": str(part)}
    assert (part / "manifest.json").is_file()


def test_a_broken_input_fails_the_run_with_the_jobs_message(airflow_runs: dict) -> None:
    run = airflow_runs["scenarios"]["broken"]
    assert run["retries"]["run"] == 2  # the shipped settings, not the test's
    assert run["seconds"] < 60  # not retried (the shipped retry_delay is 10 minutes)
    assert run["state"] == "failed"
    assert run["tasks"] == {"run": "failed", "verify": "upstream_failed", "cohort_report": "upstream_failed"}
    assert run["asset_events"] == []
    assert not (airflow_runs["tmp"] / "out_broken" / "as_of=2025-01-22").exists()
    assert (
        "crossmargin run exited with 3: crossmargin: error: input table 'balances' is missing"
        in (airflow_runs["log"])
    )


def test_a_night_whose_export_shrank_fails_at_once_against_the_previous_partition(airflow_runs: dict) -> None:
    run = airflow_runs["scenarios"]["shrunken"]
    assert run["state"] == "failed"
    assert run["seconds"] < 60
    assert run["tasks"] == {"run": "failed", "verify": "upstream_failed", "cohort_report": "upstream_failed"}
    assert not (airflow_runs["tmp"] / "out" / "as_of=2025-01-22").exists()
    baseline = airflow_runs["tmp"] / "out" / f"as_of={NIGHT}"
    assert (
        f"input table 'balances' has 680 rows, 40.0% of the baseline's 1,700 ({baseline}), below "
        "min_row_ratio 0.5" in airflow_runs["log"]
    )


def test_only_errors_a_retry_can_fix_are_retried(airflow_runs: dict) -> None:
    assert airflow_runs["exits"] == {
        "1": "AirflowException",  # an unexpected crash
        "2": "AirflowFailException",  # option, policy or destination
        "3": "AirflowFailException",  # input
        "4": "AirflowFailException",  # data-issue rate
        "5": "AirflowException",  # Ray could not run a bucket
        "-9": "AirflowException",  # the worker was killed
    }


def test_a_run_without_paths_fails_and_says_where_they_come_from(airflow_runs: dict) -> None:
    run = airflow_runs["scenarios"]["unset"]
    assert run["state"] == "failed"
    assert run["tasks"]["run"] == "failed"
    assert (
        "no out_root: pass the param out_root, or set the Airflow Variable crossmargin_out_root"
        in (airflow_runs["log"])
    )


def test_as_of_is_the_param_else_the_interval_end_else_the_last_midnight(airflow_runs: dict) -> None:
    assert airflow_runs["as_of"] == [
        "2025-01-21T00:00:00+00:00",
        "2025-01-21T00:00:00+00:00",
        "2025-01-10T00:00:00+00:00",
    ]
