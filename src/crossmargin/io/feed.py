"""A broken feed is not a book (docs/rules.md §6.6): the input tables' row counts, checked before any work.

An upstream export that failed often leaves a file holding its header and no rows, or a fraction of
its rows. Scored as if it were the book, it would block borrowing or migrate thousands of accounts,
and other systems would execute those actions. So the run stops (exit 3, one line naming the table,
nothing written) when
- a table the book cannot be without (`NOT_EMPTY`) has no rows;
- with a baseline (a previous run's output directory, whose manifest holds its input row counts), a
  table has fewer rows than the policy's `min_row_ratio` of that table times the baseline's count.

`open_orders` and `mode_switches` may legitimately be empty, and are exempt from the ratio unless a
policy names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossmargin.errors import CrossmarginError, UsageError
from crossmargin.io.inputs import InputFile
from crossmargin.io.partitions import run_manifest
from crossmargin.policy import Policy

# a book without accounts, balances, prices or tier tables is a failed export, never a quiet night
NOT_EMPTY = ("accounts", "balances", "prices", "collateral_tiers", "liability_brackets")


class BrokenFeed(CrossmarginError):
    """An input table is empty or has shrunk below its share of the baseline: nothing is written."""

    exit_code = 3


@dataclass(frozen=True)
class Baseline:
    """A previous run's input row counts, read from its manifest.json."""

    directory: Path  # absolute
    as_of: str | None
    rows: dict[str, int]


def read_baseline(directory: Path) -> Baseline:
    """The baseline a `--baseline DIR` names; UsageError (exit 2) unless DIR holds a crossmargin run."""
    manifest = run_manifest(directory)
    if manifest is None:
        raise UsageError(
            f"--baseline {directory} holds no crossmargin run (no readable crossmargin manifest.json); "
            "give a previous run's output directory"
        )
    inputs = manifest.get("inputs")
    if not isinstance(inputs, dict):
        raise UsageError(f"--baseline {directory}: manifest.json has no input row counts")
    rows = {t: e.get("rows") for t, e in inputs.items() if isinstance(e, dict)}
    if not rows or not all(isinstance(n, int) and n >= 0 for n in rows.values()):
        raise UsageError(f"--baseline {directory}: manifest.json has no input row counts")
    return Baseline(Path(directory).absolute(), manifest.get("as_of"), rows)


def row_ratio(rows: int, baseline_rows: int | None) -> float | None:
    """rows / the baseline's rows; None without a baseline count or when it is 0 (nothing to shrink)."""
    return rows / baseline_rows if baseline_rows else None


def shrunk(rows: int, baseline_rows: int | None, min_ratio: float | None) -> bool:
    """Fewer rows than `min_ratio` × the baseline's (strictly fewer: exactly the share passes)."""
    return min_ratio is not None and baseline_rows is not None and rows < min_ratio * baseline_rows


def check_feed(
    files: dict[str, InputFile], policy: Policy, baseline: Baseline | None
) -> dict[str, Any] | None:
    """Raise BrokenFeed for the first empty or shrunken table (in table order); else the manifest's
    record of the baseline (None without one): its directory, as_of, and per table the rows, the
    baseline's rows, their ratio and the policy's least ratio."""
    for table, f in files.items():
        if table in NOT_EMPTY and f.rows == 0:
            raise BrokenFeed(
                f"input table '{table}' has no rows ({f.path} holds its header only): a failed export "
                "is not a book; nothing written"
            )
    if baseline is None:
        return None
    tables = {}
    for table, f in files.items():
        before, least = baseline.rows.get(table), policy.min_row_ratio.get(table)
        if shrunk(f.rows, before, least):
            raise BrokenFeed(
                f"input table '{table}' has {f.rows:,} rows, {f.rows / before:.1%} of the baseline's "
                f"{before:,} ({baseline.directory}), below min_row_ratio {least}: a partial export is not "
                "a book; nothing written"
            )
        ratio = row_ratio(f.rows, before)
        tables[table] = {"rows": f.rows, "baseline_rows": before, "ratio": ratio, "min_row_ratio": least}
    return {"dir": str(baseline.directory), "as_of": baseline.as_of, "tables": tables}
