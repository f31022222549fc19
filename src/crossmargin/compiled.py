"""The one place numba is set up: every compiled kernel of the package is declared with `njit` here.

- `cache=True`: a kernel is compiled once per machine (about a second per kernel) and loaded from
  the on-disk cache afterwards. The cache lives in `$NUMBA_CACHE_DIR` when it is set, else in
  `$XDG_CACHE_HOME/crossmargin/numba` (`~/.cache/crossmargin/numba`): a place the user running the
  job can write, whether the package is installed editable, in a venv or read-only system-wide.
- `error_model="numpy"`: x / 0 gives ±inf or NaN as in polars and numpy, never an exception.
- no `fastmath`: every + and × is the IEEE operation written, in the order written (no fused
  multiply-add, no reassociation), so a kernel gives the same bits as the polars expression or the
  numpy reduction it stands for.
- `parallel=True` kernels split work by account ranges only; an account's rows are always reduced by
  one thread in input order, so the bits never depend on the thread count.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba


def cache_dir() -> Path:
    """Where compiled kernels are cached unless NUMBA_CACHE_DIR says otherwise."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crossmargin" / "numba"


# numba reads its cache directory when a kernel is declared, so this holds whenever numba was imported
if not os.environ.get("NUMBA_CACHE_DIR"):
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        numba.config.CACHE_DIR = str(cache_dir())
    except OSError:  # pragma: no cover - no writable home: numba's own fallback (next to the source)
        pass

prange = numba.prange


def njit(parallel: bool = False, inline: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The decorator of every kernel (see the module docstring for the options and why). `inline`: a
    per-row function inlined into the kernel that calls it (passing its arrays on every call costs
    more than its arithmetic)."""
    return numba.njit(
        cache=True, nogil=True, error_model="numpy", parallel=parallel, inline="always" if inline else "never"
    )
