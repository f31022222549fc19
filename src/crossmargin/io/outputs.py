"""Outputs: written atomically (all files or none), byte-identical on rerun, never over a stranger's file.

Files are written into a fresh sibling directory `.<out>.tmp-<pid>` and fsynced; the finished
directory then replaces `--out` in one step: `renameat2(RENAME_EXCHANGE)` swaps the two directories
atomically on Linux (a plain rename when `--out` does not exist yet), and the old contents are
removed afterwards. A run killed at any point leaves either the old or the new complete directory;
leftover temporary siblings of killed runs are removed by the next run.

What `--out` may be (`check_destination`, before any work): a path that does not exist, an empty
directory, or a directory holding a previous crossmargin run (its manifest.json) and nothing but
the files that run wrote, each a regular file (one of its names turned into a folder or a symbolic
link is refused: nothing behind such a name is ours). Anything else is refused (exit 2), and so is a
destination equal to, inside, or containing the input directory. The sibling `OUT.rejected/` (data
issues of a run stopped by the issue-rate gate) follows the same rule, and a later run that publishes
removes it, file by file, following no link (`remove_rejected`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source

from crossmargin.errors import DestinationError
from crossmargin.io.inputs import sha256_file
from crossmargin.io.partitions import (
    PRODUCER,  # manifest.json's "producer": how a directory is known to hold our run
)

OUTPUT_TABLES = ["account_risk", "actions", "data_issues"]
SCENARIO_TABLE = "scenario_risk"  # only with `run --scenarios`; then listed in the manifest like the others
# zstd level 1: on 10M accounts 28% faster to write than level 3 for 7% more bytes (as measured when chosen)
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1, "row_group_size": 1_000_000}
# scenario_risk (one row per account and scenario: 9× account_risk with the shipped set) is written
# with LZ4 (LZ4_RAW): on 9M rows it takes 2.35 CPU-s against zstd-1's 3.36, for 11% more bytes
SCENARIO_PARQUET_OPTIONS: dict[str, Any] = {
    **PARQUET_OPTIONS,
    "compression": "lz4",
    "compression_level": None,
}


def scenario_accounts_per_row_group(n_scenarios: int) -> int:
    """Accounts per row group of scenario_risk: as many whole accounts (n_scenarios rows each) as fit
    in the other tables' row group size, so a row group never splits an account's scenarios, and the
    scenario chunks (whole row groups, or even parts of one) reach the writer with nothing to re-cut."""
    return max(1, PARQUET_OPTIONS["row_group_size"] // max(1, n_scenarios))


# outputs bypass the page cache where the system allows it (OutputFile); False: always through it
DIRECT_IO = True


def parquet_options(table: str, n_scenarios: int = 1) -> dict[str, Any]:
    """The writer settings of an output table (scenario_risk: with `n_scenarios` scenarios)."""
    if table != SCENARIO_TABLE:
        return PARQUET_OPTIONS
    rows = n_scenarios * scenario_accounts_per_row_group(n_scenarios)
    return {**SCENARIO_PARQUET_OPTIONS, "row_group_size": rows}


MANIFEST = "manifest.json"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the call is unavailable."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (22, 38, 95):  # EINVAL/ENOSYS/EOPNOTSUPP: filesystem or kernel cannot exchange
            return False
        raise OSError(err, os.strerror(err), str(b))
    return True


def _alive(pid_text: str) -> bool:
    """Whether the process that named a staging dir `.<out>.tmp-<pid>` still runs on this host."""
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def rejected_dir(out: Path) -> Path:
    """Where a run stopped by the issue-rate gate leaves its data issues: the sibling OUT.rejected/."""
    out = out.absolute()
    return out.parent / f"{out.name}.rejected"


def _kind(path: Path) -> str:
    """What a directory entry is, never following a symbolic link: "file" for a regular file."""
    mode = os.lstat(path).st_mode
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a directory" if stat.S_ISDIR(mode) else "a special file"


def _our_files(directory: Path) -> set[str] | None:
    """The file names a crossmargin run wrote into `directory` (per its manifest), or None if not ours.
    A manifest.json that is not a regular file (a symbolic link, a folder) is not ours."""
    path = directory / MANIFEST
    try:
        if _kind(path) != "file":
            return None
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    ours = manifest.get("producer") == PRODUCER or {"software_version", "outputs"} <= manifest.keys()
    outputs = manifest.get("outputs")
    if not ours or not isinstance(outputs, dict):
        return None
    files = {e.get("file") for e in outputs.values() if isinstance(e, dict)}
    return {MANIFEST, *(f for f in files if isinstance(f, str))}


_REFUSE = "refusing to replace it"


def _not_ours(directory: Path) -> str | None:
    """Why a run may not replace the non-empty `directory` (None: it holds a previous run of ours and
    nothing else, each of its files a regular file, not a folder or a symbolic link)."""
    kinds = {p.name: _kind(p) for p in directory.iterdir()}
    if kinds.get(MANIFEST, "file") != "file":
        return f"holds {MANIFEST!r} as {kinds[MANIFEST]}, not as a file a crossmargin run wrote; {_REFUSE}"
    ours = _our_files(directory)
    if ours is None:
        return (
            f"is a non-empty directory without a crossmargin manifest.json; {_REFUSE} "
            "(give a new or empty directory)"
        )
    for name, kind in sorted(kinds.items()):
        if name not in ours:
            return f"holds {name!r}, which the previous crossmargin run did not write; {_REFUSE}"
        if kind != "file":
            return f"holds {name!r} as {kind}, where the previous crossmargin run wrote a file; {_REFUSE}"
    return None


def _check_previous_run(directory: Path, what: str) -> None:
    """Refuse a directory unless it is empty or holds a previous run of ours and nothing else."""
    if not any(directory.iterdir()):
        return
    reason = _not_ours(directory)
    if reason is not None:
        raise DestinationError(f"{what} {directory} {reason}")


def _related(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_destination(out: Path, input_dir: Path | None = None) -> None:
    """Raise DestinationError (exit 2) unless `out` may receive a run; creates, moves, deletes nothing."""
    out = Path(out)
    if out.is_symlink():
        raise DestinationError(f"--out {out} is a symbolic link; give the directory itself")
    real = Path(os.path.realpath(out))
    if input_dir is not None:
        inp = Path(os.path.realpath(input_dir))
        if _related(real, inp):
            where = "is" if real == inp else "is inside" if real.is_relative_to(inp) else "contains"
            raise DestinationError(
                f"--out {out} {where} the input directory {input_dir}; choose another --out"
            )
    if out.exists() and not out.is_dir():
        raise DestinationError(f"--out {out} is an existing file, not a directory; refusing to replace it")
    parent = next((p for p in real.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise DestinationError(f"--out {out}: {parent} is a file, not a directory")
    if out.is_dir():
        _check_previous_run(out, "--out")
    rejected = rejected_dir(out)
    if rejected.is_symlink() or (rejected.exists() and not rejected.is_dir()):
        raise DestinationError(
            f"{rejected} exists and is not a directory of rejected data issues; move it away"
        )
    if rejected.is_dir():
        _check_previous_run(rejected, "the rejected-run directory")


def remove_rejected(out: Path) -> None:
    """After a good publish: drop a stale OUT.rejected/ if it holds only what a rejected run wrote.

    Nothing is followed: OUT.rejected/ must be a directory itself (not a link to one), and each name
    its manifest lists is unlinked only as the regular file it was checked to be; anything else found
    there keeps the directory, and every file in it, where it is."""
    rejected = rejected_dir(out)
    try:
        if _kind(rejected) != "a directory" or _not_ours(rejected) is not None:
            return
        names = sorted(p.name for p in rejected.iterdir())
    except OSError:  # gone meanwhile
        return
    for name in names:
        if name != MANIFEST:
            _unlink_file(rejected / name)
    _unlink_file(rejected / MANIFEST)  # last: until then the directory still says whose it is
    with contextlib.suppress(OSError):  # something appeared meanwhile: it stays, and so does the directory
        rejected.rmdir()


def _unlink_file(path: Path) -> None:
    """Remove `path` if it is still a regular file (a link or folder put there since is left alone)."""
    with contextlib.suppress(OSError):
        if _kind(path) == "file":
            path.unlink()


def staging_dir(out: Path) -> Path:
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):  # left by a killed run (not a live concurrent one)
        if stale.is_dir() and not stale.is_symlink() and not _alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    return tmp


def _rename_new(tmp: Path, out: Path) -> bool:
    """Rename `tmp` to `out` if `out` is still missing; False if another run published it meanwhile
    (then `tmp` is swapped in like any rerun's: the last publisher wins, nothing is left behind)."""
    try:
        os.rename(tmp, out)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


def publish(tmp: Path, out: Path) -> None:
    """Make `tmp` the new `out` in one atomic step; then drop the previous contents."""
    out = out.absolute()
    fsync(tmp)
    if not out.exists() and _rename_new(tmp, out):
        pass
    elif _exchange(tmp, out):
        shutil.rmtree(tmp)  # tmp now holds the previous contents
    else:  # fallback without an atomic exchange: old contents stay recoverable in .old
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old)
    fsync(out.parent)


def sink_chunks(
    chunks: Iterator[pl.DataFrame],
    schema: dict[str, pl.DataType],
    path: Path | OutputFile,
    options: dict[str, Any],
) -> int:
    """Write frames computed one after another into one parquet file, streaming (each is computed as
    the writer asks for it; none is kept): the same bytes as `write_parquet` of them all, however they
    are chunked. Returns the rows written."""
    rows = 0

    def source(with_columns: list[str] | None, predicate: Any, n_rows: int | None, batch_size: int | None):
        nonlocal rows
        for chunk in chunks:
            rows += chunk.height
            yield chunk if with_columns is None else chunk.select(with_columns)

    register_io_source(io_source=source, schema=schema).sink_parquet(path, **options)
    return rows


class OutputFile:
    """A new output file, written once from start to end, hashed as it is written, and kept out of
    the page cache where the system allows it (Linux `O_DIRECT`).

    `with OutputFile(path) as f: frame.write_parquet(f)`; then `f.sha256` is the file's sha256 and
    its data is on disk (fsynced). The writer's bytes are gathered into a page-aligned buffer and
    written in whole blocks that go from the buffer to the disk without a copy into the page cache:
    an output of gigabytes costs no page-cache pages (on a busy machine, the kernel takes those from
    other files' cache, at about 1 CPU-s per GB written on the 2-core box), and its hash needs no
    second read. The last partial block is written through the cache. Where `O_DIRECT` is missing
    or refused (another OS, a filesystem such as tmpfs), the same bytes are written the usual way.
    The file must not exist (`O_EXCL`): an output never replaces a file."""

    BLOCK = 4096  # O_DIRECT's alignment of memory, offsets and lengths (the largest in common use)
    BUFFER = 8 << 20

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        self._direct = DIRECT_IO and hasattr(os, "O_DIRECT")
        try:
            self._fd = os.open(self.path, flags | (os.O_DIRECT if self._direct else 0), 0o644)
        except OSError as exc:
            if not self._direct or exc.errno != errno.EINVAL:
                raise
            self._direct = False  # the filesystem refuses O_DIRECT: write through the cache
            self._fd = os.open(self.path, flags, 0o644)
        self._buffer = mmap.mmap(-1, self.BUFFER)  # anonymous memory: page-aligned
        self._view = memoryview(self._buffer)
        self._filled = 0
        self._hash = hashlib.sha256()
        self.sha256 = ""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        self._hash.update(view)
        at = 0
        while at < len(view):
            take = min(len(view) - at, self.BUFFER - self._filled)
            self._view[self._filled : self._filled + take] = view[at : at + take]
            self._filled += take
            at += take
            if self._filled == self.BUFFER:
                self._write_out(self.BUFFER)
        return len(view)

    def flush(self) -> None:
        """Nothing: the bytes go out in whole buffers, and the rest when the file is closed."""

    def _write_out(self, length: int) -> None:
        """Write buffer[:length] at the end of the file (while O_DIRECT is on, a multiple of BLOCK)."""
        done = 0
        while done < length:
            try:
                done += os.write(self._fd, self._view[done:length])
            except OSError as exc:
                if not self._direct or exc.errno != errno.EINVAL:
                    raise
                self._stop_direct()  # the filesystem took O_DIRECT at open but refuses the write
        self._filled = 0

    def _stop_direct(self) -> None:
        if self._direct:
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
            self._direct = False

    def close(self) -> None:
        """Write what is left (whole blocks directly, the last partial block through the cache), fsync.
        The descriptor is closed whether or not that succeeds."""
        try:
            whole = self._filled - self._filled % self.BLOCK
            tail = bytes(self._view[whole : self._filled])
            self._write_out(whole)
            self._stop_direct()
            self._view[: len(tail)] = tail
            self._write_out(len(tail))
            os.fsync(self._fd)
            self.sha256 = self._hash.hexdigest()
        finally:
            self._release()

    def _release(self) -> None:
        os.close(self._fd)
        self._view.release()
        self._buffer.close()

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if kind is None:
            self.close()
        else:  # the write failed: close without finishing (the run's staging directory is removed)
            self._release()


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    fsync(path)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def verify_outputs(out: Path) -> list[str]:
    """Problems found when rechecking an output directory against its manifest (empty = all good)."""
    out = Path(out)
    path = out / MANIFEST
    if not path.is_file():
        return [f"{path} is missing"]
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"{path} is not valid JSON: {exc}"]
    problems = []
    for name, entry in manifest.get("outputs", {}).items():
        f = out / entry["file"]
        if not f.is_file():
            problems.append(f"{name}: {f.name} is missing")
            continue
        if sha256_file(f) != entry["sha256"]:
            problems.append(f"{name}: checksum of {f.name} differs from manifest")
        try:
            rows = pl.scan_parquet(f).select(pl.len()).collect().item()
        except Exception as exc:
            problems.append(f"{name}: {f.name} unreadable: {exc}")
            continue
        if rows != entry["rows"]:
            problems.append(f"{name}: {rows} rows, manifest says {entry['rows']}")
    missing = [t for t in OUTPUT_TABLES if t not in manifest.get("outputs", {})]
    problems += [f"manifest lists no {t}" for t in missing]
    return problems
