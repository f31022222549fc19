r"""Nightly entry point for cron: score every account at the given (or last midnight UTC) as_of.

    python jobs/nightly.py --input /data/margin/2025-01-21 --out /data/risk/2025-01-21 [--as-of TS]

cron example (00:30 UTC every day), held to yesterday's run (a broken feed is not a book):
    30 0 * * *  cd /opt/crossmargin && .venv/bin/python jobs/nightly.py \
        --input /data/in/$(date -u +\%F) --out /data/risk/$(date -u +\%F) \
        --baseline /data/risk/$(date -u -d yesterday +\%F)

Same options and exit status as `crossmargin run` (0 ok, 2 option/policy/destination, 3 input
problem or broken feed, 4 data-issue rate above the limit), so cron mail / Airflow sees failures.
Output is quiet without a TTY.
"""

from __future__ import annotations

import datetime as dt
import sys

from crossmargin.cli import app


def last_midnight_utc() -> str:
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: list[str]) -> None:
    """`crossmargin run ARGS`, with --as-of defaulting to the last midnight UTC."""
    if "--as-of" not in argv:
        argv = ["--as-of", last_midnight_utc(), *argv]
    app(["run", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
