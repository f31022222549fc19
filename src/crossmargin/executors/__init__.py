"""Where a run's buckets are scored: `local` (one after another, in this process) or `ray` (one Ray
task per bucket, on this machine or on a cluster).

An executor is a callable `executor(tables=, policy=, bounds=, staging=, progress=, input_dir=)` that
scores every bucket and returns a `job.Scored`: the buckets' results in bucket order, and the output
files' checksums when it wrote them itself (local: one stream per output file) or none when its buckets
wrote part files (ray), which `crossmargin.job.run_job` then merges before it publishes. Ray is imported only when the
ray engine runs (it is the optional extra `ray`, installed from a clone: see RAY_MISSING).
"""

from __future__ import annotations

import functools
import importlib.util

from crossmargin.errors import UsageError
from crossmargin.job import Executor, local_executor

ENGINES = ("local", "ray")
# crossmargin is installed from a clone, not from a package registry
RAY_MISSING = (
    "--engine ray needs Ray: from the top of a crossmargin clone, pip install -c constraints.txt -e '.[ray]'"
)

__all__ = ["ENGINES", "check_engine", "executor_for", "local_executor"]


def check_engine(engine: str, ray_address: str | None) -> None:
    """Refuse an unknown engine, a Ray address without the ray engine, or a missing Ray (exit 2)."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    if ray_address is not None and engine != "ray":
        raise UsageError("--ray-address needs --engine ray")
    if ray_address is not None and not ray_address.strip():
        raise UsageError("--ray-address is empty; give the cluster's address, e.g. ray://head:10001")
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError(RAY_MISSING)


def executor_for(engine: str, ray_address: str | None = None) -> Executor:
    """The executor of a checked engine name."""
    check_engine(engine, ray_address)
    if engine == "ray":
        from crossmargin.executors.ray_tasks import ray_executor

        return functools.partial(ray_executor, address=ray_address)
    return local_executor
