"""The ray engine: one plain Ray task per account-id bucket.

Each task runs `score_bucket_from_files` (or the `task` given): it reads the input files itself, scores
its bucket and writes the bucket's part files into the run's staging directory, returning only a small
`BucketResult`. The driver passes paths and the frozen `Policy`, never data frames, so inputs, staging
and outputs must be on storage that every worker reads and writes at the same path (docs/scale-out.md).

Without an address a private Ray instance is started on this machine (one CPU per core) and shut
down at the end; with an address the run connects to that cluster and disconnects at the end. A
Ray already initialised in this process (a notebook, a test) is used as it is and left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from crossmargin.errors import CrossmarginError, EngineError, UsageError
from crossmargin.executors import RAY_MISSING
from crossmargin.io.inputs import load_inputs, unreadable_table
from crossmargin.job import Bounds, BucketResult, Scored, score_bucket_from_files
from crossmargin.policy import Policy
from crossmargin.progress import Progress

MAX_RETRIES = 2  # a failing bucket task runs at most 1 + MAX_RETRIES times before the run stops
OBJECT_STORE_BYTES = 512 * 1024**2  # tasks return small results; the local store needs little memory
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # a user's own settings win


def import_ray() -> ModuleType:
    """Ray, with usage statistics off and no auth token written under ~/.ray, or a one-line error."""
    for name, value in RAY_ENV.items():
        os.environ.setdefault(name, value)
    try:
        import ray
    except ImportError as exc:
        raise UsageError(f"{RAY_MISSING} ({exc})") from None
    return ray


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


CONNECT_TIMEOUT_S = 15.0  # a cluster address that accepts no connection in this time ends the run


def unreachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why `address` (host:port, or ray://host:port) accepts no TCP connection within `timeout`, or
    None when it does or is not of that form ("auto"). Ray itself retries an unreachable cluster
    without end, so a nightly run would hang with nobody watching."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _connect(ray: ModuleType, address: str | None, num_cpus: int | None, runtime_env: dict | None) -> bool:
    """Start or connect to Ray unless this process already has; whether we did (and so must shut down)."""
    if ray.is_initialized():
        return False
    why = unreachable(address) if address is not None else None
    if why is not None:
        raise EngineError(f"cannot reach Ray at {address} within {CONNECT_TIMEOUT_S:.0f} s: {why}")
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if runtime_env:
        quiet["runtime_env"] = runtime_env
    try:
        if address is None:
            ray.init(
                address="local",  # always a new private instance, never a cluster found by chance
                num_cpus=num_cpus or machine_cpus(),
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                **quiet,
            )
        else:
            ray.init(address=address, **quiet)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        where = f"at {address}" if address else "on this machine"
        raise EngineError(f"cannot start Ray {where}: {_one_line(exc)}") from None
    return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _cause(ray: ModuleType, exc: BaseException) -> BaseException:
    """The task's own exception inside Ray's wrapper (when Ray could carry it back)."""
    if isinstance(exc, ray.exceptions.RayTaskError) and getattr(exc, "cause", None) is not None:
        return exc.cause
    return exc


def _describe(bounds: Bounds) -> str:
    lo, hi = bounds
    if lo is None and hi is None:
        return "all account ids"
    if lo is None:
        return f"account ids < {hi}"
    if hi is None:
        return f"account ids >= {lo}"
    return f"account ids {lo} to {hi - 1}"


def _run(task: Callable[..., BucketResult], input_dir: Path, *args: Any) -> BucketResult | CrossmarginError:
    """The body of every bucket task (a plain module function, so any picklable `task` can be passed).

    A bad input (a file whose data does not decode, found when the scan fails) is returned, not
    raised: it is the same on every attempt, so it is not retried, and Ray prints no traceback for it;
    the driver raises it (exit 3, naming the table). Any other failure is raised and retried."""
    try:
        return task(input_dir, *args)
    except CrossmarginError as exc:
        return exc
    except (pl.exceptions.PolarsError, OSError):
        try:
            bad = unreadable_table([f for _, f in load_inputs(Path(input_dir)).values()])
        except CrossmarginError as exc:
            bad = exc
        if bad is None:
            raise
        return bad


def ray_executor(
    *,
    policy: Policy,
    bounds: list[Bounds],
    staging: Path,
    progress: Progress,
    input_dir: Path,
    address: str | None = None,
    task: Callable[..., BucketResult] = score_bucket_from_files,
    max_retries: int = MAX_RETRIES,
    num_cpus: int | None = None,
    runtime_env: dict | None = None,
    scenarios: Any = None,
    **_: Any,
) -> Scored:
    """Score every bucket as a Ray task; their results in bucket order.

    A task that raises is run again, up to `max_retries` times; a bucket that still fails cancels the
    others and raises EngineError naming the bucket and its error (run_job then removes the staging
    directory: nothing is published). `task(input_dir, policy, bounds, bucket, staging)` is the work of
    one bucket; it is pickled by reference, so its module must be importable on the workers. With
    `scenarios` (a ScenarioSet, `run --scenarios`) it is passed to the task as a sixth argument.
    """
    ray = import_ray()
    started = _connect(ray, address, num_cpus, runtime_env)
    try:
        remote = ray.remote(max_retries=max_retries, retry_exceptions=True)(_run)
        policy_ref = ray.put(policy)
        input_dir, staging = Path(input_dir).absolute(), Path(staging).absolute()
        extra = () if scenarios is None else (scenarios,)
        refs = [
            remote.remote(task, input_dir, policy_ref, b, i, staging, *extra) for i, b in enumerate(bounds)
        ]
        bucket_of = {ref: i for i, ref in enumerate(refs)}
        results: dict[int, BucketResult] = {}
        pending = list(refs)
        progress.step(f"scoring accounts (0/{len(refs)} buckets on Ray)")
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    i = bucket_of[ref]
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise EngineError(
                            f"bucket {i + 1} of {len(refs)} ({_describe(bounds[i])}) failed after "
                            f"{max_retries + 1} attempts: {_one_line(_cause(ray, exc))}"
                        ) from None
                    if isinstance(result, CrossmarginError):  # a bad input, the same on every attempt
                        raise result
                    results[i] = result
                    progress.advance()
                    progress.step(f"scoring accounts ({len(results)}/{len(refs)} buckets on Ray)")
        except BaseException:
            _stop(ray, pending)
            raise
        return Scored([results[i] for i in range(len(refs))])  # part files: the driver merges them
    finally:
        if started:
            ray.shutdown()


def _stop(ray: ModuleType, pending: list[Any]) -> None:
    """Cancel the buckets still running and wait for them, so none writes after staging is removed."""
    for ref in pending:
        with contextlib.suppress(Exception):  # already finished or gone: nothing left to stop
            ray.cancel(ref, force=True)
    if pending:
        ray.wait(pending, num_returns=len(pending), timeout=30)
