"""A report's frame as terminal text (`crossmargin sql NAME`, format table) and the list of reports.

A table wider than the terminal is split over several tables printed one under the other. Every part
repeats the report's label columns (its grain: the `-- labels:` tag of its SQL file, else its leading
non-numeric columns), so each row of each part says which row it is; every header shows in full and a
cell too wide for its table folds onto several lines. When the labels and the widest other column
cannot stand side by side in the width, the parts keep as many leading labels as fit and say so under
the first table.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import sys
import textwrap
from collections.abc import Callable

import polars as pl

from crossmargin.analytics.sql import SCOPES, list_reports, report_info


def terminal_width() -> int | None:
    """Columns to print in: $COLUMNS or the terminal's width; None (no limit) when piped without COLUMNS."""
    if os.environ.get("COLUMNS", "").strip().isdigit() or sys.stdout.isatty():
        return max(40, shutil.get_terminal_size().columns)
    return None


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.2f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _table_width(widths: list[float]) -> float:
    return sum(w + 3 for w in widths) + 1  # one space either side of a cell, one rule per column, one edge


def label_columns(df: pl.DataFrame, labels: tuple[str, ...] = ()) -> list[str]:
    """The label columns of a report's frame: the declared ones present, else the leading non-numeric."""
    declared = [c for c in labels if c in df.columns]
    if declared:
        return declared
    leading = []
    for name, dtype in df.schema.items():
        if dtype.is_numeric():
            break
        leading.append(name)
    return leading or df.columns[:1]


def split_columns(
    widths: list[float],
    keys: list[int],
    budget: float,
    total: Callable[[list[float]], float],
    narrowest: list[float] | None = None,
) -> tuple[list[list[int]], list[int]]:
    """Column indices per part of a table no wider than `budget`, and the label columns kept.

    `widths`: each column's width; `narrowest`: the least width it can be printed in (a text cell
    folds down to its header), default `widths`; `total(widths)`: the width of a table of such
    columns. Every part holds the label columns `keys`, then as many other columns as fit. When the
    labels and the widest other column cannot stand side by side, the leading labels that can are kept
    (at least one) and the others are printed once, first, like any other column.
    """
    narrowest = narrowest or widths
    others = [i for i in range(len(widths)) if i not in keys]
    widest = max((narrowest[i] for i in others), default=0)
    kept = list(keys)
    while len(kept) > 1 and total([*(widths[k] for k in kept), widest]) > budget:
        kept.pop()
    others = [k for k in keys if k not in kept] + others
    groups: list[list[int]] = []
    current: list[int] = []
    for i in others:
        if current and total([widths[k] for k in [*kept, *current, i]]) > budget:
            groups.append(current)
            current = []
        current.append(i)
    if current or not groups:
        groups.append(current)
    return [[*kept, *g] for g in groups], kept


def render_table(df: pl.DataFrame, title: str, width: int | None = None, labels: tuple[str, ...] = ()) -> str:
    """A report's frame as text tables no wider than `width` (None: one table, as wide as it needs).

    `labels`: the report's label columns (`report_info(name).labels`), repeated in every part.
    """
    from rich.console import Console
    from rich.table import Table

    cells = [[_fmt(v) for v in row] for row in df.iter_rows()]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(df.columns)]
    keys = [df.columns.index(c) for c in label_columns(df, labels)]
    note = ""
    if width is None:
        groups = [list(range(df.width))]
    else:
        narrowest = [w if df.dtypes[i].is_numeric() else len(df.columns[i]) for i, w in enumerate(widths)]
        groups, kept = split_columns(widths, keys, width, _table_width, narrowest)
        if len(groups) > 1 and len(kept) < len(keys):
            dropped = ", ".join(df.columns[k] for k in keys[len(kept) :])
            note = f"(too narrow to repeat {dropped} in every part: widen the terminal or use --format csv)"
    console_width = width or max(_table_width(widths), len(title), 20)
    buf = io.StringIO()
    console = Console(file=buf, width=console_width, color_system=None, highlight=False, emoji=False)
    for g, cols in enumerate(groups):
        part = title if len(groups) == 1 else f"{title} (columns {g + 1} of {len(groups)})"
        table = Table(title=part if g == 0 else f"({g + 1} of {len(groups)})")
        if g > 0:
            console.print()
        for i in cols:
            name = df.columns[i]
            table.add_column(
                name,
                justify="right" if df.dtypes[i].is_numeric() else "left",
                overflow="fold",
                min_width=len(name),
                no_wrap=False,
            )
        for row in cells:
            table.add_row(*(row[i] for i in cols))
        console.print(table)
        if g == 0 and note:
            console.print(note)
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


_HEADINGS = {
    "run": "Reports over one run (crossmargin sql NAME --out DIR):",
    "root": "Reports over every night of a root (crossmargin sql NAME --root ROOT [--from DAY --to DAY]):",
}


def list_text(width: int | None = None) -> str:
    """The shipped reports by scope, one per line with its grain (wrapped to `width`)."""
    lines: list[str] = []
    for scope in SCOPES:
        lines += [
            *([""] if lines else []),
            *(textwrap.wrap(_HEADINGS[scope], width) if width else [_HEADINGS[scope]]),
        ]
        for report in list_reports(scope):
            line = f"  {report:28s} {report_info(report).grain}"
            lines += textwrap.wrap(line, width, subsequent_indent=" " * 31) if width else [line]
    return "\n".join(lines)
