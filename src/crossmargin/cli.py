"""The `crossmargin` command line (SPEC.md §6 plus analyst commands).

Expected errors (bad input schema, bad policy, failed verification) print one line to stderr and
exit non-zero without a traceback.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        from crossmargin import __version__

        typer.echo(f"crossmargin {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """crossmargin: the nightly cross-margin risk job and its analyst commands."""


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"crossmargin: error: {message}", err=True)
    raise typer.Exit(code)


def _parse_as_of(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--as-of {text!r} is not an ISO-8601 timestamp (e.g. 2025-01-21T10:00:00Z)")
    if value.tzinfo is None:
        _fail(f"--as-of {text!r} has no time zone; give it in UTC, e.g. 2025-01-21T10:00:00Z")
    return value.astimezone(dt.UTC)


@app.command()
def run(
    as_of: Annotated[str, typer.Option("--as-of", help="Valuation time, UTC (e.g. 2025-01-21T10:00:00Z)")],
    input: Annotated[Path, typer.Option("--input", help="Directory with one file per input table")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (replaced atomically)")],
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy TOML merged over the shipped one")
    ] = None,
    max_issue_rate: Annotated[
        float,
        typer.Option("--max-issue-rate", help="Fail if more than this share of accounts has data issues"),
    ] = 0.01,
    buckets: Annotated[
        int, typer.Option("--buckets", help="Process accounts in N hash buckets (0 = choose from input size)")
    ] = 0,
) -> None:
    """Compute levels and decisions for every account at AS_OF and write the outputs into OUT."""
    from crossmargin.errors import CrossmarginError
    from crossmargin.job import run_job

    try:
        summary = run_job(
            as_of=_parse_as_of(as_of),
            input_dir=input,
            out_dir=out,
            policy_file=policy,
            max_issue_rate=max_issue_rate,
            buckets=buckets,
        )
    except CrossmarginError as exc:
        _fail(str(exc), exc.exit_code)
    typer.echo(summary)


@app.command()
def sample(
    accounts: Annotated[int, typer.Option("--accounts", help="Number of random accounts")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the input tables into")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files)")] = 0,
    faults: Annotated[
        float, typer.Option("--faults", help="Share of random accounts given an injected data fault")
    ] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write a realistic synthetic input directory (deterministic for a seed)."""
    from crossmargin.sample import write_sample

    typer.echo(write_sample(out, accounts=accounts, seed=seed, faults=faults, fmt=fmt))


@app.command()
def verify(out: Annotated[Path, typer.Option("--out", help="A run's output directory")]) -> None:
    """Recheck a run's output files against its manifest (row counts and checksums).

    Exit 0: every file matches; 1: some do not (each problem listed on stderr); 2: OUT is not a run's
    output directory or its manifest.json is corrupt.
    """
    from crossmargin.analytics.rundir import read_manifest
    from crossmargin.outputs import verify_outputs

    read_manifest(out)
    problems = verify_outputs(out)
    if problems:
        typer.echo(f"{out}: {len(problems)} problem(s), outputs do not match manifest.json", err=True)
        for p in problems:
            typer.echo(f"- {p}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{out}: outputs match manifest.json")


@app.command()
def sql(
    name: Annotated[str, typer.Argument(help="Report name (a file in sql/), or 'list'")],
    out: Annotated[Path, typer.Option("--out", help="A run's output directory")] = Path("out"),
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="table (print), csv (print, or write to --dest) or parquet (write to --dest)"
        ),
    ] = "table",
    dest: Annotated[Path | None, typer.Option("--dest", help="File to write (csv or parquet)")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace --dest even if crossmargin sql did not write it")
    ] = False,
) -> None:
    """Run one DuckDB SQL report over a run's outputs.

    Nothing is written unless --dest FILE is given. An existing --dest is replaced only if it is a
    parquet file written by `crossmargin sql`, or with --force. A table wider than the terminal
    ($COLUMNS) is split into several tables, each repeating the report's label columns.
    """
    from crossmargin.analytics import sql as reports

    if name == "list":
        typer.echo(reports.list_text(reports.terminal_width()))
        return
    reports.check_format(fmt, dest)
    df = reports.run_report(name, out)
    if fmt == "table":
        title = f"{name} — {reports.report_grain(name)}"
        typer.echo(reports.render_table(df, title, reports.terminal_width()), nl=False)
    elif dest is None:
        typer.echo(reports.csv_safe(df).write_csv(), nl=False)
    else:
        path = reports.write_report_file(df, fmt, dest, force=force)
        typer.echo(f"{name}: {df.height} rows x {df.width} columns -> {path}")


@app.command()
def diff(
    before: Annotated[Path, typer.Option("--before", help="Earlier run's output directory")],
    after: Annotated[Path, typer.Option("--after", help="Later run's output directory")],
    dest: Annotated[
        Path | None,
        typer.Option("--dest", help="Parquet file for the per-account changes (not written without it)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace --dest even if crossmargin diff did not write it")
    ] = False,
) -> None:
    """Day-over-day changes per account between two runs: prints the counts per kind of change.

    The per-account rows are written only to --dest FILE. An existing --dest is replaced only if it is
    a diff written by `crossmargin diff`, or with --force.
    """
    from crossmargin.analytics.diff import diff_runs, summary_text, write_diff

    changes = diff_runs(before, after)
    if dest is not None:
        dest = write_diff(changes, dest, force=force)
    typer.echo(summary_text(before, after, changes, dest))


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="A run's output directory")],
    html: Annotated[Path, typer.Option("--html", help="HTML file to write")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace --html even if it is not a crossmargin report")
    ] = False,
) -> None:
    """Self-contained HTML migration cohort report (opens offline).

    An existing --html is replaced only if it is a report crossmargin wrote, or with --force.
    """
    from crossmargin.analytics.html import describe, write_report

    typer.echo(describe(write_report(out, html, force=force)))


def main(argv: list[str] | None = None) -> int:
    """The console entry point: the one place where the project's errors become messages and exit codes.

    A `CrossmarginError` (bad option, bad input, bad policy, refused destination, ...) prints one line
    `crossmargin: error: ...` on stderr and exits with its code; nothing else is caught here.
    """
    from crossmargin.errors import CrossmarginError

    try:
        app(args=argv, prog_name="crossmargin")  # typer's own usage errors: its message, exit 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except CrossmarginError as exc:
        typer.echo(f"crossmargin: error: {exc}", err=True)
        return exc.exit_code
    return 0


def console() -> None:  # pragma: no cover - the installed `crossmargin` script
    sys.exit(main())
