"""Run one command and measure it: the one way the benchmark scripts time a process.

`run_measured(cmd)` runs `cmd` under `/usr/bin/time -v` and returns its wall time (launch to exit),
CPU time (user + system) and peak RSS as `/usr/bin/time` reports them, its output, and the peak
memory of its whole process tree sampled while it runs: the sum of RSS (`sample="rss"`), or of PSS
(`sample="pss"`: proportional set size, so pages shared between processes, such as Ray's object
store, count once). Optionally it stops the run (the whole tree) past a timeout or above a memory
guard, and says why.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Measured:
    wall_s: float
    cpu_s: float | None  # user + system, of the process and the children it waited for
    peak_rss_bytes: int | None  # the process's own peak RSS (/usr/bin/time)
    tree_peak_bytes: int  # peak over the samples of the tree's RSS or PSS sum
    returncode: int
    stdout: str
    stderr: str
    time_report: str  # /usr/bin/time -v's report
    loadavg_before: float
    stopped: str | None = None  # why the run was stopped (timeout, memory guard), if it was

    def last_line(self) -> str:
        return self.stdout.strip().splitlines()[-1] if self.stdout.strip() else ""


def _pss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else 0


def tree_memory(pid: int, sample: str = "rss") -> int:
    """Sum of RSS (or PSS) over the process `pid` and all its descendants (0 once it is gone)."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += _pss(p.pid) if sample == "pss" else p.memory_info().rss
    return total


def _kill_tree(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        for p in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                p.kill()


def run_measured(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    sample: str = "rss",
    interval: float = 0.1,
    timeout: float | None = None,
    mem_guard_bytes: int | None = None,
) -> Measured:
    """Run `cmd` to its end (or until stopped) and measure it (see the module docstring)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as tf:
        time_file = tf.name
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["/usr/bin/time", "-v", "-o", time_file, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )
    peak, stopped = [0], []

    def watch() -> None:
        while proc.poll() is None:
            now = tree_memory(proc.pid, sample)
            peak[0] = max(peak[0], now)
            if timeout is not None and time.perf_counter() - t0 > timeout:
                stopped.append(f"timeout after {timeout:.0f} s")
            elif mem_guard_bytes is not None and now > mem_guard_bytes:
                stopped.append(f"killed above {mem_guard_bytes / 1024**3:g} GB")
            if stopped:
                _kill_tree(proc.pid)
                return
            time.sleep(interval)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    watcher.join()
    report = Path(time_file).read_text()
    os.unlink(time_file)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", report))
    return Measured(
        wall_s=wall,
        cpu_s=cpu or None,
        peak_rss_bytes=int(m.group(1)) * 1024 if m else None,
        tree_peak_bytes=peak[0],
        returncode=proc.returncode,
        stdout=out,
        stderr=err,
        time_report=report,
        loadavg_before=load,
        stopped=stopped[0] if stopped else None,
    )
