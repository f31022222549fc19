"""Progress for long runs: a rich progress bar on a terminal, silence in cron (no TTY)."""

from __future__ import annotations

import sys
from typing import Self


class Progress:
    def __init__(self, total: int, description: str) -> None:
        self._bar = None
        if sys.stderr.isatty() and total > 1:
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(transient=True)
            self._task = self._bar.add_task(description, total=total)

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
