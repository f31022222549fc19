"""DuckDB SQL reports over one run's outputs (`crossmargin sql NAME --out DIR`).

Each report is one file in the top-level `sql/` directory (shipped as `crossmargin.sql`), dbt style:
a header comment whose first sentence states the grain, CTEs, and `select * from final`.

A report reads only these views, created here in an in-memory DuckDB over the run's files:

- `account_risk`, `actions`, `data_issues`: the parquet files of the output directory, as written.
- `scenario_risk`: scenario_risk.parquet of a run with `--scenarios`, plus `scenario_position` (the
  scenario's place in its file); empty, with the same columns, for a run without scenarios.
- `run_info`: one row (as_of, policy_version, new_formula, policy_matches_run) of the run.
- `policy_thresholds`: (name, mode, classic_leverage, value, direction) -- the policy values the run
  used, read from the policy record of its manifest.json (so a report never holds a decision threshold
  literal). A manifest without a policy record (an older run) falls back on the policy resolved at the
  run's as_of from `crossmargin.policy`; policy_matches_run is then false when that policy text is not
  the one the run recorded (manifest policy_sha256), e.g. a --policy file that has since moved.
- `pro_conditions`: (position, condition) -- the Pro activation conditions of the formula in force, in
  the order of `schemas.PRO_CONDITIONS_NEW` / `_OLD` (the names used in `pro_ineligible_reasons`).

Reports never recompute a formula of the rules: levels, flags and amounts come from the engine's columns.
Errors (unknown report or format, a directory that is not a run's, a file DuckDB cannot read) are
`CrossmarginError`s: one line, exit 2.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from crossmargin.analytics.rundir import OUTPUT_FILES, RunDirError, one_line, require_run, write_dest
from crossmargin.errors import CrossmarginError
from crossmargin.io import schemas

FORMATS = ("table", "csv", "parquet")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ReportError(CrossmarginError):
    """Unknown report or output format, or a query DuckDB cannot run on the run's files."""

    exit_code = 2


# ------------------------------------------------------------------ report files
def _sql_dir():
    return resources.files("crossmargin.sql")


def list_reports() -> list[str]:
    """Names of the shipped reports (the `.sql` files of `crossmargin.sql`), sorted."""
    return sorted(p.name[: -len(".sql")] for p in _sql_dir().iterdir() if p.name.endswith(".sql"))


def report_sql(name: str) -> str:
    """The SQL text of one report."""
    if not _NAME.match(name) or name not in list_reports():
        raise ReportError(f"unknown report {name!r}; known: {', '.join(list_reports())}")
    return _sql_dir().joinpath(f"{name}.sql").read_text(encoding="utf-8")


def report_grain(name: str) -> str:
    """The first sentence of the report's header comment (its grain)."""
    lines = []
    for line in report_sql(name).splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    text = " ".join(x for x in lines if x)
    return text.split(". ")[0].rstrip(".") + "."


# ------------------------------------------------------------------ views over one output dir
def _utc(text: Any, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(str(text))  # 3.11+: reads a trailing Z
    except ValueError:
        raise RunDirError(f"manifest.json is corrupt: {where} {text!r} is not a timestamp") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _threshold_rows(p: dict[str, Any]) -> list[tuple[str, str, int | None, float, str]]:
    """policy_thresholds rows from a policy record (`Policy.as_record()`, as in manifest.json)."""
    rows: list[tuple[str, str, int | None, float, str]] = [
        ("pro_margin_call", "pro", None, float(p["pro_margin_call"]), "<="),
        ("pro_liquidation", "pro", None, float(p["pro_liquidation"]), "<="),
        ("new_min_pro_margin_level", "classic", None, float(p["new_min_pro_margin_level"]), ">"),
        ("new_min_net_equity_usdt", "classic", None, float(p["new_min_net_equity_usdt"]), ">"),
        (
            "old_min_classic_collateral_margin_level",
            "classic",
            None,
            float(p["old_min_classic_collateral_margin_level"]),
            ">",
        ),
    ]
    for lev, tier in sorted(p["classic"].items(), key=lambda kv: int(kv[0])):
        rows += [
            ("classic_initial_risk_ratio", "classic", int(lev), float(tier["initial_risk_ratio"]), "<="),
            ("classic_margin_call", "classic", int(lev), float(tier["margin_call"]), "<="),
            ("classic_liquidation", "classic", int(lev), float(tier["liquidation"]), "<="),
        ]
    return rows


def _run_policy(out_dir: Path, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """The policy record of the run and whether it is the run's own (see the module docstring)."""
    record = manifest.get("policy")
    if record is not None:
        if not isinstance(record, dict):
            raise RunDirError(f"{out_dir / 'manifest.json'} is corrupt: 'policy' is not an object")
        return record, True
    from crossmargin.policy import resolve

    as_of = (
        _utc(manifest["as_of"], "as_of") if manifest.get("as_of") else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    )
    policy_file = manifest.get("policy_file")
    policy_file = Path(policy_file) if policy_file and Path(policy_file).exists() else None
    policy = resolve(as_of, policy_file)
    run_sha = manifest.get("policy_sha256")
    return policy.as_record(), (None if not run_sha else run_sha == policy.source_sha256)


def _policy_frames(out_dir: Path, manifest: dict[str, Any]) -> dict[str, pl.DataFrame]:
    record, matches = _run_policy(out_dir, manifest)
    try:
        rows = _threshold_rows(record)
        as_of = _utc(manifest.get("as_of") or record["as_of"], "as_of")
        new_formula = as_of >= _utc(record["pro_new_formula_from"], "policy.pro_new_formula_from")
        version = str(manifest.get("policy_version") or record["version"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(f"{out_dir / 'manifest.json'} is corrupt: policy record: {one_line(exc)}") from None
    thresholds = pl.DataFrame(
        rows,
        schema={
            "name": pl.String,
            "mode": pl.String,
            "classic_leverage": pl.Int64,
            "value": pl.Float64,
            "direction": pl.String,
        },
        orient="row",
    )
    conditions = schemas.PRO_CONDITIONS_NEW if new_formula else schemas.PRO_CONDITIONS_OLD
    pro_conditions = pl.DataFrame(
        {"position": list(range(1, len(conditions) + 1)), "condition": conditions},
        schema={"position": pl.Int64, "condition": pl.String},
    )
    run_info = pl.DataFrame(
        {
            "as_of": [as_of],
            "policy_version": [version],
            "new_formula": [new_formula],
            "policy_matches_run": [matches],
        },
        schema={
            "as_of": schemas.UTC_TS,
            "policy_version": pl.String,
            "new_formula": pl.Boolean,
            "policy_matches_run": pl.Boolean,
        },
    )
    return {"policy_thresholds": thresholds, "pro_conditions": pro_conditions, "run_info": run_info}


def _scenario_view(out_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    """The `scenario_risk` view: the run's file when it wrote one, else no rows with the same columns."""
    from crossmargin.engine.scenarios import scenario_schema
    from crossmargin.scenario_set import ScenarioSet

    path = out_dir / "scenario_risk.parquet"
    if path.is_file():
        text = str(path.resolve()).replace("'", "''")
        first = (
            "(select scenario, min(file_row_number) as scenario_position "
            f"from read_parquet('{text}', file_row_number = true) group by scenario)"
        )
        con.execute(
            f"create view scenario_risk as select s.*, p.scenario_position from read_parquet('{text}') as s "
            f"join {first} as p using (scenario)"
        )
        return
    schema = {
        c: (pl.String if c == "scenario" else t) for c, t in scenario_schema(ScenarioSet((), "")).items()
    }
    con.register(
        "_scenario_risk_frame", pl.DataFrame(schema={**schema, "scenario_position": pl.Int64}).to_arrow()
    )
    con.execute("create view scenario_risk as select * from _scenario_risk_frame")


def connect(out_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the report views over one run's output directory."""
    out_dir = Path(out_dir)
    manifest = require_run(out_dir)
    frames = _policy_frames(out_dir, manifest)
    con = duckdb.connect(":memory:")
    try:
        con.execute("set TimeZone = 'UTC'")
        for view, fname in OUTPUT_FILES.items():
            path = str((out_dir / fname).resolve()).replace("'", "''")
            con.execute(f"create view {view} as select * from read_parquet('{path}')")
        _scenario_view(out_dir, con)
        for view, frame in frames.items():
            con.register(f"_{view}_frame", frame.to_arrow())
            con.execute(f"create view {view} as select * from _{view}_frame")
    except duckdb.Error as exc:
        con.close()
        raise ReportError(f"cannot read the outputs in {out_dir}: {one_line(exc)}") from None
    return con


def query(out_dir: Path, sql: str) -> pl.DataFrame:
    """Run ad-hoc SQL against the report views of one output directory (for notebooks)."""
    con = connect(out_dir)
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    except duckdb.Error as exc:
        raise ReportError(f"query failed on {out_dir}: {one_line(exc)}") from None
    finally:
        con.close()


def run_report(name: str, out_dir: Path) -> pl.DataFrame:
    """Run one shipped report against one run's output directory; the result as a polars frame."""
    text = report_sql(name)
    return query(out_dir, text)


def csv_safe(df: pl.DataFrame) -> pl.DataFrame:
    """CSV has no list type: join list columns with '|'."""
    lists = [c for c, t in df.schema.items() if isinstance(t, pl.List)]
    return df.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join("|") for c in lists)


def check_format(fmt: str, dest: Path | None) -> None:
    """An output format the `sql` command knows, with the destination it needs."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "parquet" and dest is None:
        raise ReportError("--format parquet needs --dest FILE")
    if fmt == "table" and dest is not None:
        raise ReportError("--dest needs --format csv or parquet")


def write_report_file(df: pl.DataFrame, fmt: str, dest: Path, *, force: bool = False) -> Path:
    """Write a report's frame as csv or parquet to `dest` (replacing only what `sql` wrote, or --force)."""
    check_format(fmt, dest)
    if fmt == "csv":
        return write_dest(dest, lambda tmp: csv_safe(df).write_csv(tmp), kind="sql", force=force)
    return write_dest(
        dest, lambda tmp: df.write_parquet(tmp, metadata={"crossmargin": "sql"}), kind="sql", force=force
    )


# ------------------------------------------------------------------ text output
def terminal_width() -> int | None:
    """Columns to print in: $COLUMNS or the terminal's width; None (no limit) when piped without COLUMNS."""
    import os
    import sys

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


def _table_width(widths: list[int]) -> int:
    return sum(w + 3 for w in widths) + 1  # one space either side of a cell, one rule per column, one edge


def _column_groups(df: pl.DataFrame, widths: list[int], width: int) -> list[list[int]]:
    """Column indices per printed table: the leading label columns, then as many others as fit."""
    n = len(widths)
    keys: list[int] = []
    for i, dtype in enumerate(df.dtypes):
        if dtype.is_numeric() or _table_width([widths[k] for k in [*keys, i]]) > width // 2:
            break
        keys.append(i)
    if not keys:
        keys = [0]
    groups: list[list[int]] = []
    current: list[int] = []
    for i in range(n):
        if i in keys:
            continue
        if current and _table_width([widths[k] for k in [*keys, *current, i]]) > width:
            groups.append(current)
            current = []
        current.append(i)
    if current or not groups:
        groups.append(current)
    return [[*keys, *g] for g in groups]


def render_table(df: pl.DataFrame, title: str, width: int | None = None) -> str:
    """A report's frame as text tables no wider than `width` (None: one table, as wide as it needs).

    When the columns do not fit side by side, they are split over several tables printed one under
    the other, each repeating the leading label columns (the report's grain), so every header shows
    in full; a cell too wide for its table folds onto several lines.
    """
    import io

    from rich.console import Console
    from rich.table import Table

    cells = [[_fmt(v) for v in row] for row in df.iter_rows()]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(df.columns)]
    groups = [list(range(df.width))] if width is None else _column_groups(df, widths, width)
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
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


def list_text(width: int | None = None) -> str:
    """The shipped reports, one per line with its grain (wrapped to `width`)."""
    lines = []
    for report in list_reports():
        line = f"{report:28s} {report_grain(report)}"
        lines += textwrap.wrap(line, width, subsequent_indent=" " * 29) if width else [line]
    return "\n".join(lines)
