"""DuckDB SQL reports over one run's outputs (`crossmargin sql NAME --out DIR`).

Each report is one file in the top-level `sql/` directory (shipped as `crossmargin.sql`), dbt style:
a header comment whose first sentence states the grain, CTEs, and `select * from final`.

A report reads only these views, created here in an in-memory DuckDB over the run's files:

- `account_risk`, `actions`, `data_issues`: the parquet files of the output directory, as written.
- `scenario_risk`: scenario_risk.parquet of a run with `--scenarios`, plus `scenario_position` (the
  scenario's place in its file); empty, with the same columns, for a run without scenarios.
- `run_info`: one row (as_of, policy_version, new_formula, policy_matches_run) of the run;
  policy_matches_run is false when the policy text resolved here is not the one the run recorded
  (manifest policy_sha256), e.g. a --policy file that has since moved: thresholds are then the shipped ones.
- `policy_thresholds`: (name, mode, classic_leverage, value, direction) -- the policy values in force at
  the run's as_of, read from `crossmargin.policy` (so a report never holds a decision threshold literal).
- `pro_conditions`: (position, condition) -- the Pro activation conditions of the formula in force, in
  the order of `schemas.PRO_CONDITIONS_NEW` / `_OLD` (the names used in `pro_ineligible_reasons`).

Reports never recompute a SPEC formula: levels, flags and amounts come from the engine's columns.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from crossmargin import schemas

OUTPUT_FILES = {
    "account_risk": "account_risk.parquet",
    "actions": "actions.parquet",
    "data_issues": "data_issues.parquet",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ReportError(ValueError):
    """Unknown report, or an output directory that is not a run's output."""


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
def _run_as_of(out_dir: Path, con: duckdb.DuckDBPyConnection) -> tuple[dt.datetime | None, str | None]:
    manifest = out_dir / "manifest.json"
    as_of = version = None
    if manifest.exists():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            if doc.get("as_of"):
                as_of = dt.datetime.fromisoformat(str(doc["as_of"]))  # 3.11+: reads a trailing Z
            version = doc.get("policy_version")
        except (ValueError, OSError):
            as_of = None
    if as_of is None:  # fall back on the as_of column every account_risk row carries
        row = con.execute("select max(as_of) from account_risk").fetchone()
        as_of = row[0] if row else None
    if version is None:
        row = con.execute("select max(policy_version) from account_risk").fetchone()
        version = row[0] if row else None
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    return as_of, version


def _manifest(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return {}


def _policy_file(out_dir: Path) -> Path | None:
    """The --policy file a run recorded in its manifest, if it recorded one and it still exists."""
    path = _manifest(out_dir).get("policy_file")
    return Path(path) if path and Path(path).exists() else None


def _policy_frames(out_dir: Path, con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    from crossmargin.policy import resolve

    as_of, version = _run_as_of(out_dir, con)
    if as_of is None:  # an empty run: no account, no threshold needed
        as_of = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    policy = resolve(as_of, _policy_file(out_dir))
    rows: list[tuple[str, str, int | None, float, str]] = [
        ("pro_margin_call", "pro", None, policy.pro_margin_call, "<="),
        ("pro_liquidation", "pro", None, policy.pro_liquidation, "<="),
        ("new_min_pro_margin_level", "classic", None, policy.new_min_pro_margin_level, ">"),
        ("new_min_net_equity_usdt", "classic", None, policy.new_min_net_equity_usdt, ">"),
        (
            "old_min_classic_collateral_margin_level",
            "classic",
            None,
            policy.old_min_classic_collateral_margin_level,
            ">",
        ),
    ]
    for lev, tier in sorted(policy.classic.items()):
        rows += [
            ("classic_initial_risk_ratio", "classic", lev, tier.initial_risk_ratio, "<="),
            ("classic_margin_call", "classic", lev, tier.margin_call, "<="),
            ("classic_liquidation", "classic", lev, tier.liquidation, "<="),
        ]
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
    conditions = schemas.PRO_CONDITIONS_NEW if policy.new_formula else schemas.PRO_CONDITIONS_OLD
    pro_conditions = pl.DataFrame(
        {"position": list(range(1, len(conditions) + 1)), "condition": conditions},
        schema={"position": pl.Int64, "condition": pl.String},
    )
    # the thresholds are those of the run only if the policy text is the one the run hashed
    run_sha = _manifest(out_dir).get("policy_sha256")
    policy_matches_run = None if not run_sha else run_sha == policy.source_sha256
    run_info = pl.DataFrame(
        {
            "as_of": [as_of],
            "policy_version": [version or policy.version],
            "new_formula": [policy.new_formula],
            "policy_matches_run": [policy_matches_run],
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
    from crossmargin.scenarios import ScenarioSet, scenario_schema

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
    missing = [f for f in OUTPUT_FILES.values() if not (out_dir / f).is_file()]
    if missing:
        raise ReportError(f"{out_dir} is not a run's output directory (missing {', '.join(missing)})")
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    for view, fname in OUTPUT_FILES.items():
        path = str((out_dir / fname).resolve()).replace("'", "''")
        con.execute(f"create view {view} as select * from read_parquet('{path}')")
    _scenario_view(out_dir, con)
    for view, frame in _policy_frames(out_dir, con).items():
        con.register(f"_{view}_frame", frame.to_arrow())
        con.execute(f"create view {view} as select * from _{view}_frame")
    return con


def query(out_dir: Path, sql: str) -> pl.DataFrame:
    """Run ad-hoc SQL against the report views of one output directory (for notebooks)."""
    con = connect(out_dir)
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        con.close()


def run_report(name: str, out_dir: Path) -> pl.DataFrame:
    """Run one shipped report against one run's output directory; the result as a polars frame."""
    text = report_sql(name)
    return query(out_dir, text)


# ------------------------------------------------------------------ CLI
def _print_table(df: pl.DataFrame, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col, dtype in df.schema.items():
        table.add_column(col, justify="right" if dtype.is_numeric() else "left", overflow="fold")
    cells = [[_fmt(v) for v in row] for row in df.iter_rows()]
    for row in cells:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped or in cron: do not squeeze the table into 80 columns
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(df.columns)]
        console = Console(width=max(80, sum(widths) + 3 * len(widths) + 1))
    console.print(table)


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


def run_report_cli(name: str, out_dir: Path, fmt: str = "table", dest: Path | None = None) -> None:
    """`crossmargin sql NAME --out DIR [--format table|csv|parquet] [--dest FILE]`; NAME 'list' lists them."""
    import typer

    if name == "list":
        for report in list_reports():
            typer.echo(f"{report:32s} {report_grain(report)}")
        return
    try:
        df = run_report(name, out_dir)
    except (ReportError, duckdb.Error) as exc:
        typer.echo(f"crossmargin: error: {exc}", err=True)
        raise typer.Exit(2) from None
    if fmt == "table":
        _print_table(df, f"{name} — {report_grain(name)}")
        return
    dest = Path(dest) if dest is not None else Path(f"{name}.{fmt}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        csv_safe(df).write_csv(dest)
    elif fmt == "parquet":
        df.write_parquet(dest)
    else:
        typer.echo(f"crossmargin: error: unknown format {fmt!r} (table, csv or parquet)", err=True)
        raise typer.Exit(2)
    typer.echo(f"{name}: {df.height} rows x {df.width} columns -> {dest}")


def csv_safe(df: pl.DataFrame) -> pl.DataFrame:
    """CSV has no list type: join list columns with '|'."""
    lists = [c for c, t in df.schema.items() if isinstance(t, pl.List)]
    return df.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join("|") for c in lists)
