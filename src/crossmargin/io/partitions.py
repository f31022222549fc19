"""The layout of a partitioned root: one run per night in `ROOT/as_of=YYYY-MM-DD/`.

Written by `crossmargin backfill` and the Airflow DAG; read by the baseline rule of a night's run (a
broken feed is not a book: feed.py). Light on purpose (no polars): the DAG imports it in its tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

PRODUCER = "crossmargin"  # manifest.json's "producer" of a run
_NAME = re.compile(r"as_of=(\d{4}-\d\d-\d\d)")


def partition_dir(root: Path, day: dt.date) -> Path:
    return Path(root) / f"as_of={day.isoformat()}"


def run_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest.json of a crossmargin run in `directory`, or None."""
    try:
        manifest = json.loads((Path(directory) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("producer") == PRODUCER else None


def partitions(root: Path) -> dict[dt.date, Path]:
    """Every night of `root` whose partition holds a run, by date."""
    found = {}
    if Path(root).is_dir():
        for entry in Path(root).iterdir():
            name = _NAME.fullmatch(entry.name)
            if name and entry.is_dir() and not entry.is_symlink() and run_manifest(entry) is not None:
                found[dt.date.fromisoformat(name.group(1))] = entry
    return dict(sorted(found.items()))


def baseline_for(root: Path, day: dt.date) -> Path | None:
    """The baseline of night `day`'s input row counts: the previous night's partition, or when that night
    has none (it failed, or was never run) the latest earlier one; None on the root's first night."""
    earlier = [path for night, path in partitions(root).items() if night < day]
    return earlier[-1] if earlier else None
