"""The compiled kernels' cache (kernels/compiled.py): keyed by what they are compiled from, made on the
first compile and never on import, announced once.

Each case runs a fresh Python process with its own cache directory (`NUMBA_CACHE_DIR`): an import,
or the valuation of one tiered amount through a kernel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import REPO

SRC = REPO / "src"

VALUE_ONE_AMOUNT = """
import numpy as np, polars as pl
from crossmargin.engine.rows import Rows, balance_sums_at
from crossmargin.kernels.valuation import Market
coll = (1, np.array([0.0]), np.array([0.5]), np.array([0.0]))
liab = (1, np.array([0.0]), np.array([0.1]), np.array([0.0]), np.array([0.2]), np.array([0.0]))
m = Market(np.array([[2.0]]), np.array([True]), np.array([0.5]), coll, liab, -1)
rows = Rows.of(pl.DataFrame({"account_id": [1], "asset_idx": pl.Series([0], dtype=pl.UInt32),
                             "holding": [10.0], "debt": [0.0]}))
print(balance_sums_at(rows, m, m.prices)[0][2, 0, 0])
"""


def python(code: str, cache: Path, src: Path = SRC) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(src)}
    command = [sys.executable, "-c", code]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_nothing_is_created_on_import(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    done = python("import crossmargin.engine, crossmargin.job, crossmargin.kernels.search", cache)
    assert done.returncode == 0, done.stderr
    assert not cache.exists()
    assert done.stderr == ""


def test_the_first_compile_says_so_once_and_the_cache_is_keyed_by_the_build(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = python(VALUE_ONE_AMOUNT, cache)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "10.0"  # 20 of value at a collateral ratio of 0.5
    assert first.stderr.count("compiling") == 1
    (key,) = [p.name for p in cache.iterdir()]
    from crossmargin import __version__
    from crossmargin.kernels.compiled import cache_key

    assert key == cache_key() and key.startswith(f"{__version__}-") and "-numba" in key
    again = python(VALUE_ONE_AMOUNT, cache)
    assert again.stdout == first.stdout and again.stderr == ""  # loaded from the cache: nothing said


def test_an_edit_to_an_inlined_rule_is_not_served_from_a_stale_cache(tmp_path: Path) -> None:
    """A copy of the package whose tiered sum is edited (a rule the kernels compile in, from another file
    than the kernel's): the same kernel, the same cache directory, a new result."""
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    cache = tmp_path / "cache"
    before = python(VALUE_ONE_AMOUNT, cache, copy)
    assert before.stdout.strip() == "10.0", before.stderr
    tiers = copy / "crossmargin" / "rules" / "tiers.py"
    text = tiers.read_text()
    rule = "return below[at] + rate[at] * (x - lower[at])"
    edited = text.replace(rule, "return 2.0 * (below[at] + rate[at] * (x - lower[at]))")
    assert edited != text
    tiers.write_text(edited)
    after = python(VALUE_ONE_AMOUNT, cache, copy)
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == "20.0"
    assert len(list(cache.iterdir())) == 2  # one cache per build
