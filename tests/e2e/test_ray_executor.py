"""--engine ray: one Ray task per bucket, outputs byte-identical to the local engine, retries, and a
bucket that keeps failing stops the run with nothing published."""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import crossmargin.executors
from crossmargin.errors import EngineError, InputSchemaError
from crossmargin.executors import ray_tasks
from crossmargin.executors.ray_tasks import MAX_RETRIES, import_ray, ray_executor
from crossmargin.job import run_job
from support import REPO, SAMPLE, ray_faults
from support.cli import Ran, cli, cli_process

TESTS = REPO / "tests"
AS_OF = "2025-01-21T10:00:00Z"
TABLES = ["account_risk", "actions", "data_issues"]


def run_cli(*args: str) -> Ran:
    return cli("run", "--as-of", AS_OF, *args)


def assert_same_outputs(a: Path, b: Path) -> None:
    for table in TABLES:
        assert (a / f"{table}.parquet").read_bytes() == (b / f"{table}.parquet").read_bytes(), table


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name]


# ------------------------------------------------------------------ the command, Ray started by the run


def test_cli_starts_ray_and_matches_local_on_sample(tmp_path: Path) -> None:
    """The installed command starts its own Ray on this machine, scores 3 buckets, shuts Ray down."""
    home = tmp_path / "home"  # the run itself turns usage stats and the auth token off
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"HOME": str(home)}
    proc = cli_process(
        "run", "--as-of", AS_OF, "--input", SAMPLE, "--buckets", "3", "--engine", "ray", "--out", tmp_path / "ray",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.exit_code == 0, proc.stderr
    assert "461 accounts scored" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert run_cli("--input", str(SAMPLE), "--buckets", "3", "--out", str(tmp_path / "local")).exit_code == 0
    assert_same_outputs(tmp_path / "ray", tmp_path / "local")
    m = manifest(tmp_path / "ray")
    assert (m["engine"], m["buckets"]) == ("ray", 3)
    assert manifest(tmp_path / "local")["engine"] == "local"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "local", "ray"]
    assert not (home / ".ray").exists()  # no ~/.ray/auth_token


# ------------------------------------------------------------------ one Ray for the rest of the module


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local Ray: 2 CPUs, no dashboard, small object store, short temp dir; tests/ importable."""
    ray = import_ray()
    temp = tempfile.mkdtemp(prefix="cmray", dir="/tmp" if os.path.isdir("/tmp") else None)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=128 * 1024**2,
        _temp_dir=temp,
        runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}},
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("book") / "inputs"
    assert cli("sample", "--accounts", "50000", "--seed", "7", "--out", out).exit_code == 0
    return out


def test_ray_matches_local_on_50k_accounts(ray_cluster: Any, book: Path, tmp_path: Path) -> None:
    assert run_cli("--input", str(book), "--out", str(tmp_path / "local")).exit_code == 0
    assert run_cli("--input", str(book), "--buckets", "4", "--out", str(tmp_path / "local4")).exit_code == 0
    assert (
        run_cli(
            "--input", str(book), "--buckets", "4", "--engine", "ray", "--out", str(tmp_path / "ray")
        ).exit_code
        == 0
    )
    assert_same_outputs(tmp_path / "ray", tmp_path / "local4")
    assert_same_outputs(tmp_path / "ray", tmp_path / "local")  # the bucket count changes no byte either
    m = manifest(tmp_path / "ray")
    assert (m["engine"], m["buckets"], m["accounts_in"]) == ("ray", 4, 50_061)
    assert manifest(tmp_path / "local")["buckets"] == 1
    assert ray_cluster.is_initialized()  # a Ray the run did not start is left running


def test_ray_writes_scenario_risk_like_local(ray_cluster: Any, tmp_path: Path) -> None:
    """--scenarios reaches the Ray tasks: the same scenario_risk bytes as the local engine."""
    args = ["--input", str(SAMPLE), "--buckets", "3", "--scenarios", "default"]
    assert run_cli(*args, "--out", str(tmp_path / "local")).exit_code == 0
    assert run_cli(*args, "--engine", "ray", "--out", str(tmp_path / "ray")).exit_code == 0
    assert_same_outputs(tmp_path / "ray", tmp_path / "local")
    ray_file, local_file = (tmp_path / d / "scenario_risk.parquet" for d in ("ray", "local"))
    assert ray_file.read_bytes() == local_file.read_bytes()
    assert manifest(tmp_path / "ray")["outputs"]["scenario_risk"]["rows"] == 9 * 461


def test_a_task_that_fails_once_is_retried(ray_cluster: Any, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    executor = functools.partial(ray_executor, task=functools.partial(ray_faults.fail_once, marker))
    summary = run_job(
        as_of=crossmargin.cli._parse_as_of(AS_OF),
        input_dir=SAMPLE,
        out_dir=tmp_path / "ray",
        buckets=3,
        executor=executor,
        engine="ray",
    )
    assert "461 accounts scored" in summary
    assert marker.exists()  # one attempt did fail
    assert run_cli("--input", str(SAMPLE), "--buckets", "3", "--out", str(tmp_path / "local")).exit_code == 0
    assert_same_outputs(tmp_path / "ray", tmp_path / "local")
    assert leftovers(tmp_path) == []


def test_a_task_that_keeps_failing_ends_the_run_with_nothing_published(
    ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = tmp_path / "attempts"
    failing = functools.partial(ray_faults.always_fail_bucket_2, attempts)
    monkeypatch.setattr(
        crossmargin.executors,
        "executor_for",
        lambda engine, address: functools.partial(ray_executor, address=address, task=failing),
    )
    out = tmp_path / "out"
    res = run_cli("--input", str(SAMPLE), "--buckets", "3", "--engine", "ray", "--out", str(out))
    err = res.stderr
    assert res.exit_code == EngineError.exit_code == 5
    assert err.count("\n") == 1 and err.startswith("crossmargin: error: bucket 2 of 3 (account ids ")
    assert "InjectedFailure: injected failure, every attempt" in err
    assert f"failed after {MAX_RETRIES + 1} attempts" in err
    assert attempts.read_text().count("attempt") == MAX_RETRIES + 1
    assert not out.exists()
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempts"]


# ------------------------------------------------------------------ options, checked before any work


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "spark"], "crossmargin: error: --engine 'spark' is not one of local, ray\n"),
        (["--ray-address", "ray://head:10001"], "crossmargin: error: --ray-address needs --engine ray\n"),
        (
            ["--engine", "local", "--ray-address", "ray://head:10001"],
            "crossmargin: error: --ray-address needs --engine ray\n",
        ),
    ],
)
def test_bad_engine_options_exit_2_before_any_work(args: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run_cli("--input", str(SAMPLE), "--out", str(out), *args)
    assert res.exit_code == 2
    assert res.stderr == message
    assert list(tmp_path.iterdir()) == []


def test_missing_ray_says_to_install_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    res = run_cli("--input", str(SAMPLE), "--out", str(tmp_path / "out"), "--engine", "ray")
    assert res.exit_code == 2
    assert res.stderr == (
        "crossmargin: error: --engine ray needs Ray: from the top of a crossmargin clone, "
        "pip install -c constraints.txt -e '.[ray]'\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_cluster_ends_the_run_with_one_line(tmp_path: Path) -> None:
    """Ray retries an unreachable cluster without end; the run checks the address first and exits 5
    with one line, nothing written (a closed local port refuses at once)."""
    with socket.socket() as s:  # a port nothing listens on: bind, then close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = cli_process(
        "run", "--as-of", AS_OF, "--input", SAMPLE, "--out", tmp_path / "out",
        "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", timeout=120,
    )  # fmt: skip
    assert proc.exit_code == 5, proc.stderr
    assert proc.stderr.startswith(f"crossmargin: error: cannot reach Ray at 127.0.0.1:{port} within 15 s: ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    assert ray_tasks.unreachable("auto") is None


def test_a_corrupt_input_is_exit_3_naming_the_table_not_retried(ray_cluster: Any, tmp_path: Path) -> None:
    """Data pages that do not decode (the footer intact, so only the scan finds it): as with the local
    engine, one line naming the table and exit 3; the task returns the bad input instead of raising, so
    Ray does not retry it or print its traceback."""
    data = tmp_path / "in"
    shutil.copytree(SAMPLE, data)
    balances = data / "balances.parquet"
    raw = bytearray(balances.read_bytes())
    raw[len(raw) // 4 : len(raw) // 4 + 200] = b"\xab" * 200
    balances.write_bytes(bytes(raw))
    for engine in ("local", "ray"):
        res = run_cli("--input", str(data), "--engine", engine, "--out", str(tmp_path / engine))
        err = res.stderr
        assert res.exit_code == InputSchemaError.exit_code == 3, (engine, err)
        assert err.startswith("crossmargin: error: input table 'balances': cannot read "), err
        assert err.count("\n") == 1
        assert not (tmp_path / engine).exists()
