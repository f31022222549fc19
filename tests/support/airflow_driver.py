"""Run the Airflow DAG with `dag.test()` for a list of scenarios; write what happened as JSON.

    python tests/support/airflow_driver.py SCENARIOS.json RESULTS.json

Run by tests/e2e/test_airflow_dag.py in a subprocess whose environment already points AIRFLOW_HOME and
AIRFLOW__CORE__DAGS_FOLDER at temporary directories (Airflow reads its configuration on import).
SCENARIOS.json: {"scenarios": [...], "as_of_cases": [...]}. A scenario: {"name", "logical_date" (ISO),
"run_conf" (dict or null), "env" (set during the run), "watch" (paths whose inode is recorded after
the run), "shipped_retries" (keep the DAG's own retry settings)}. An as_of case: [param,
data_interval_end, run_after] for the DAG's `resolve_as_of`. Retries are set to 0 unless a scenario
keeps the shipped ones, so a failing task fails the run at once instead of waiting retry_delay; each
run's wall time is recorded. "exit_codes": exit codes of `crossmargin` whose exception (retried or
not) is recorded.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock


def load_dag(shipped_retries: bool = False):
    """A fresh DAG object from the dags folder, retries off unless `shipped_retries`.

    Fresh for every run as on a worker, where each task parses the file anew: `dag.test()` runs the
    tasks in this process, and a run's params would otherwise stay on the shared task objects.
    """
    dag_file = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "airflow_dag.py"
    spec = importlib.util.spec_from_file_location("crossmargin_airflow_dag", dag_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if not shipped_retries:
        for t in module.dag.tasks:
            t.retries = 0
    return module.dag


def main(scenarios_file: str, results_file: str) -> None:
    from airflow import settings
    from airflow.models.asset import AssetEvent
    from airflow.utils.db import resetdb
    from sqlalchemy import select

    resetdb()
    spec = json.loads(Path(scenarios_file).read_text())
    results: dict = {"scenarios": {}}
    for sc in spec["scenarios"]:
        dag = load_dag(sc.get("shipped_retries", False))
        t0 = time.perf_counter()
        with mock.patch.dict(os.environ, sc.get("env") or {}):
            dr = dag.test(logical_date=dt.datetime.fromisoformat(sc["logical_date"]), run_conf=sc["run_conf"])
        seconds = time.perf_counter() - t0
        session = settings.Session()
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == dr.run_id)).all()
        results["scenarios"][sc["name"]] = {
            "state": str(dr.state),
            "seconds": seconds,
            "retries": {t.task_id: t.retries for t in dag.tasks},
            "data_interval_end": dr.data_interval_end.isoformat() if dr.data_interval_end else None,
            "tasks": {ti.task_id: str(ti.state) for ti in dr.get_task_instances(session=session)},
            "asset_events": [{"asset": e.asset.name, "extra": e.extra} for e in events],
            "inodes": {p: Path(p).stat().st_ino if Path(p).exists() else None for p in sc.get("watch", [])},
        }
        session.close()
    module = importlib.import_module("crossmargin_airflow_dag")
    resolve = module.resolve_as_of
    results["exits"] = {
        str(code): type(module.failure("run", code, "stderr")).__name__ for code in spec.get("exit_codes", [])
    }
    results["as_of"] = [
        resolve(param, end and dt.datetime.fromisoformat(end), dt.datetime.fromisoformat(after)).isoformat()
        for param, end, after in spec["as_of_cases"]
    ]
    Path(results_file).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:])
