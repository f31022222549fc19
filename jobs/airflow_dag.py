"""Airflow DAG: the nightly crossmargin run, its verification and the cohort report.

Install with the `[airflow]` extra. Each task shells out to the `crossmargin` CLI, so the DAG holds
no business logic and the same commands run by hand or from cron. `{{ data_interval_end }}` is the
as_of: the run at 00:00 UTC scores the book as of that midnight.
"""

from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.operators.bash import BashOperator

INPUT = "/data/crossmargin/in/{{ ds }}"
OUT = "/data/crossmargin/risk/{{ ds }}"
AS_OF = "{{ data_interval_end.strftime('%Y-%m-%dT%H:%M:%SZ') }}"

with DAG(
    dag_id="crossmargin_nightly",
    schedule="0 0 * * *",
    start_date=dt.datetime(2024, 12, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=10)},
    tags=["risk", "margin"],
) as dag:
    run = BashOperator(
        task_id="run",
        bash_command=f"crossmargin run --as-of {AS_OF} --input {INPUT} --out {OUT}",
    )
    verify = BashOperator(task_id="verify", bash_command=f"crossmargin verify --out {OUT}")
    cohort = BashOperator(
        task_id="cohort_report",
        bash_command=f"crossmargin report --out {OUT} --html {OUT}/../cohort_{{{{ ds }}}}.html",
    )
    run >> verify >> cohort
