"""A root of nightly partitions as the analyst surfaces read it (`crossmargin sql NAME --root ROOT`).

`crossmargin backfill` and the Airflow DAG write one partition per night, `ROOT/as_of=YYYY-MM-DD/`
(docs/operations.md). `open_root(ROOT, first, last)` lists the partitions of the nights from `first`
to `last` (both optional, both included) and verifies each one as `crossmargin verify` does
(`outputs.verify_outputs`: every output file listed in manifest.json, with its row count and
sha256), plus that its manifest's as_of falls on the night its directory names. A partition that does
not verify is left out of every view (`Root.left_out`, which the command line names on stderr); other
directories (`as_of=D.rejected/`, `reports/`) are not partitions.

`connect_root(root)` gives an in-memory DuckDB connection whose views cover the verified partitions:

- `account_risk`, `actions`, `data_issues`: every verified partition's file, read by `read_parquet`
  with hive partitioning, so `as_of` is the night (a DATE, from the directory name); `policy_version`
  is a column of every row, as the job writes it.
- `partitions`: one row per partition directory of the window (as_of, partition, verified,
  left_out_reason, policy_version: the manifest's).
- `nights`: one row per calendar night from the window's first to its last partition (verified or
  not): as_of, has_partition (a verified partition), previous_as_of (the latest verified night
  before it: the root's previous night; null for the first), policy_version, latest_policy_version
  (of the last verified partition), left_out_reason. Nights are never interpolated: a night without
  a verified partition has no rows in the three tables.

Reports over a root are the `sql/` files tagged `-- scope: root` (`crossmargin.analytics.sql`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from crossmargin.analytics.rundir import OUTPUT_FILES, RunDirError, one_line, require_run
from crossmargin.analytics.sql import ReportError, create_report_views, fetch, list_reports, report_on
from crossmargin.errors import UsageError

PARTITION = re.compile(r"as_of=(\d{4}-\d\d-\d\d)")


@dataclass(frozen=True)
class Partition:
    """One `as_of=YYYY-MM-DD/` directory of a root and what verifying it found."""

    night: dt.date
    path: Path
    policy_version: str | None
    problem: str | None = None  # None: it verifies

    @property
    def verified(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Root:
    """The partitions of a root within a window of nights, each verified."""

    path: Path
    partitions: list[Partition] = field(default_factory=list)

    @property
    def verified(self) -> list[Partition]:
        return [p for p in self.partitions if p.verified]

    @property
    def left_out(self) -> list[Partition]:
        return [p for p in self.partitions if not p.verified]

    def left_out_lines(self) -> list[str]:
        """One line per partition left out, for stderr."""
        return [f"left out {p.path}: {p.problem}" for p in self.left_out]


def parse_night(text: str | None, option: str) -> dt.date | None:
    """A night written YYYY-MM-DD (or None), else UsageError naming the option."""
    if text is None:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date YYYY-MM-DD (e.g. 2025-01-20)") from None


def _verify(path: Path, night: dt.date) -> Partition:
    """A partition directory checked as `crossmargin verify` checks a run, plus its night."""
    from crossmargin.io.outputs import verify_outputs

    try:
        manifest = require_run(path)
    except RunDirError as exc:
        return Partition(night, path, None, str(exc).replace(f"{path} ", "", 1))
    version = manifest.get("policy_version")
    version = str(version) if version is not None else None
    as_of = str(manifest.get("as_of") or "")
    if as_of[:10] != night.isoformat():
        return Partition(night, path, version, f"manifest.json is for as_of {as_of or '?'}, not {night}")
    try:
        problems = verify_outputs(path)
    except (KeyError, TypeError, AttributeError, OSError) as exc:
        problems = [f"malformed outputs in manifest.json ({one_line(exc)})"]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Partition(night, path, version, f"does not verify: {problems[0]}{more}")
    return Partition(night, path, version)


def open_root(root: Path, first: dt.date | None = None, last: dt.date | None = None) -> Root:
    """The partitions of `root` for the nights `first`..`last`, each verified (module docstring)."""
    root = Path(root)
    if first is not None and last is not None and first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    if not root.is_dir():
        why = "no such directory" if not root.exists() else "not a directory"
        raise RunDirError(f"{root} is not a root of nightly partitions ({why})")
    found = []
    for child in root.iterdir():
        m = PARTITION.fullmatch(child.name)
        if not m or not child.is_dir():
            continue
        try:
            night = dt.date.fromisoformat(m.group(1))
        except ValueError:
            continue
        if (first is None or night >= first) and (last is None or night <= last):
            found.append((night, child))
    window = f" from {first or 'the first night'} to {last or 'the last night'}" if first or last else ""
    if not found:
        raise RunDirError(f"{root} holds no partition as_of=YYYY-MM-DD/{window}")
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        partitions = sorted(pool.map(lambda f: _verify(f[1], f[0]), found), key=lambda p: p.night)
    result = Root(root, partitions)
    if not result.verified:
        raise RunDirError(
            f"{root}: no partition{window} verifies ({len(partitions)} left out; first: "
            f"{partitions[0].path.name}: {partitions[0].problem})"
        )
    return result


# ------------------------------------------------------------------ views
def _partitions_frame(root: Root) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "as_of": [p.night for p in root.partitions],
            "partition": [str(p.path) for p in root.partitions],
            "verified": [p.verified for p in root.partitions],
            "left_out_reason": [p.problem for p in root.partitions],
            "policy_version": [p.policy_version for p in root.partitions],
        },
        schema={
            "as_of": pl.Date,
            "partition": pl.String,
            "verified": pl.Boolean,
            "left_out_reason": pl.String,
            "policy_version": pl.String,
        },
    )


def _nights_frame(root: Root) -> pl.DataFrame:
    by_night = {p.night: p for p in root.partitions}
    first, last = root.partitions[0].night, root.partitions[-1].night
    latest = root.verified[-1].policy_version
    rows, previous = [], None
    for i in range((last - first).days + 1):
        night = first + dt.timedelta(days=i)
        p = by_night.get(night)
        verified = p is not None and p.verified
        rows.append(
            {
                "as_of": night,
                "has_partition": verified,
                "previous_as_of": previous,
                "policy_version": p.policy_version if verified else None,
                "latest_policy_version": latest,
                "left_out_reason": p.problem if p is not None else None,
            }
        )
        if verified:
            previous = night
    return pl.DataFrame(
        rows,
        schema={
            "as_of": pl.Date,
            "has_partition": pl.Boolean,
            "previous_as_of": pl.Date,
            "policy_version": pl.String,
            "latest_policy_version": pl.String,
            "left_out_reason": pl.String,
        },
        orient="row",
    )


def _quoted_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p.resolve()).replace("'", "''") + "'" for p in paths) + "]"


def connect_root(root: Root) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views over a root's verified partitions."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("set TimeZone = 'UTC'")
        for view, fname in OUTPUT_FILES.items():
            files = _quoted_list([p.path / fname for p in root.verified])
            con.execute(
                f"create view {view} as select * from read_parquet({files}, hive_partitioning = true, "
                "hive_types = {'as_of': DATE}, union_by_name = true)"
            )
        for view, frame in (("partitions", _partitions_frame(root)), ("nights", _nights_frame(root))):
            con.register(f"_{view}_frame", frame.to_arrow())
            con.execute(f"create view {view} as select * from _{view}_frame")
    except duckdb.Error as exc:
        con.close()
        raise ReportError(f"cannot read the partitions of {root.path}: {one_line(exc)}") from None
    return con


def query_root(root: Root, sql: str) -> pl.DataFrame:
    """Ad-hoc SQL over the views of a root and its reports, each a view of its name (for notebooks)."""
    con = connect_root(root)
    try:
        try:
            create_report_views(con, list_reports("root"), "root")
        except duckdb.Error as exc:
            raise ReportError(f"query failed on {root.path}: {one_line(exc)}") from None
        return fetch(con, sql, root.path)
    finally:
        con.close()


def run_root_report(name: str, root: Root) -> pl.DataFrame:
    """Run one shipped root report (`-- scope: root`) over a root's verified partitions."""
    return run_root_reports([name], root)[name]


def run_root_reports(names: list[str], root: Root) -> dict[str, pl.DataFrame]:
    """Several root reports on one connection (the views are set up once)."""
    con = connect_root(root)
    try:
        return {name: report_on(con, name, "root", root.path) for name in names}
    finally:
        con.close()


__all__ = [
    "Partition",
    "Root",
    "connect_root",
    "open_root",
    "parse_night",
    "query_root",
    "run_root_report",
    "run_root_reports",
]
