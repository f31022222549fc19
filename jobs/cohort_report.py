"""Nightly analyst pack for one run: every SQL report as CSV, the HTML cohort report, and the diff.

Thin entry point over `crossmargin.analytics` (the same code as `crossmargin sql`, `crossmargin report`
and `crossmargin diff`), for a scheduler to call after `crossmargin run`:

    python jobs/cohort_report.py --out out/2025-01-21 --dest reports/2025-01-21 [--before out/2025-01-20]

writes into DEST: `<report>.csv` for every report of `sql/` (`<report>.parquet` as well with
`--parquet`), `cohort_report.html`, and `diff.parquet` when `--before` is given. Exit 0 on success,
2 when OUT (or BEFORE) is not a run's output directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crossmargin.analytics.diff import DiffError, diff_runs, summarize
from crossmargin.analytics.html import write_report
from crossmargin.analytics.sql import ReportError, csv_safe, list_reports, run_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the run's output directory")
    parser.add_argument("--dest", type=Path, required=True, help="directory to write the reports into")
    parser.add_argument("--before", type=Path, default=None, help="an earlier run's output directory (diff)")
    parser.add_argument("--parquet", action="store_true", help="also write each report as parquet")
    args = parser.parse_args(argv)

    args.dest.mkdir(parents=True, exist_ok=True)
    try:
        for name in list_reports():
            df = run_report(name, args.out)
            csv_safe(df).write_csv(args.dest / f"{name}.csv")
            if args.parquet:
                df.write_parquet(args.dest / f"{name}.parquet")
            print(f"{name}: {df.height} rows")
        html = write_report(args.out, args.dest / "cohort_report.html")
        print(f"report: {html}")
        if args.before is not None:
            diff = diff_runs(args.before, args.out)
            diff.write_parquet(args.dest / "diff.parquet")
            counts = ", ".join(f"{c}={n}" for c, n in summarize(diff).iter_rows() if n)
            print(f"diff: {diff.height} changes ({counts or 'none'})")
    except (ReportError, DiffError) as exc:
        print(f"cohort_report: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
