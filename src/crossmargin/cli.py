"""The `crossmargin` command line (docs/rules.md §7 plus analyst commands).

Expected errors (bad input schema, bad policy, failed verification) print one line to stderr and
exit non-zero without a traceback.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer


class _App(typer.Typer):
    """Every command turns the project's errors (CrossmarginError) into one line and its exit code."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(f)
            def reporting_errors(*a: Any, **k: Any) -> Any:
                from crossmargin.errors import CrossmarginError

                try:
                    return f(*a, **k)
                except CrossmarginError as exc:
                    typer.echo(f"crossmargin: error: {exc}", err=True)
                    raise typer.Exit(exc.exit_code) from None

            return register(reporting_errors)

        return decorator


app = _App(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)


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


from crossmargin.errors import UsageError  # noqa: E402 - light, and every command uses it


def _parse_as_of(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--as-of {text!r} is not an ISO-8601 timestamp (e.g. 2025-01-21T10:00:00Z)"
        ) from None
    if value.tzinfo is None:
        raise UsageError(f"--as-of {text!r} has no time zone; give it in UTC, e.g. 2025-01-21T10:00:00Z")
    return value.astimezone(dt.UTC)


# options shared by `run` and `backfill`
Buckets = Annotated[
    int | None,
    typer.Option("--buckets", help="Score accounts in N account-id buckets (default: from the input size)"),
]
Engine = Annotated[
    str,
    typer.Option("--engine", help="local (buckets one after another here) or ray (one Ray task per bucket)"),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to run on, e.g. ray://head:10001 (default: a Ray started on this machine)",
    ),
]
Scenarios = Annotated[
    str | None,
    typer.Option(
        "--scenarios",
        help="Stress scenarios: a TOML file, or 'default' for the shipped set; adds scenario_risk.parquet",
    ),
]


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
    buckets: Buckets = None,
    engine: Engine = "local",
    ray_address: RayAddress = None,
    scenarios: Scenarios = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="A previous run's output directory: stop (exit 3) if an input table has shrunk below "
            "the policy's min_row_ratio of that run's rows",
        ),
    ] = None,
) -> None:
    """Compute levels and decisions for every account at AS_OF and write the outputs into OUT.

    Stops before any work (exit 3, nothing written) when a required input table is empty, or, with
    --baseline, has shrunk below its share of the baseline's rows: a broken feed is not a book.
    """
    from crossmargin.executors import executor_for
    from crossmargin.job import run_job

    executor = executor_for(engine, ray_address)
    summary = run_job(
        as_of=_parse_as_of(as_of),
        input_dir=input,
        out_dir=out,
        policy_file=policy,
        max_issue_rate=max_issue_rate,
        buckets=buckets,
        executor=executor,
        engine=engine,
        scenarios=scenarios,
        baseline=baseline,
    )
    typer.echo(summary)


@app.command()
def backfill(
    from_: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (included)")],
    to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (included)")],
    input: Annotated[
        str, typer.Option("--input", help="Input directory per day, with {date} for YYYY-MM-DD")
    ],
    out_root: Annotated[Path, typer.Option("--out-root", help="Writes one partition per day: as_of=DAY/")],
    force: Annotated[bool, typer.Option("--force", help="Rerun days that are up to date too")] = False,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy TOML merged over the shipped one")
    ] = None,
    max_issue_rate: Annotated[
        float,
        typer.Option(
            "--max-issue-rate", help="A day fails if more than this share of accounts has data issues"
        ),
    ] = 0.01,
    buckets: Buckets = None,
    engine: Engine = "local",
    ray_address: RayAddress = None,
    scenarios: Scenarios = None,
) -> None:
    """Run every day FROM..TO as of its midnight UTC into OUT_ROOT/as_of=DAY/, one line per day.

    Skips a day whose partition is up to date (same input files, same policy, outputs verify).

    A failed day does not stop the others. Exit 0: no day failed; 1: days failed (named at the end).
    """
    from crossmargin.backfill import JobOptions
    from crossmargin.backfill import backfill as run_backfill

    job = JobOptions(buckets=buckets, engine=engine, ray_address=ray_address, scenarios=scenarios)
    run_backfill(from_, to, input, out_root, policy, max_issue_rate, force, report=typer.echo, job=job)


@app.command()
def sample(
    accounts: Annotated[int, typer.Option("--accounts", help="Number of random accounts")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the input tables into")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files)")] = 0,
    faults: Annotated[
        float, typer.Option("--faults", help="Share of random accounts given an injected data fault")
    ] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    shape: Annotated[
        str,
        typer.Option(
            "--shape",
            help="sample (the project's book) or exchange (3.4 balance rows, 1.7 open orders and 2.2 mode "
            "switches per account, 41% Pro, daily price heartbeats, 0.8% of accounts need a null price)",
        ),
    ] = "sample",
) -> None:
    """Write a realistic synthetic input directory (deterministic for a seed) into a new or empty OUT."""
    from crossmargin.synthetic.shapes import SHAPES

    if accounts < 1:
        raise UsageError(f"--accounts {accounts} must be at least 1")
    if seed < 0:
        raise UsageError(f"--seed {seed} must be at least 0")
    if not 0.0 <= faults <= 1.0:
        raise UsageError(f"--faults {faults} is outside [0, 1]")
    if fmt not in ("parquet", "csv"):
        raise UsageError(f"--format {fmt!r} is not one of parquet, csv")
    if shape not in SHAPES:
        raise UsageError(f"--shape {shape!r} is not one of {', '.join(SHAPES)}")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise UsageError(f"--out {out} exists and is not an empty directory; give a new or empty directory")
    from crossmargin.synthetic import write_sample

    typer.echo(write_sample(out, accounts=accounts, seed=seed, faults=faults, fmt=fmt, shape=SHAPES[shape]))


@app.command()
def verify(out: Annotated[Path, typer.Option("--out", help="A run's output directory")]) -> None:
    """Recheck a run's output files against its manifest (row counts and checksums).

    Exit 0: every file matches; 1: some do not (each problem listed on stderr); 2: OUT is not a run's
    output directory or its manifest.json is corrupt.
    """
    from crossmargin.analytics.rundir import read_manifest
    from crossmargin.io.outputs import verify_outputs

    read_manifest(out)
    problems = verify_outputs(out)
    if problems:
        typer.echo(f"{out}: {len(problems)} problem(s), outputs do not match manifest.json", err=True)
        for p in problems:
            typer.echo(f"- {p}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{out}: outputs match manifest.json")


RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="A root of nightly partitions ROOT/as_of=YYYY-MM-DD/ (backfill, the DAG)"),
]
FromDay = Annotated[
    str | None, typer.Option("--from", help="With --root: first night, YYYY-MM-DD (included)")
]
ToDay = Annotated[str | None, typer.Option("--to", help="With --root: last night, YYYY-MM-DD (included)")]


def _open_root(root: Path | None, from_: str | None, to: str | None):
    """The verified partitions of --root in the window (None without --root); left-out ones on stderr."""
    if root is None:
        if from_ is not None or to is not None:
            raise UsageError("--from and --to need --root ROOT")
        return None
    from crossmargin.analytics.root import open_root, parse_night

    opened = open_root(root, parse_night(from_, "--from"), parse_night(to, "--to"))
    for line in opened.left_out_lines():
        typer.echo(f"crossmargin: warning: {line}", err=True)
    return opened


def _run_or_root(out: Path | None, root: Path | None) -> None:
    if out is not None and root is not None:
        raise UsageError("give --out DIR (one run) or --root ROOT (every night), not both")


@app.command()
def sql(
    name: Annotated[str, typer.Argument(help="Report name (a file in sql/), or 'list'")],
    out: Annotated[Path | None, typer.Option("--out", help="A run's output directory (default: out)")] = None,
    root: RootOption = None,
    from_: FromDay = None,
    to: ToDay = None,
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
    """Run one DuckDB SQL report over a run's outputs (--out), or over every night of a root (--root).

    With --root, the report reads every partition ROOT/as_of=YYYY-MM-DD/ (of the nights --from..--to)
    that verifies; a partition that does not is left out and named on stderr. `crossmargin sql list`
    shows the reports of each kind.

    Nothing is written unless --dest FILE is given. An existing --dest is replaced only if it is a
    parquet file written by `crossmargin sql`, or with --force. A table wider than the terminal
    ($COLUMNS) is split into several tables, each repeating the report's label columns.
    """
    from crossmargin.analytics import sql as reports
    from crossmargin.analytics import text

    if name == "list":
        typer.echo(text.list_text(text.terminal_width()))
        return
    _run_or_root(out, root)
    reports.check_format(fmt, dest)
    reports.check_scope(name, "root" if root is not None else "run")
    opened = _open_root(root, from_, to)
    if opened is not None:
        from crossmargin.analytics.root import run_root_report

        df = run_root_report(name, opened)
    else:
        df = reports.run_report(name, out or Path("out"))
    if fmt == "table":
        title = f"{name} — {reports.report_grain(name)}"
        labels = reports.report_info(name).labels
        typer.echo(text.render_table(df, title, text.terminal_width(), labels), nl=False)
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
    html: Annotated[Path, typer.Option("--html", help="HTML file to write")],
    out: Annotated[Path | None, typer.Option("--out", help="A run's output directory")] = None,
    root: RootOption = None,
    from_: FromDay = None,
    to: ToDay = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace --html even if it is not a crossmargin report")
    ] = False,
) -> None:
    """Self-contained HTML page (opens offline): one run's migration cohort report (--out), or the
    migration programme over every night of a root (--root, optionally --from/--to).

    An existing --html is replaced only if it is a report crossmargin wrote, or with --force.
    """
    _run_or_root(out, root)
    if out is None and root is None:
        raise UsageError("give --out DIR (one run's cohort report) or --root ROOT (the programme page)")
    opened = _open_root(root, from_, to)
    if opened is not None:
        from crossmargin.analytics.page import describe
        from crossmargin.analytics.programme import write_programme_page

        typer.echo(describe(write_programme_page(opened, html, force=force)))
        return
    from crossmargin.analytics.html import write_report
    from crossmargin.analytics.page import describe

    typer.echo(describe(write_report(out, html, force=force)))


@app.command()
def explain(
    account: Annotated[str | None, typer.Option("--account", help="The account_id to explain")] = None,
    input: Annotated[
        Path | None, typer.Option("--input", help="Directory with one file per input table")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Valuation time, UTC (with --input)")] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy TOML merged over the shipped one (with --input)")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="A run's output directory: its inputs, as_of, policy and baseline"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text (default) or json")] = "text",
) -> None:
    """Every number and decision of one account, traced to its input rows and to docs/rules.md.

    Either --input DIR --as-of TS [--policy FILE], or --out RUN_DIR (a run's output directory: its
    manifest names the inputs, as_of, policy and baseline; an input file that changed since the run
    is refused, exit 2). Only that account's rows are read, plus the reference tables. An account with
    a data issue is shown with its issues and the values that could still be computed (status
    data_issue); an id that no input table holds exits 2.
    """
    if fmt not in ("text", "json"):
        raise UsageError(f"--format {fmt!r} is not one of text, json")
    if account is None:
        raise UsageError("give --account ID, the account_id to explain")
    try:
        account_id = int(account)
    except ValueError:
        raise UsageError(f"--account {account!r} is not an account_id (an integer)") from None
    from crossmargin.explain import explain as explain_account
    from crossmargin.explain import source_of

    if as_of is not None:
        as_of = _parse_as_of(as_of)
    doc = explain_account(account_id, source=source_of(input=input, as_of=as_of, policy=policy, out=out))
    if fmt == "json":
        import json

        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    from crossmargin.analytics.text import terminal_width
    from crossmargin.explain.text import render

    typer.echo(render(doc, terminal_width()), nl=False)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` and return its exit code (for callers that want no exit)."""
    try:
        app(args=argv, prog_name="crossmargin")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


def console() -> None:  # pragma: no cover - the installed `crossmargin` script
    sys.exit(main())
