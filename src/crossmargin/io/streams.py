"""Output files written as their frames arrive, bucket after bucket, with no merge afterwards.

A run scores its book in account-id buckets, one after another (bounded memory). Each output table is
one `TableStream`: a thread sinks the frames the buckets hand it, in order, into one parquet file
(polars' writer pulling from a generator: the same bytes as one `write_parquet` of them all, however
the buckets cut the book), hashed as it is written (`outputs.OutputFile`). The writing of one bucket's
frames overlaps the scoring of the next; at most one frame waits per table, so memory stays about one
bucket's outputs. The Ray engine, whose buckets are written on other machines, writes part files and
merges them instead (job.merge_parts).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import polars as pl

from crossmargin.io.outputs import OutputFile, sink_chunks

_END = object()  # what closes a stream


class TableStream:
    """One output file fed frame by frame (`put`), finished by `close`: (rows, sha256)."""

    def __init__(self, path: Path, schema: dict[str, pl.DataType], options: dict[str, Any]) -> None:
        self._frames: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._file = OutputFile(path)
        self._error: BaseException | None = None
        self.rows = 0
        self._thread = threading.Thread(target=self._write, args=(schema, options), daemon=True)
        self._thread.start()

    def _frames_until_closed(self):
        while (frame := self._frames.get()) is not _END:
            yield frame

    def _write(self, schema: dict[str, pl.DataType], options: dict[str, Any]) -> None:
        try:
            with self._file as f:  # closed (fsynced, hashed) when the sink ends, released if it fails
                self.rows = sink_chunks(self._frames_until_closed(), schema, f, options)
        except BaseException as exc:  # handed to the run's thread by put / close
            self._error = exc
            while True:  # unblock a put waiting on the full queue, until closed
                if self._frames.get() is _END:
                    break

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, frame: pl.DataFrame) -> None:
        """Hand over the next frame (waits while the previous one is still being written)."""
        self._check()
        self._frames.put(frame)

    def close(self) -> tuple[int, str]:
        """Finish the file: its rows and sha256 (the writer's error, if it failed)."""
        self._frames.put(_END)
        self._thread.join()
        self._check()
        return self.rows, self._file.sha256

    def abandon(self) -> None:
        """Stop without finishing (the run failed): the file is left for the staging directory's removal."""
        self._frames.put(_END)
        self._thread.join()
