"""Where the job's time goes: one `crossmargin run`, in this process, with its stages timed.

    .venv/bin/python benchmarks/profile_engine.py --shape exchange --accounts 3000000
    .venv/bin/python benchmarks/profile_engine.py --input DIR [--max-issue-rate 0.02]
    .venv/bin/python benchmarks/profile_engine.py --shape exchange --accounts 3000000 --section profile-after
    PYTHONPATH=OTHER_CHECKOUT/src .venv/bin/python benchmarks/profile_engine.py ... --phases-of crossmargin.engine

Runs the command line in-process (`crossmargin.cli.main(["run", ...])`, the job as the operator runs
it) and times, wall and CPU seconds of the process, without changing them:

* stages: every `pl.collect_all` / `LazyFrame.collect` / `DataFrame.write_parquet` call (polars'
  own API), each labelled by the first line of crossmargin code that makes it;
* phases: functions of the engine given as MODULE:NAME (`--phase`, repeatable; default PHASES
  below), or every public function a module defines (`--phases-of MODULE`), found at run time. A
  phase named but missing stops the script before the run and lists what the module has, so a moved
  or renamed phase is a one-word change here. A phase's time includes the collects it makes.

The book: `--input DIR`, or `--shape S --accounts N` (books.py: generated into benchmarks/work/ when
absent, reused). `--section NAME` also writes the tables into that section of benchmarks/README.md.
Numbers are meaningful only on a quiet machine; CPU seconds are the steadier ones when other jobs run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import inspect
import io
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

import polars as pl
from books import AS_OF, MAX_ISSUE_RATE, SHAPES, ensure_book, warm_cache
from report import git_label, write_section

BENCH = Path(__file__).resolve().parent
# the engine's phases today (crossmargin/engine/); a name that moves is changed here or with --phase
PHASES = [
    "crossmargin.engine:reference",
    "crossmargin.engine.rows:row_pass",
    "crossmargin.engine.accounts:account_pass",
    "crossmargin.engine.paths:follow",
    "crossmargin.engine.issues:issues_phase",
    "crossmargin.engine.issues:account_risk",
    "crossmargin.engine:score",
]
STAGES: list[tuple[str, float, float]] = []
PHASE_TIMES: list[tuple[str, float, float]] = []
DEPTH = threading.local()  # a collect inside a timed collect is counted once, by the outer one


# ------------------------------------------------------------------------- timing wrappers
def _caller() -> str:
    """file:line of the first crossmargin frame making the call."""
    f = sys._getframe(2)
    while f and not str(f.f_globals.get("__name__", "")).startswith("crossmargin"):
        f = f.f_back
    return f"{Path(f.f_code.co_filename).name}:{f.f_lineno}" if f else "?"


def stage(label: Callable[[], str], fn: Callable) -> Callable:
    @functools.wraps(fn)
    def timed(*a, **k):
        if getattr(DEPTH, "n", 0):
            return fn(*a, **k)
        name, DEPTH.n = label(), 1
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            DEPTH.n = 0
            STAGES.append((name, time.perf_counter() - w, time.process_time() - c))

    return timed


def phase(name: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def timed(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            PHASE_TIMES.append((name, time.perf_counter() - w, time.process_time() - c))

    return timed


def time_polars() -> None:
    pl.collect_all = stage(lambda: f"collect_all at {_caller()}", pl.collect_all)
    pl.LazyFrame.collect = stage(lambda: f"collect at {_caller()}", pl.LazyFrame.collect)
    pl.DataFrame.write_parquet = stage(lambda: f"write_parquet at {_caller()}", pl.DataFrame.write_parquet)


# ------------------------------------------------------------------------- finding the phases
def public_functions(module: str) -> list[str]:
    """MODULE:NAME of every public function `module` defines (not the ones it imports)."""
    mod = importlib.import_module(module)
    return [
        f"{module}:{name}"
        for name, obj in vars(mod).items()
        if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == module
    ]


def resolve_phase(spec: str) -> tuple[object, str, Callable]:
    """(module, name, function) of MODULE:NAME; SystemExit naming the module's functions otherwise."""
    module, _, name = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise SystemExit(
            f"phase {spec}: cannot import {module} ({exc}); give the phases with --phase"
        ) from None
    fn = getattr(mod, name, None)
    if not callable(fn):
        known = ", ".join(s.split(":")[1] for s in public_functions(module)) or "none"
        raise SystemExit(f"phase {spec}: {module} has no function {name!r} (its public functions: {known})")
    return mod, name, fn


def wrap_phases(specs: list[str]) -> None:
    """Replace each phase by its timed wrapper in its module and wherever a loaded crossmargin module
    imported it by name (`from crossmargin.engine import score`)."""
    resolved = [resolve_phase(s) for s in specs]  # every name checked before anything is changed
    for mod, name, fn in resolved:
        timed = phase(f"{mod.__name__.removeprefix('crossmargin.')}.{name}", fn)
        for other in [m for k, m in list(sys.modules.items()) if k.startswith("crossmargin") and m]:
            for attr, value in list(vars(other).items()):
                if value is fn:
                    setattr(other, attr, timed)


# ------------------------------------------------------------------------- the report
def table(title: str, rows: list[tuple[str, float, float]], total: tuple[float, float]) -> str:
    agg: dict[str, list[float]] = {}
    for name, w, c in rows:
        x = agg.setdefault(name, [0, 0.0, 0.0])
        x[0], x[1], x[2] = x[0] + 1, x[1] + w, x[2] + c
    lines = [title, f"  {'stage':<60} {'calls':>5} {'wall s':>8} {'cpu s':>8}"]
    lines += [f"  {name:<60} {n:>5} {w:>8.2f} {c:>8.2f}" for name, (n, w, c) in agg.items()]
    lines.append(f"  {'whole run (cli.main)':<60} {'':>5} {total[0]:>8.2f} {total[1]:>8.2f}")
    return "\n".join(lines)


def run_job(book: Path, max_issue_rate: float) -> tuple[str, tuple[float, float]]:
    """`crossmargin run` in-process into a temporary directory: its output and (wall, CPU) seconds."""
    from crossmargin.cli import main as cli

    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        argv = ["run", "--as-of", AS_OF, "--input", str(book), "--out", f"{tmp}/out"]
        argv += ["--max-issue-rate", str(max_issue_rate)]
        buf = io.StringIO()
        w, c = time.perf_counter(), time.process_time()
        with redirect_stdout(buf):
            code = cli(argv)
        took = (time.perf_counter() - w, time.process_time() - c)
    if code != 0:
        raise SystemExit(f"crossmargin run failed (exit {code}): {buf.getvalue().strip()}")
    return buf.getvalue().strip(), took


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, help="a book's directory (else --shape and --accounts)")
    ap.add_argument("--shape", choices=SHAPES, default="sample")
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--max-issue-rate", type=float, help="default: the shape's (0.02 for exchange)")
    ap.add_argument("--phase", action="append", help="MODULE:NAME of a phase to time (repeatable)")
    ap.add_argument("--phases-of", help="time every public function this module defines")
    ap.add_argument("--section", help="also write the tables into this section of benchmarks/README.md")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    book = args.input or ensure_book(args.work.resolve(), args.shape, args.accounts)[0]
    rate = args.max_issue_rate if args.max_issue_rate is not None else MAX_ISSUE_RATE[args.shape]
    specs = (args.phase or []) + (public_functions(args.phases_of) if args.phases_of else [])
    wrap_phases(specs or PHASES)
    time_polars()
    warm_cache(book)
    load = os.getloadavg()[0]
    summary, total = run_job(book, rate)
    import crossmargin  # the engine profiled: this checkout's, or another's put first on PYTHONPATH

    engine = Path(crossmargin.__file__).resolve().parents[2]
    head = (
        f"{book.name} ({args.shape if not args.input else 'given'} book), engine {git_label(engine)}"
        f"{'' if engine == BENCH.parent else f' ({engine})'}, "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, load average before {load:.1f}\n{summary}"
    )
    text = "\n\n".join(
        [
            head,
            table("stages (polars calls, by the crossmargin line making them)", STAGES, total),
            table("phases (each includes the stages it makes)", PHASE_TIMES, total),
        ]
    )
    print(text)
    if args.section:
        write_section(args.section, f"```\n{text}\n```")


if __name__ == "__main__":
    main()
