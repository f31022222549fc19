"""The one way the tests run the command line: in this process, or in a child process when a test
needs a real one.

`cli(*args)`: `crossmargin ARGS...` in this process, through typer's CliRunner on crossmargin.cli.app
under the name `crossmargin` (what the console entry point runs: the project's errors become one line
on stderr and their exit code). An exception that is not an exit propagates: a crash is never read as
an exit code.

`cli_process(*args, cwd=, env=, module=)`: the same command in a child process (the console entry
point's exit code and streams, a shell's working directory, an environment of its own, Ray): the
installed `crossmargin` script, or `python -m crossmargin` with module=True. `command(module)` is its
argv prefix, for a test that drives the process itself (Popen, kill -9).

Both return a `Ran`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Ran:
    """What a command did: its exit code and streams. `output` is both streams (in this process in the
    order they were written; from a child process stdout then stderr); `exception` (in this process
    only) the SystemExit of a non-zero exit, else None."""

    exit_code: int
    stdout: str
    stderr: str
    output: str
    exception: BaseException | None = None


def cli(*args: object, env: Mapping[str, str] | None = None) -> Ran:
    """`crossmargin ARGS...` in this process; `env`: variables set while it runs."""
    from typer.testing import CliRunner

    from crossmargin.cli import app

    res = CliRunner().invoke(
        app, [str(a) for a in args], env=env, prog_name="crossmargin", catch_exceptions=False
    )
    return Ran(res.exit_code, res.stdout, res.stderr, res.output, res.exception)


def command(module: bool = False) -> list[str]:
    """The argv prefix of the command in a child process: the installed script (beside this Python),
    or `python -m crossmargin`."""
    if module:
        return [sys.executable, "-m", "crossmargin"]
    return [str(Path(sys.executable).with_name("crossmargin"))]


def cli_process(
    *args: object,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    module: bool = False,
    timeout: float = 300,
) -> Ran:
    """`crossmargin ARGS...` in a child process; `env`: its whole environment (default: this one's)."""
    proc = subprocess.run(
        [*command(module), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=None if env is None else dict(env),
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr, proc.stdout + proc.stderr)


def assert_one_error_line(res: Ran, code: int, *words: str) -> str:
    """The command failed with `code`, printed exactly one line on stderr (holding `words`), no traceback."""
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("crossmargin: error: "), lines[0]
    assert "Traceback" not in res.stderr + res.stdout
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]
