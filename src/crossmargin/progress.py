"""Progress for long runs: a rich progress bar on a terminal, silence in cron (no TTY)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self


class Progress:
    """Steps of a run (buckets, writing); drawn on stderr only when it is a terminal."""

    def __init__(self, total: int, description: str) -> None:
        self._bar = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            self._task = self._bar.add_task(description, total=total)

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def step(self, description: str) -> None:
        """Say what the run is doing now."""
        if self._bar is not None:
            self._bar.update(self._task, description=description)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hide the bar while a nested step draws its own (older rich allows one live display at once)."""
        if self._bar is None:
            yield
            return
        self._bar.stop()
        try:
            yield
        finally:
            self._bar.start()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
