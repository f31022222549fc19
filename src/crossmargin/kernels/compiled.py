"""The one place numba is set up: how the package's compiled code is declared, cached and run.

Two kinds of compiled code:
- `jitable`: a rule written as a plain Python function (a per-row value of rules/quantities.py, a level
  of rules/levels.py, a tier lookup). It runs as Python when called from Python (polars expressions,
  tests) and is compiled into every kernel that calls it. It never touches the disk.
- `kernel`: an entry point called from Python over many accounts (kernels/valuation.py,
  kernels/search.py, kernels/runs.py). It is compiled on its first call, not on import, and cached on
  disk: a run compiles only the kernels it calls, once per machine.

The options of every kernel:
- no `fastmath`: every + and × is the IEEE operation written, in the order written (no fused
  multiply-add, no reassociation), so a kernel gives the bits of the Python or polars expression of
  the same rule;
- `error_model="numpy"`: x / 0 gives ±inf or NaN as in polars and numpy, never an exception;
- `nogil`: kernels run on several threads at once (`spread`), each over its own contiguous block of
  accounts: an account's rows are always reduced by one thread, in input order, so the bits never
  depend on the thread count.

The cache. numba checks a cached kernel against the file that defines it only, not against the files
of the functions it inlines (a rule edited in rules/tiers.py would leave a stale kernel). So the cache
lives in a directory keyed by what the kernels are compiled from: the package version, a digest of
every source file of `kernels/` and `rules/` (`COMPILED_FROM`), and numba's version (`cache_key`),
under `$NUMBA_CACHE_DIR` when it is set, else `$XDG_CACHE_HOME/crossmargin/numba`
(`~/.cache/crossmargin/numba`). The directory is made on the first compile, never on import; a run
that finds it missing says once on stderr that it is compiling.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numba
from numba.extending import register_jitable

PACKAGE = Path(__file__).resolve().parents[1]  # src/crossmargin
_lock = threading.Lock()
_announced: list[Path] = []  # where the one notice of a run that compiles pointed


def jitable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Declare a rule that kernels compile in (see the module docstring)."""
    return register_jitable(fn)


def cache_base() -> Path:
    """Where the kernel caches of every build live: $NUMBA_CACHE_DIR, else ~/.cache/crossmargin/numba."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crossmargin" / "numba"


# what the kernels are compiled from: the kernels and the rules they call (nothing else is compiled)
COMPILED_FROM = ("kernels", "rules")


@cache
def cache_key() -> str:
    """The package version, a digest of the source the kernels are compiled from, and numba's version."""
    from crossmargin import __version__

    digest = hashlib.sha256()
    for path in sorted(p for d in COMPILED_FROM for p in (PACKAGE / d).rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{__version__}-{digest.hexdigest()[:16]}-numba{numba.__version__}"


def cache_dir() -> Path:
    """This build's kernel cache."""
    return cache_base() / cache_key()


def _announce_compiling(where: Path) -> None:
    if not _announced and not where.exists():
        _announced.append(where)
        print(
            f"crossmargin: compiling the job's kernels for this machine (once, about 10 s), cached in {where}",
            file=sys.stderr,
            flush=True,
        )


class Kernel:
    """A compiled entry point, declared with `@kernel`: compiled (or loaded from the cache) on its first
    call. `py_func` is the plain function (what the tests read; numba compiles its source)."""

    def __init__(self, py_func: Callable[..., Any]) -> None:
        self.py_func = py_func
        self.__name__ = py_func.__name__
        self.__doc__ = py_func.__doc__
        self._dispatcher: Any = None

    def dispatcher(self) -> Any:
        if self._dispatcher is None:
            with _lock:
                if self._dispatcher is None:
                    where = cache_dir()
                    _announce_compiling(where)
                    where.mkdir(parents=True, exist_ok=True)
                    numba.config.CACHE_DIR = str(where)  # read when the dispatcher is made
                    self._dispatcher = numba.njit(cache=True, nogil=True, error_model="numpy")(self.py_func)
        return self._dispatcher

    def __call__(self, *args: Any) -> Any:
        return self.dispatcher()(*args)


def kernel(py_func: Callable[..., Any]) -> Kernel:
    """Declare a compiled entry point (see the module docstring)."""
    return Kernel(py_func)


def threads() -> int:
    """How many threads the kernels run on: numba's setting ($NUMBA_NUM_THREADS, else the cores)."""
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


def spread(call: Callable[[int, int], None], n: int, blocks: int | None = None) -> None:
    """`call(lo, hi)` over contiguous blocks covering [0, n), the blocks run on `threads()` threads (the
    kernels release the GIL). A block is one thread's: what it reduces never depends on the others."""
    blocks = min(n, blocks or threads())
    if blocks <= 1:
        if n:
            call(0, n)
        return
    bounds: Sequence[tuple[int, int]] = [(b * n // blocks, (b + 1) * n // blocks) for b in range(blocks)]
    with ThreadPoolExecutor(blocks) as pool:
        list(pool.map(lambda lh: call(*lh), bounds))
