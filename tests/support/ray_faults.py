"""Bucket tasks that fail on purpose, for tests/e2e/test_ray_executor.py (imported by the Ray workers)."""

from __future__ import annotations

import os
from pathlib import Path

from crossmargin.job import BucketResult, score_bucket_from_files


class InjectedFailure(RuntimeError):
    pass


def fail_once(marker: Path, *args: object) -> BucketResult:
    """The first attempt of whichever bucket gets here first fails (it creates `marker`); then normal."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return score_bucket_from_files(*args)
    raise InjectedFailure("injected failure, first attempt")


def always_fail_bucket_2(attempts: Path, *args: object) -> BucketResult:
    """Bucket index 1 fails on every attempt (each one appends a line to `attempts`); the others score."""
    bucket = args[3]
    if bucket != 1:
        return score_bucket_from_files(*args)
    with open(attempts, "a") as fh:
        fh.write("attempt\n")
    raise InjectedFailure("injected failure, every attempt")
