"""Nightly entry point for cron: score every account at the given (or last midnight UTC) as_of.

    python jobs/nightly.py --input /data/margin/2025-01-21 --out /data/risk/2025-01-21 [--as-of TS]

cron example (00:30 UTC every day):
    30 0 * * *  cd /opt/crossmargin && .venv/bin/python jobs/nightly.py --input /data/in/$(date -u +\%F) --out /data/risk/$(date -u +\%F)

Exit status is the job's (0 ok, 3 input schema problem, 4 data-issue rate above the limit), so cron
mail / Airflow sees failures. Output is quiet without a TTY.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from crossmargin.errors import CrossmarginError
from crossmargin.pipeline import run_job


def last_midnight_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--as-of", help="UTC timestamp; default: last midnight UTC")
    parser.add_argument("--policy", type=Path)
    parser.add_argument("--max-issue-rate", type=float, default=0.01)
    args = parser.parse_args(argv)
    as_of = (
        dt.datetime.fromisoformat(args.as_of.replace("Z", "+00:00")).astimezone(dt.UTC)
        if args.as_of
        else last_midnight_utc()
    )
    try:
        print(run_job(as_of, args.input, args.out, args.policy, args.max_issue_rate))
    except CrossmarginError as exc:
        print(f"crossmargin nightly: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
