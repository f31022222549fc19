"""A run's output directory as the analyst surfaces read it, and the files they write.

- `out_dir_from_env()`: the run directory named by `$CROSSMARGIN_OUT`, for the notebooks. A relative
  value is resolved from the directory where the command was typed, not from the process's working
  directory: `CROSSMARGIN_OUT=out/today jupyter lab notebooks/` starts each notebook kernel in
  `notebooks/`, but the shell exported `PWD` (the directory the command was typed in) and the kernel
  inherits it. So the value is looked up under `$PWD` first, then under the working directory.
- `read_manifest()` / `require_run()`: a directory is a run's output directory when it holds a readable
  `manifest.json` (a JSON object whose `outputs` entries each name a file, a row count and a checksum)
  and the three parquet outputs. Anything else is a `RunDirError`: one line, exit 2.
- `write_dest()`: every file an analyst command writes goes through it. The file is written beside its
  destination and renamed into place (never half-written). An existing file is replaced only if
  crossmargin wrote it (a parquet file carrying the `crossmargin` metadata key of the same command,
  an HTML report carrying the generator tag) or when the user says `--force`; a CSV file is never
  recognised as ours, so replacing one needs `--force`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crossmargin.errors import CrossmarginError

MANIFEST = "manifest.json"
OUTPUT_FILES = {
    "account_risk": "account_risk.parquet",
    "actions": "actions.parquet",
    "data_issues": "data_issues.parquet",
}
ENV_VAR = "CROSSMARGIN_OUT"
PARQUET_KEY = "crossmargin"  # parquet key-value metadata: the command that wrote the file
HTML_GENERATOR = '<meta name="generator" content="crossmargin report">'


class RunDirError(CrossmarginError):
    """A directory that is not a run's output directory, or a corrupt manifest.json."""

    exit_code = 2


class DestinationError(CrossmarginError):
    """A file an analyst command was told to write cannot be written, or must not be replaced."""

    exit_code = 2


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors can span many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# ------------------------------------------------------------------ reading a run
def out_dir_from_env(var: str = ENV_VAR) -> Path:
    """The run directory named by the environment variable `var`, as an absolute path.

    A relative value is resolved from `$PWD` (the directory the command was typed in, exported by the
    shell) when that holds it, else from the working directory (see the module docstring).
    """
    value = os.environ.get(var, "").strip()
    if not value:
        raise RunDirError(
            f"set {var} to a run's output directory, e.g. {var}=out/today jupyter lab notebooks/"
        )
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    bases = []
    pwd = os.environ.get("PWD", "")
    if pwd and Path(pwd).is_absolute() and Path(pwd).is_dir():
        bases.append(Path(pwd))
    bases.append(Path.cwd())
    candidates = [base / path for base in bases]
    found = next((c for c in candidates if c.is_dir()), None)
    if found is None:
        looked = " nor ".join(str(c) for c in dict.fromkeys(candidates))
        raise RunDirError(f"{var}={value}: no such directory (neither {looked})")
    return found.resolve()


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest of a run's output directory, checked; `RunDirError` if it is missing or corrupt."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        raise RunDirError(f"{out_dir} is not a run's output directory (no such directory)")
    if not out_dir.is_dir():
        raise RunDirError(f"{out_dir} is not a run's output directory (not a directory)")
    path = out_dir / MANIFEST
    if not path.is_file():
        raise RunDirError(f"{out_dir} is not a run's output directory (no {MANIFEST})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirError(f"{path} is corrupt: {one_line(exc)}") from None
    if not isinstance(doc, dict):
        raise RunDirError(f"{path} is corrupt: not a JSON object")
    outputs = doc.get("outputs")
    if not isinstance(outputs, dict):
        raise RunDirError(f"{path} is corrupt: no 'outputs' object")
    for name, entry in outputs.items():
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("file"), str)
            and isinstance(entry.get("rows"), int)
            and isinstance(entry.get("sha256"), str)
        )
        if not ok:
            raise RunDirError(f"{path} is corrupt: outputs.{name} needs a file, a row count and a sha256")
    return doc


def require_run(out_dir: Path) -> dict[str, Any]:
    """Check that `out_dir` is a run's output directory (manifest and the three parquet files)."""
    doc = read_manifest(out_dir)
    missing = [f for f in OUTPUT_FILES.values() if not (Path(out_dir) / f).is_file()]
    if missing:
        raise RunDirError(f"{out_dir} is not a run's output directory (missing {', '.join(missing)})")
    return doc


# ------------------------------------------------------------------ writing a file
def written_by(path: Path, kind: str) -> bool:
    """True if `path` is a file the analyst command `kind` wrote (see the module docstring)."""
    path = Path(path)
    try:
        if path.suffix == ".html":
            with path.open("rb") as fh:
                return HTML_GENERATOR.encode() in fh.read(1024)
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.read_metadata(path).metadata or {}
            return meta.get(PARQUET_KEY.encode()) == kind.encode()
    except Exception:  # unreadable or not what its name says: not ours
        return False
    return False


def write_dest(dest: Path, write: Callable[[Path], None], *, kind: str, force: bool = False) -> Path:
    """Write a file with `write(tmp_path)` and rename it to `dest` (see the module docstring)."""
    dest = Path(dest)
    if dest.is_dir():
        raise DestinationError(f"{dest} is a directory; give a file name")
    if dest.exists() and not force and not written_by(dest, kind):
        raise DestinationError(
            f"refusing to replace {dest}: crossmargin {kind} did not write it (--force replaces it)"
        )
    blocker = next((p for p in dest.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise DestinationError(f"cannot write {dest}: {blocker} is not a directory")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        tmp.replace(dest)
    except Exception as exc:
        import polars as pl

        if not isinstance(exc, OSError | pl.exceptions.PolarsError):
            raise
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        raise DestinationError(f"cannot write {dest}: {reason}") from None
    return dest
