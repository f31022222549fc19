"""Every command block of the README and the docs runs as written, on a copy of the repository.

A command block is a fenced block tagged `bash`, `sh` or `shell`, or not tagged at all (a block of
anything else says what it is: `text`, `sql`, `toml`, `python`). Each runs verbatim, with
`bash -e -o pipefail`, from the top of a fresh copy of the repository (its files as they are in the
working tree, committed to a new git repository), with this venv's `bin` first on PATH, `.venv` a
link to this venv (for `. .venv/bin/activate`) and TMPDIR a temporary directory. It must exit 0 and
leave nothing git would see: what the examples write is ignored (`out/`). The README's blocks run
twice in a row: typing them again must work too.

A block that cannot run here (one that installs, a cluster, a server that runs until stopped) has
the line `<!-- not run by the tests: WHY -->` right above it and is skipped with that reason; any
other block that fails fails its test. A block that installs must be marked: run here it would
re-point this venv's editable install at the copy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import REPO

DOCS = ["README.md", *(f"docs/{p.name}" for p in sorted((REPO / "docs").glob("*.md"))), "jobs/README.md"]
SHELL = {"bash", "sh", "shell", ""}  # the tags of a command block
MARKER = re.compile(r"^<!-- not run by the tests: (?P<why>\S.*) -->$")
FENCE = re.compile(r"^```(?P<tag>\S*)\s*$")
INSTALLS = re.compile(r"\bpip3? install\b|-m venv\b")
TWICE = {"README.md"}


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # 1-based line of the opening fence
    tag: str
    text: str
    skip: str | None  # the marker's reason, if the line above the fence is a marker

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def fenced_blocks(doc: str) -> list[Block]:
    """Every fenced block of a markdown file, with the marker line above it, if any."""
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = MARKER.match(lines[i - 1]) if i else None
        text = "\n".join(lines[i + 1 : end]) + "\n"
        blocks.append(Block(doc, i + 1, opening["tag"], text, marker and marker["why"]))
        i = end + 1
    return blocks


COMMANDS = [b for doc in DOCS for b in fenced_blocks(doc) if b.tag in SHELL]


# ------------------------------------------------------------------ the blocks found


def test_the_docs_hold_command_blocks_run_and_marked() -> None:
    ran = [b for b in COMMANDS if b.skip is None]
    assert len(ran) >= 6 and len(COMMANDS) - len(ran) >= 4
    assert {b.doc for b in ran} == set(DOCS) - {"docs/conventions.md", "docs/rules.md", "docs/design.md"}
    assert any("crossmargin sql pro_eligibility_funnel" in b.text for b in ran)  # the analyst block
    assert any("airflow dags test" in b.text for b in ran)


def test_ci_runs_the_two_commands_the_readme_opens_with() -> None:
    """.ci/run runs, as written, the README's first two blocks: set up and run the sample; lint and test."""
    first_two = [b.text.strip().splitlines()[-1] for b in fenced_blocks("README.md")[:2]]
    assert "crossmargin run" in first_two[0] and "pytest" in first_two[1]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = ci[ci.index("# --- the README's two commands ---") + 1 :]
    assert [c for c in commands if c.strip()] == first_two


@pytest.mark.parametrize("doc", DOCS)
def test_every_marker_sits_right_above_a_command_block(doc: str) -> None:
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("<!--") and "not run by the tests" in line:
            assert MARKER.match(line), f"{doc}:{i + 1}: write it as <!-- not run by the tests: WHY -->"
            below = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
            assert below and below["tag"] in SHELL, (
                f"{doc}:{i + 1}: the marker is not right above a command block"
            )


@pytest.mark.parametrize("block", [b for b in COMMANDS if b.skip is None], ids=lambda b: b.id)
def test_a_block_run_here_installs_nothing(block: Block) -> None:
    assert not INSTALLS.search(block.text), f"{block.id} installs: mark it <!-- not run by the tests: ... -->"


# ------------------------------------------------------------------ running them


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=docs", "-c", "user.email=docs@invalid", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def repo_copy(dest: Path) -> Path:
    """The working tree's files (tracked, or untracked and not ignored) committed to a new git
    repository at dest, `.venv` a link to this venv (and ignored there)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    names = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, names):
        src = REPO / name
        if src.is_file() or src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name, follow_symlinks=False)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "copy")
    (dest / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    with (dest / ".git" / "info" / "exclude").open("a") as f:
        f.write(".venv\n")
    return dest


@contextmanager
def short_tmpdir() -> Iterator[Path]:
    """A temporary directory with a short path (Ray puts its sockets there, 107 bytes at most)."""
    path = Path(tempfile.mkdtemp(prefix="cm-docs-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def block_env(tmp: Path) -> dict[str, str]:
    """This environment with the venv first on PATH, TMPDIR at tmp, and no Airflow or crossmargin
    setting of its own (a block sets what it needs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CROSSMARGIN_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp)
    return env


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.text],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{block.id} exited {proc.returncode}:\n{block.text}"
        f"--- stdout (end)\n{proc.stdout[-3000:]}\n--- stderr (end)\n{proc.stderr[-3000:]}"
    )


@pytest.mark.parametrize("block", COMMANDS, ids=lambda b: b.id)
def test_doc_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    if block.skip is not None:
        pytest.skip(f"marked in {block.doc}: {block.skip}")
    copy = repo_copy(tmp_path / "clone")
    with short_tmpdir() as tmp:
        for _ in range(2 if block.doc in TWICE else 1):
            run_block(block, copy, block_env(tmp))
            left = _git(copy, "status", "--porcelain")
            assert left == "", (
                f"{block.id} left files git would see (ignore them, or write under out/):\n{left}"
            )
