"""What `--out` may be: a new path, an empty directory, or a directory holding only a previous run.

Every other destination is refused before any work: exit 2, one line on stderr naming the problem,
nothing created, moved or deleted (every pre-existing file byte-identical afterwards). Bad options
are refused the same way, in every command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from crossmargin.io import outputs
from support import SAMPLE
from support.cli import cli, cli_process

AS_OF = "2025-01-21T10:00:00Z"


def snapshot(root: Path) -> dict[str, str]:
    """The whole tree under root, nothing followed: every path with its type and content (a file's
    mode and sha256, a symbolic link's target, a directory's mode)."""
    out = {}
    for folder, dirs, files in os.walk(root):  # a link to a folder is listed, never entered
        for name in dirs + files:
            p = Path(folder, name)
            info = p.lstat()
            if p.is_symlink():
                out[str(p.relative_to(root))] = "link -> " + os.readlink(p)
            elif p.is_dir():
                out[str(p.relative_to(root))] = f"dir {info.st_mode:o}"
            else:
                out[str(p.relative_to(root))] = (
                    f"file {info.st_mode:o} {hashlib.sha256(p.read_bytes()).hexdigest()}"
                )
    return out


def assert_only_changed(before: dict[str, str], after: dict[str, str], *runs: Path, root: Path) -> None:
    """Nothing changed under root but inside the given run directories (none: nothing at all)."""
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    mine = [str(r.relative_to(root)) for r in runs]
    others = sorted(p for p in changed if not any(p == m or p.startswith(m + os.sep) for m in mine))
    assert others == [], f"changed outside {mine}: {others}"


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """tmp/in: a copy of the sample inputs; tmp/prev: a previous run; tmp/notes: someone's notes."""
    shutil.copytree(SAMPLE, tmp_path / "in")
    (tmp_path / "in" / "README.md").unlink()
    res = cli("run", "--as-of", AS_OF, "--input", str(tmp_path / "in"), "--out", str(tmp_path / "prev"))
    assert res.exit_code == 0, res.output
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine\n")
    (tmp_path / "a_file.txt").write_text("mine too\n")
    return tmp_path


def _with_extra(w: Path) -> Path:
    (w / "prev" / "my_notes.md").write_text("not written by crossmargin\n")
    return w / "prev"


def _foreign_manifest(w: Path) -> Path:
    d = w / "other_tool"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"tool": "something else"}))
    return d


def _symlink(w: Path) -> Path:
    (w / "link").symlink_to(w / "prev")
    return w / "link"


def _rejected_is_a_file(w: Path) -> Path:
    (w / "fresh.rejected").write_text("someone's file\n")
    return w / "fresh"


def _rejected_with_stranger(w: Path) -> Path:
    (w / "fresh2.rejected").mkdir()
    (w / "fresh2.rejected" / "keep.txt").write_text("mine\n")
    return w / "fresh2"


def _output_is_a_link(w: Path) -> Path:
    """data_issues.parquet of the previous run turned into a symbolic link to a user's file."""
    (w / "prev" / "data_issues.parquet").unlink()
    (w / "prev" / "data_issues.parquet").symlink_to(w / "notes" / "keep.txt")
    return w / "prev"


def _output_is_a_folder(w: Path) -> Path:
    """actions.parquet of the previous run turned into a folder holding a file."""
    (w / "prev" / "actions.parquet").unlink()
    (w / "prev" / "actions.parquet").mkdir()
    (w / "prev" / "actions.parquet" / "part-0.parquet").write_text("someone's part\n")
    return w / "prev"


def _manifest_is_a_link(w: Path) -> Path:
    """manifest.json of the previous run moved into the user's folder, a symbolic link left in its place."""
    os.replace(w / "prev" / "manifest.json", w / "notes" / "manifest.json")
    (w / "prev" / "manifest.json").symlink_to(w / "notes" / "manifest.json")
    return w / "prev"


def _rejected_is_a_link(w: Path) -> Path:
    (w / "fresh3.rejected").symlink_to(w / "notes")
    return w / "fresh3"


def _rejected_output_is_a_link(w: Path) -> Path:
    """A run stopped by the issue-rate gate, whose data_issues.parquet then became a link to a user's file."""
    out = w / "daily"
    res = cli("run", "--as-of", AS_OF, "--input", str(_bad_input(w)), "--out", str(out))
    assert res.exit_code == 4, res.output
    (w / "daily.rejected" / "data_issues.parquet").unlink()
    (w / "daily.rejected" / "data_issues.parquet").symlink_to(w / "a_file.txt")
    return out


REFUSED = {
    "existing_file": (lambda w: w / "a_file.txt", "is an existing file"),
    "folder_of_notes": (lambda w: w / "notes", "without a crossmargin manifest.json"),
    "previous_run_plus_a_stranger": (
        _with_extra,
        "'my_notes.md', which the previous crossmargin run did not write",
    ),
    "foreign_manifest": (_foreign_manifest, "without a crossmargin manifest.json"),
    "the_input_directory": (lambda w: w / "in", "is the input directory"),
    "inside_the_input": (lambda w: w / "in" / "out", "is inside the input directory"),
    "containing_the_input": (lambda w: w, "contains the input directory"),
    "symbolic_link": (_symlink, "is a symbolic link"),
    "rejected_sibling_is_a_file": (_rejected_is_a_file, "is not a directory of rejected data issues"),
    "rejected_sibling_holds_a_stranger": (_rejected_with_stranger, "without a crossmargin manifest.json"),
    "rejected_sibling_is_a_link": (_rejected_is_a_link, "is not a directory of rejected data issues"),
    "output_name_is_a_symbolic_link": (
        _output_is_a_link,
        "holds 'data_issues.parquet' as a symbolic link, where the previous crossmargin run wrote a file",
    ),
    "output_name_is_a_folder": (
        _output_is_a_folder,
        "holds 'actions.parquet' as a directory, where the previous crossmargin run wrote a file",
    ),
    "manifest_is_a_symbolic_link": (_manifest_is_a_link, "holds 'manifest.json' as a symbolic link"),
    "rejected_output_is_a_symbolic_link": (
        _rejected_output_is_a_link,
        "daily.rejected holds 'data_issues.parquet' as a symbolic link",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_destination_changes_nothing(case, world):
    make, message = REFUSED[case]
    out = make(world)
    before = snapshot(world)
    res = cli("run", "--as-of", AS_OF, "--input", str(world / "in"), "--out", str(out))
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crossmargin: error: "), res.stderr
    assert message in lines[0]
    assert "Traceback" not in res.output
    assert_only_changed(before, snapshot(world), root=world)  # nothing created, moved or deleted


def test_dot_as_out_is_refused_from_a_real_shell(world):
    """`crossmargin run --input in --out .` typed in the folder holding the inputs (a real process)."""
    before = snapshot(world)
    proc = cli_process("run", "--as-of", AS_OF, "--input", "in", "--out", ".", cwd=world, module=True)
    assert proc.exit_code == 2
    assert (
        proc.stderr.strip()
        == "crossmargin: error: --out . contains the input directory in; choose another --out"
    )
    assert proc.stdout == ""
    assert_only_changed(before, snapshot(world), root=world)


RUN_FILES = ["account_risk.parquet", "actions.parquet", "data_issues.parquet", "manifest.json"]


@pytest.mark.parametrize("where", ["new_path", "empty_directory", "previous_run"])
def test_accepted_destinations(where, world):
    """A new path (parents created), an empty directory, and a previous run (replaced): only the run's
    own directory changes, and it holds the run's files and nothing else."""
    (world / "empty").mkdir()
    out = {"new_path": world / "new" / "deep" / "out", "empty_directory": world / "empty"}.get(
        where, world / "prev"
    )
    before = snapshot(world)
    res = cli("run", "--as-of", AS_OF, "--input", str(world / "in"), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    if where == "new_path":  # its parents are created too, holding nothing else
        assert [p.name for p in (world / "new").iterdir()] == ["deep"]
        assert [p.name for p in (world / "new" / "deep").iterdir()] == ["out"]
        out = world / "new"
    assert_only_changed(before, snapshot(world), out, root=world)


def _bad_input(world: Path) -> Path:
    """The sample inputs with every balance negative: every holder is a data issue (exit 4)."""
    bad = world / "bad_in"
    shutil.copytree(world / "in", bad)
    balances = pl.read_parquet(bad / "balances.parquet").with_columns(pl.col("free") * -1 - 1)
    balances.write_parquet(bad / "balances.parquet")
    return bad


def test_rejected_run_is_ours_and_a_later_good_run_removes_it(world):
    out = world / "daily"
    rejected = world / "daily.rejected"
    bad = _bad_input(world)
    before = snapshot(world)
    res = cli("run", "--as-of", AS_OF, "--input", str(bad), "--out", str(out))
    assert res.exit_code == 4, res.output
    assert sorted(p.name for p in rejected.iterdir()) == ["data_issues.parquet", "manifest.json"]
    assert json.loads((rejected / "manifest.json").read_text())["status"] == "rejected"
    assert not out.exists()
    assert_only_changed(before, snapshot(world), rejected, root=world)
    res = cli("run", "--as-of", AS_OF, "--input", str(world / "in"), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert not rejected.exists()  # the stale rejection went with the good run
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    assert_only_changed(before, snapshot(world), out, root=world)


def test_a_rejected_directory_holding_a_stranger_survives_a_good_run(world):
    """A good run never deletes what it did not write: it refuses instead (exit 2) and keeps the file."""
    out = world / "daily"
    assert cli("run", "--as-of", AS_OF, "--input", str(_bad_input(world)), "--out", str(out)).exit_code == 4
    (world / "daily.rejected" / "analysis.txt").write_text("mine\n")
    before = snapshot(world)
    res = cli("run", "--as-of", AS_OF, "--input", str(world / "in"), "--out", str(out))
    assert res.exit_code == 2
    assert "'analysis.txt', which the previous crossmargin run did not write" in res.stderr
    assert_only_changed(before, snapshot(world), root=world)
    assert (world / "daily.rejected" / "analysis.txt").read_text() == "mine\n"


def _rejected_run(world: Path) -> Path:
    """`world/daily.rejected`: what a run stopped by the issue-rate gate leaves."""
    res = cli("run", "--as-of", AS_OF, "--input", str(_bad_input(world)), "--out", str(world / "daily"))
    assert res.exit_code == 4, res.output
    return world / "daily.rejected"


def _swap_in_a_link(rejected: Path, world: Path) -> None:
    """Its data_issues.parquet replaced by a link to a user's file."""
    (rejected / "data_issues.parquet").unlink()
    (rejected / "data_issues.parquet").symlink_to(world / "notes" / "keep.txt")


def _moved_behind_a_link(rejected: Path, world: Path) -> None:
    """The whole directory moved into the user's folder, a link left in its place."""
    os.replace(rejected, world / "notes" / "kept_run")
    rejected.symlink_to(world / "notes" / "kept_run")


def _a_stranger_inside(rejected: Path, world: Path) -> None:
    (rejected / "analysis.txt").write_text("mine\n")


@pytest.mark.parametrize("change", [_swap_in_a_link, _moved_behind_a_link, _a_stranger_inside])
def test_removing_a_stale_rejection_follows_no_link_and_keeps_strangers(change, world):
    """What changed in OUT.rejected/ after the destination check (between the check and the end of the
    run) is still not removed: a link, a directory reached through a link, a stranger's file."""
    rejected = _rejected_run(world)
    change(rejected, world)
    before = snapshot(world)
    outputs.remove_rejected(world / "daily")
    assert_only_changed(before, snapshot(world), root=world)


def test_removing_a_stale_rejection_removes_only_its_files(world):
    """The positive control: an untouched OUT.rejected/ goes, and nothing else."""
    rejected = _rejected_run(world)
    before = snapshot(world)
    outputs.remove_rejected(world / "daily")
    assert not rejected.exists()
    assert_only_changed(before, snapshot(world), rejected, root=world)


BAD_OPTIONS = {
    "max_issue_rate_above_1": (
        ["run", "--as-of", AS_OF, "--max-issue-rate", "5"],
        "--max-issue-rate 5.0 is outside [0, 1]",
    ),
    "max_issue_rate_negative": (["run", "--as-of", AS_OF, "--max-issue-rate", "-0.1"], "outside [0, 1]"),
    "buckets_negative": (["run", "--as-of", AS_OF, "--buckets", "-1"], "--buckets -1 must be at least 1"),
    "buckets_zero": (["run", "--as-of", AS_OF, "--buckets", "0"], "--buckets 0 must be at least 1"),
    "as_of_not_a_time": (["run", "--as-of", "yesterday"], "is not an ISO-8601 timestamp"),
    "as_of_naive": (["run", "--as-of", "2025-01-21T10:00:00"], "has no time zone"),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_run_options_exit_2_with_one_line_before_any_work(case, world):
    args, message = BAD_OPTIONS[case]
    before = snapshot(world)
    res = cli(*args, "--input", str(world / "in"), "--out", str(world / "new_out"))
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [
        f"crossmargin: error: {res.stderr.strip().split('error: ', 1)[1]}"
    ]
    assert message in res.stderr
    assert_only_changed(before, snapshot(world), root=world)


SAMPLE_OPTIONS = {
    "accounts_negative": (["--accounts", "-5"], "--accounts -5 must be at least 1"),
    "accounts_zero": (["--accounts", "0"], "--accounts 0 must be at least 1"),
    "unknown_format": (["--accounts", "5", "--format", "xlsx"], "--format 'xlsx' is not one of parquet, csv"),
    "faults_above_1": (["--accounts", "5", "--faults", "2"], "--faults 2.0 is outside [0, 1]"),
    "seed_negative": (["--accounts", "5", "--seed", "-1"], "--seed -1 must be at least 0"),
}


@pytest.mark.parametrize("case", list(SAMPLE_OPTIONS))
def test_bad_sample_options_exit_2_with_one_line(case, tmp_path):
    args, message = SAMPLE_OPTIONS[case]
    (tmp_path / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    res = cli("sample", *args, "--out", str(tmp_path / "s"))
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr
    assert not (tmp_path / "s").exists()
    assert_only_changed(before, snapshot(tmp_path), root=tmp_path)


def test_sample_refuses_a_directory_holding_files(world):
    before = snapshot(world)
    res = cli("sample", "--accounts", "5", "--out", str(world / "notes"))
    assert res.exit_code == 2 and "not an empty directory" in res.stderr
    assert_only_changed(before, snapshot(world), root=world)


def test_version():
    proc = cli_process("--version", module=True)
    from crossmargin import __version__

    assert proc.exit_code == 0, proc.stderr
    assert proc.stdout.strip() == f"crossmargin {__version__}"


def test_bad_policy_file_exits_2_with_one_line_and_writes_nothing(world):
    policy = world / "notes" / "policy.toml"
    policy.write_text("not toml [[\n")
    before = snapshot(world)
    res = cli(
        *[
            "run",
            "--as-of",
            AS_OF,
            "--input",
            str(world / "in"),
            "--out",
            str(world / "new"),
            "--policy",
            str(policy),
        ],
    )
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("crossmargin: error: policy ")
        and "not valid TOML" in lines[0]
    )
    assert_only_changed(before, snapshot(world), root=world)
