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

Header tags. Below its grain, a report's header comment may hold tag lines `-- name: value`:

- `-- scope: root`: the report reads every night's partition of a root (`crossmargin sql NAME --root
  ROOT`, views of `crossmargin.analytics.root`); without the tag it reads one run (`--out DIR`);
  `-- scope: run, root`: either (a per-account report, one row per account and night over a root).
- `-- labels: a, b`: its label columns (the grain): a terminal table split over several parts repeats
  them in every part, and so does an HTML table. Without the tag: its leading non-numeric columns.
- `-- reads reports: a, b`: other reports of the same scope it selects from by name (dbt's `ref`):
  each is set up as a view of that name before the report runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
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
SCOPES = ("run", "root")
_TAG = re.compile(r"^--\s*(scope|labels|reads reports):\s*(.*?)\s*$")


@dataclass(frozen=True)
class ReportInfo:
    """What a report's header comment says about it (see the module docstring)."""

    name: str
    grain: str
    scopes: tuple[str, ...]  # ("run",), ("root",) or both
    labels: tuple[str, ...]  # empty: the leading non-numeric columns
    reads: tuple[str, ...]  # reports it selects from


def _sql_dir():
    return resources.files("crossmargin.sql")


def _all_reports() -> list[str]:
    return sorted(p.name[: -len(".sql")] for p in _sql_dir().iterdir() if p.name.endswith(".sql"))


def list_reports(scope: str | None = "run") -> list[str]:
    """Names of the shipped reports of one scope ("run", "root"; None: both), sorted."""
    return [n for n in _all_reports() if scope is None or scope in report_info(n).scopes]


def report_sql(name: str) -> str:
    """The SQL text of one report."""
    if not _NAME.match(name) or name not in _all_reports():
        raise ReportError(f"unknown report {name!r}; known: {', '.join(_all_reports())}")
    return _sql_dir().joinpath(f"{name}.sql").read_text(encoding="utf-8")


def _names(value: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip())


@functools.cache
def report_info(name: str) -> ReportInfo:
    """The grain (first sentence of the header comment) and the header tags of one report."""
    lines, tags = [], {}
    for line in report_sql(name).splitlines():
        if not line.startswith("--"):
            break
        tag = _TAG.match(line)
        if tag:
            tags[tag.group(1)] = tag.group(2)
        else:
            lines.append(line[2:].strip())
    text = " ".join(x for x in lines if x)
    scopes = _names(tags.get("scope", "run"))
    if not scopes or set(scopes) - set(SCOPES):
        raise ReportError(f"report {name}: unknown scope {tags['scope']!r} (use {' and/or '.join(SCOPES)})")
    grain = text.split(". ")[0].rstrip(".") + "."
    return ReportInfo(
        name, grain, scopes, _names(tags.get("labels", "")), _names(tags.get("reads reports", ""))
    )


def report_grain(name: str) -> str:
    """The first sentence of the report's header comment (its grain)."""
    return report_info(name).grain


def check_scope(name: str, scope: str) -> None:
    """ReportError unless report `name` reads what it is given (one run, or a root of partitions)."""
    info = report_info(name)
    if scope not in info.scopes:
        given = "--root ROOT (a root of nightly partitions)" if scope == "run" else "--out DIR (one run)"
        raise ReportError(f"report {name} reads {_SCOPE_WORDS[info.scopes[0]]}: give {given}")


_SCOPE_WORDS = {"run": "one run's outputs", "root": "every night's partition of a root"}


def create_report_views(con: duckdb.DuckDBPyConnection, names: list[str], scope: str) -> None:
    """Views named after the reports `names` (and the reports they read), in dependency order."""
    done: set[str] = set()

    def add(dep: str, chain: tuple[str, ...]) -> None:
        if dep in chain:
            raise ReportError(f"reports read one another in a cycle ({' -> '.join((*chain, dep))})")
        if dep in done:
            return
        check_scope(dep, scope)
        for sub in report_info(dep).reads:
            add(sub, (*chain, dep))
        con.execute(f"create or replace view {dep} as {report_sql(dep)}")
        done.add(dep)

    for name in names:
        add(name, ())


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


def fetch(con: duckdb.DuckDBPyConnection, sql: str, where: object) -> pl.DataFrame:
    """The result of `sql` on an open connection as a polars frame; ReportError naming `where`."""
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    except duckdb.Error as exc:
        raise ReportError(f"query failed on {where}: {one_line(exc)}") from None


def query(out_dir: Path, sql: str) -> pl.DataFrame:
    """Run ad-hoc SQL against the report views of one output directory (for notebooks)."""
    con = connect(out_dir)
    try:
        return fetch(con, sql, out_dir)
    finally:
        con.close()


def report_on(con: duckdb.DuckDBPyConnection, name: str, scope: str, where: object) -> pl.DataFrame:
    """Run one shipped report on an open connection of `scope` (the views of a run or of a root)."""
    check_scope(name, scope)
    text = report_sql(name)
    try:
        create_report_views(con, list(report_info(name).reads), scope)
    except duckdb.Error as exc:
        raise ReportError(f"query failed on {where}: {one_line(exc)}") from None
    return fetch(con, text, where)


def run_report(name: str, out_dir: Path) -> pl.DataFrame:
    """Run one shipped report against one run's output directory; the result as a polars frame."""
    check_scope(name, "run")
    con = connect(out_dir)
    try:
        return report_on(con, name, "run", out_dir)
    finally:
        con.close()


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
