"""Nightly analyst pack for one run: every SQL report as CSV, the HTML cohort report, and the diff.

Thin entry point over `crossmargin.analytics` (the same code as `crossmargin sql`, `crossmargin report`
and `crossmargin diff`), for a scheduler to call after `crossmargin run`:

    python jobs/cohort_report.py --out out/2025-01-21 --dest reports/2025-01-21 [--before out/2025-01-20]

writes into DEST (the pack's own directory: a rerun replaces these files): `<report>.csv` for every
summary report of `sql/` over one run (`<report>.parquet` as well with `--parquet`; a per-account
listing such as `account_states`, whose labels hold account_id, is not a summary and is left to
`crossmargin sql`), `cohort_report.html`, and
`diff.parquet` when `--before` is given. Exit 0 on success; on an error (OUT or BEFORE not a run's
output directory, DEST not writable, ...) one line `cohort_report: error: ...` on stderr and the
error's exit code (2), no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crossmargin.analytics.diff import diff_runs, summarize, write_diff
from crossmargin.analytics.html import write_report
from crossmargin.analytics.rundir import require_run
from crossmargin.analytics.sql import list_reports, report_info, run_report, write_report_file
from crossmargin.errors import CrossmarginError


def summary_reports() -> list[str]:
    """The reports of one run that summarise it (not one row per account)."""
    return [n for n in list_reports("run") if "account_id" not in report_info(n).labels]


def pack(out: Path, dest: Path, before: Path | None = None, parquet: bool = False) -> None:
    require_run(out)
    if before is not None:
        require_run(before)
    for name in summary_reports():
        df = run_report(name, out)
        write_report_file(df, "csv", dest / f"{name}.csv", force=True)  # DEST is the pack's own directory
        if parquet:
            write_report_file(df, "parquet", dest / f"{name}.parquet", force=True)
        print(f"{name}: {df.height} rows")
    print(f"report: {write_report(out, dest / 'cohort_report.html', force=True)}")
    if before is not None:
        diff = diff_runs(before, out)
        write_diff(diff, dest / "diff.parquet", force=True)
        counts = ", ".join(f"{c}={n}" for c, n in summarize(diff).iter_rows() if n)
        print(f"diff: {diff.height} changes ({counts or 'none'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the run's output directory")
    parser.add_argument("--dest", type=Path, required=True, help="directory to write the reports into")
    parser.add_argument("--before", type=Path, default=None, help="an earlier run's output directory (diff)")
    parser.add_argument("--parquet", action="store_true", help="also write each report as parquet")
    args = parser.parse_args(argv)
    try:
        pack(args.out, args.dest, args.before, args.parquet)
    except CrossmarginError as exc:
        print(f"cohort_report: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
