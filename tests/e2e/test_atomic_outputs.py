"""Outputs are atomic, reproducible and verifiable (docs/rules.md §7).

- rerun: same inputs and as_of give byte-identical parquet files and the same manifest apart from
  started_at / finished_at;
- manifest.json records input row counts and checksums, output row counts and checksums, policy and
  software version; `crossmargin verify --out DIR` passes on a run and fails after any tampering;
- kill -9 of `crossmargin run` at many moments (startup, staging, each file being written, right
  before / during / after publishing) leaves --out holding exactly one complete run, the previous
  or the new one, byte for byte, never a mix; the next run removes a killed run's leftovers;
- a failure inside the run (an exception while writing) leaves --out as it was and no staging dir;
- --max-issue-rate: above it the run exits 4, --out is untouched and data_issues goes to
  `<out>.rejected/data_issues.parquet`; at it (not above) the run succeeds.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

import crossmargin
from crossmargin.io import outputs
from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.job import run_job
from crossmargin.synthetic.writer import write_inputs
from support.cli import cli, cli_process, command
from support.inputs import NEW, balance, clean_tables, frame

AS_OF_1 = "2025-01-21T10:00:00Z"  # new Pro formula
AS_OF_2 = "2025-01-20T12:00:00Z"  # old formula: different content, same input
OUTPUT_FILES = {"account_risk.parquet", "actions.parquet", "data_issues.parquet", "manifest.json"}
TIMESTAMPS = {"started_at", "finished_at"}


def run_cli(inp: Path, out: Path, as_of: str = AS_OF_1, *extra: str):
    return cli("run", "--as-of", as_of, "--input", str(inp), "--out", str(out), *extra)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashes(out: Path) -> dict[str, str]:
    return {p.name: sha(p) for p in sorted(out.iterdir())}


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def without_times(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in TIMESTAMPS}


@pytest.fixture(scope="module")
def small_input(tmp_path_factory) -> Path:
    return write_inputs(clean_tables(2_000, seed=21), tmp_path_factory.mktemp("small") / "in")


# ---------------------------------------------------------------------------- rerun


def test_rerun_is_byte_identical_and_manifest_differs_only_in_times(tmp_path, small_input):
    r1 = run_cli(small_input, tmp_path / "a")
    assert r1.exit_code == 0, r1.output
    time.sleep(0.01)  # make the timestamps differ
    r2 = run_cli(small_input, tmp_path / "b")
    assert r2.exit_code == 0, r2.output
    a, b = hashes(tmp_path / "a"), hashes(tmp_path / "b")
    assert set(a) == OUTPUT_FILES
    for name in OUTPUT_FILES - {"manifest.json"}:
        assert a[name] == b[name], name
    ma, mb = manifest(tmp_path / "a"), manifest(tmp_path / "b")
    assert without_times(ma) == without_times(mb)
    assert ma["started_at"] <= ma["finished_at"]
    assert set(ma) >= TIMESTAMPS
    # a rerun into the same --out replaces it with the same bytes
    r3 = run_cli(small_input, tmp_path / "a")
    assert r3.exit_code == 0, r3.output
    again = hashes(tmp_path / "a")
    assert {k: v for k, v in again.items() if k != "manifest.json"} == {
        k: v for k, v in a.items() if k != "manifest.json"
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no staging leftovers


def test_rerun_is_byte_identical_on_a_larger_input(tmp_path):
    """40k accounts: an account's balance rows can straddle two streaming morsels (observed even with
    rows sorted by account_id; far more often with rows sorted by asset, as here)."""
    t = clean_tables(40_000, seed=8)
    t["balances"] = t["balances"].sort("asset", "account_id")  # an export ordered by asset
    inp = tmp_path / "in"
    inp.mkdir()
    for name, df in t.items():
        df.write_parquet(inp / f"{name}.parquet", row_group_size=5_000)
    digests = []
    for i in range(2):
        run_job(NEW, inp, tmp_path / f"out{i}")
        digests.append({k: v for k, v in hashes(tmp_path / f"out{i}").items() if k != "manifest.json"})
    assert digests[0] == digests[1]


# ---------------------------------------------------------------------------- manifest and verify


def test_manifest_records_inputs_outputs_and_versions(tmp_path, small_input):
    out = tmp_path / "out"
    assert run_cli(small_input, out).exit_code == 0
    m = manifest(out)
    assert m["as_of"] == AS_OF_1
    assert m["policy_version"] and isinstance(m["policy_version"], str)
    assert m["software_version"] == crossmargin.__version__
    assert set(m["inputs"]) == set(INPUT_SCHEMAS)
    for entry in m["inputs"].values():
        path = small_input / entry["file"]
        assert entry["rows"] == pl.read_parquet(path).height
        assert entry["sha256"] == sha(path)
    assert set(m["outputs"]) == {"account_risk", "actions", "data_issues"}
    for table, entry in m["outputs"].items():
        path = out / entry["file"]
        assert entry["file"] == f"{table}.parquet"
        assert entry["rows"] == pl.read_parquet(path).height
        assert entry["sha256"] == sha(path)
    risk = pl.read_parquet(out / "account_risk.parquet")
    assert set(risk["policy_version"].unique().to_list()) == {m["policy_version"]}
    assert m["outputs"]["account_risk"]["rows"] == m["inputs"]["accounts"]["rows"] == 2_000


def _tamper_byte(out: Path) -> None:
    p = out / "actions.parquet"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _rewrite_one_value(out: Path) -> None:
    """A valid parquet file with the same row count and one changed number."""
    p = out / "account_risk.parquet"
    df = pl.read_parquet(p)
    df.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("total_asset_usdt") + 1)
        .otherwise(pl.col("total_asset_usdt"))
        .alias("total_asset_usdt")
    ).write_parquet(p)


def _drop_a_row(out: Path) -> None:
    p = out / "actions.parquet"
    frame = pl.read_parquet(p)
    assert frame.height > 1  # a real change, not a rewrite of the same content
    frame.head(frame.height - 1).write_parquet(p)


def _edit_manifest_rows(out: Path) -> None:
    m = manifest(out)
    m["outputs"]["actions"]["rows"] += 1
    (out / "manifest.json").write_text(json.dumps(m))


TAMPERING = {
    "flipped_bit": (_tamper_byte, ["actions", "checksum"]),
    "rewritten_value": (_rewrite_one_value, ["account_risk", "checksum"]),
    "dropped_row": (_drop_a_row, ["actions"]),
    "deleted_file": (lambda out: (out / "actions.parquet").unlink(), ["actions", "missing"]),
    "manifest_row_count": (_edit_manifest_rows, ["actions", "rows"]),
    "manifest_deleted": (lambda out: (out / "manifest.json").unlink(), ["manifest.json"]),
    "manifest_garbage": (lambda out: (out / "manifest.json").write_text("{not json"), ["manifest.json"]),
    "manifest_drops_an_output": (
        lambda out: (out / "manifest.json").write_text(
            json.dumps(
                {
                    **manifest(out),
                    "outputs": {k: v for k, v in manifest(out)["outputs"].items() if k != "actions"},
                }
            )
        ),
        ["actions"],
    ),
}


@pytest.fixture(scope="module")
def verified_run(tmp_path_factory, small_input) -> Path:
    out = tmp_path_factory.mktemp("verified") / "out"
    assert run_cli(small_input, out).exit_code == 0
    return out


def test_verify_passes_on_a_fresh_run(verified_run):
    res = cli("verify", "--out", str(verified_run))
    assert res.exit_code == 0, res.output
    assert "match" in res.stdout
    assert outputs.verify_outputs(verified_run) == []


def _verify(out: Path) -> tuple[int, str]:
    """`crossmargin verify --out OUT`: (exit code, stderr)."""
    res = cli("verify", "--out", out)
    return res.exit_code, res.stderr


@pytest.mark.parametrize("case", list(TAMPERING))
def test_verify_fails_after_tampering(case, tmp_path, verified_run):
    out = tmp_path / "out"
    shutil.copytree(verified_run, out)
    assert _verify(out)[0] == 0
    tamper, words = TAMPERING[case]
    tamper(out)
    code, err = _verify(out)
    assert code != 0
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


BLOCKS = [0, 1, 3 << 20, 17, 8 << 20, 1 << 20, 4096, 5]  # across the 8 MiB buffer, a partial last block


@pytest.mark.parametrize("direct", [True, False], ids=["O_DIRECT", "through the page cache"])
def test_an_output_file_has_the_bytes_written_and_their_hash(tmp_path, monkeypatch, direct):
    """OutputFile: the bytes written, in blocks of any size, land in the file as written and f.sha256
    is their sha256, whether the file bypasses the page cache or not (the size is not a multiple of
    the 4 KiB block, so the tail is written through the cache)."""
    monkeypatch.setattr(outputs, "DIRECT_IO", direct)
    path = tmp_path / "out.bin"
    blocks = [random.Random(i).randbytes(n) for i, n in enumerate(BLOCKS)]
    with outputs.OutputFile(path) as f:
        for block in blocks:
            assert f.write(block) == len(block)
    whole = b"".join(blocks)
    assert len(whole) % 4096 != 0
    assert path.read_bytes() == whole
    assert f.sha256 == hashlib.sha256(whole).hexdigest()


def test_an_output_file_is_the_parquet_file_polars_writes(tmp_path):
    """A frame written into an OutputFile has the bytes of the same frame written to a path."""
    frame = pl.DataFrame({"a": range(200_000), "b": [i / 7 for i in range(200_000)]})
    with outputs.OutputFile(tmp_path / "via.parquet") as f:
        frame.write_parquet(f, **outputs.PARQUET_OPTIONS)
    frame.write_parquet(tmp_path / "direct.parquet", **outputs.PARQUET_OPTIONS)
    assert (tmp_path / "via.parquet").read_bytes() == (tmp_path / "direct.parquet").read_bytes()


def test_an_output_file_never_replaces_a_file(tmp_path):
    path = tmp_path / "someone.parquet"
    path.write_bytes(b"not ours")
    with pytest.raises(FileExistsError):
        outputs.OutputFile(path)
    assert path.read_bytes() == b"not ours"


def test_an_output_file_whose_filesystem_refuses_o_direct(tmp_path, monkeypatch):
    """A filesystem that refuses O_DIRECT when the file is opened (EINVAL, as tmpfs does): the same
    bytes are written through the page cache."""
    real_open = os.open

    def refusing(path, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing)
    data = random.Random(7).randbytes((9 << 20) + 3)
    with outputs.OutputFile(tmp_path / "out.bin") as f:
        f.write(data)
    assert (tmp_path / "out.bin").read_bytes() == data


def test_a_failed_write_closes_the_output_file(tmp_path):
    """An error inside the block propagates; the file is left unfinished (its staging directory is
    removed by the run) and its descriptor closed."""
    before = len(os.listdir("/proc/self/fd"))
    with (
        pytest.raises(RuntimeError, match="the writer failed"),
        outputs.OutputFile(tmp_path / "out.bin") as f,
    ):
        f.write(b"x" * 100)
        raise RuntimeError("the writer failed")
    assert len(os.listdir("/proc/self/fd")) == before
    assert f.sha256 == ""


def test_an_output_file_that_cannot_be_finished_is_closed(tmp_path, monkeypatch):
    """A failure while the file is finished (here fsync: a full disk) propagates, with no hash, and the
    descriptor is closed all the same."""

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"), outputs.OutputFile(tmp_path / "out.bin") as f:
        f.write(b"x" * 5000)
    assert len(os.listdir("/proc/self/fd")) == before
    assert f.sha256 == ""


def test_verify_on_a_missing_directory_fails_cleanly(tmp_path):
    code, err = _verify(tmp_path / "nothing")
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


# ---------------------------------------------------------------------------- failure inside the run


@pytest.mark.parametrize("where", ["write_manifest", "publish"])
def test_exception_while_writing_leaves_out_unchanged(where, tmp_path, small_input, monkeypatch):
    out = tmp_path / "out"
    assert run_cli(small_input, out, AS_OF_2).exit_code == 0
    before = hashes(out)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, where, boom)
    with pytest.raises(OSError):
        run_job(NEW, small_input, out)
    assert hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # staging dir removed


# ---------------------------------------------------------------------------- kill -9


class Watch:
    """Black-box triggers: moments of a run seen from the file system only."""

    def __init__(self, out: Path, pid: int) -> None:
        self.out = out
        self.staging = out.parent / f".{out.name}.tmp-{pid}"
        self.manifest_stat = self._stat(out / "manifest.json")

    @staticmethod
    def _stat(p: Path):
        try:
            s = p.stat()
            return (s.st_ino, s.st_mtime_ns)
        except FileNotFoundError:
            return None

    def staged(self, name: str | None = None) -> bool:
        return (self.staging / name).exists() if name else self.staging.exists()

    def published(self) -> bool:
        return self._stat(self.out / "manifest.json") != self.manifest_stat


def _trigger(kind: str, delay: float):
    """(description, predicate(watch, elapsed) -> kill now?)."""
    if kind == "time":
        return f"after {delay:.2f}s", lambda w, t: t >= delay
    if kind == "staging":
        return "staging dir created", lambda w, t: w.staged()
    if kind.startswith("file:"):
        name = kind[5:]
        return f"{name} appears in staging", lambda w, t: w.staged(name)
    if kind == "published":
        return "new manifest visible in --out", lambda w, t: w.published()
    raise AssertionError(kind)


def _kill_run(inp: Path, out: Path, as_of: str, kind: str, delay: float, timeout: float = 120.0):
    proc = subprocess.Popen(
        [*command(), "run", "--as-of", as_of, "--input", str(inp), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    desc, hit = _trigger(kind, delay)
    watch = Watch(out, proc.pid)
    t0 = time.monotonic()
    killed = False
    while proc.poll() is None:
        if hit(watch, time.monotonic() - t0):
            proc.kill()  # SIGKILL: no cleanup of any kind
            killed = True
            break
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("run did not finish")
        time.sleep(0.0005)
    proc.wait()
    return desc, killed, proc.returncode


def _same_frames(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Equal frames, to the last bit (per-account sums are bit-stable across runs)."""
    return a.schema == b.schema and a.equals(b)


def _which_run(out: Path, complete: dict[str, Path]) -> str:
    """The as_of of the complete run --out holds; fails on anything else (mix, partial, missing).

    A mix of two runs' files cannot pass verify (each file's checksum is in the manifest written
    with it); the content is then compared with a complete reference run of that as_of.
    """
    assert out.is_dir(), f"{out} missing"
    names = {p.name for p in out.iterdir()}
    assert names == OUTPUT_FILES, names
    assert outputs.verify_outputs(out) == []
    as_of = manifest(out)["as_of"]
    ref = complete[as_of]
    for name in OUTPUT_FILES - {"manifest.json"}:
        if sha(out / name) != sha(ref / name):
            assert _same_frames(pl.read_parquet(out / name), pl.read_parquet(ref / name)), name
    assert without_times(manifest(out))["outputs"].keys() == manifest(ref)["outputs"].keys()
    assert {k: v["rows"] for k, v in manifest(out)["outputs"].items()} == {
        k: v["rows"] for k, v in manifest(ref)["outputs"].items()
    }
    return as_of


def test_kill_9_at_many_moments_leaves_a_complete_run(tmp_path):
    inp = write_inputs(clean_tables(15_000, seed=3), tmp_path / "in")
    # complete reference outputs of both as_of values (in-process: the same code path, no startup)
    complete = {as_of: tmp_path / f"ref-{as_of[:10]}" for as_of in (AS_OF_1, AS_OF_2)}
    for as_of, ref in complete.items():
        run_job(_utc(as_of), inp, ref)
    assert sha(complete[AS_OF_1] / "account_risk.parquet") != sha(complete[AS_OF_2] / "account_risk.parquet")

    # one whole run in a process first: the kill delays below are fractions of a whole run, timed on
    # the next one, so a first process that loads (or compiles) the job's kernels must not set them
    assert cli_process("run", "--as-of", AS_OF_1, "--input", inp, "--out", tmp_path / "warm").exit_code == 0

    runs = tmp_path / "runs"
    runs.mkdir()
    out = runs / "out"
    shutil.copytree(complete[AS_OF_2], out)  # the "previous night"
    rng = random.Random(4)
    plan: list[tuple[str, float]] = [
        ("time", math.inf),  # not killed: a complete replacement, and the duration of a whole run
        ("time", 0.0),
        ("staging", 0),
        ("file:account_risk.parquet", 0),
        ("file:data_issues.parquet", 0),
        ("file:manifest.json", 0),  # staged manifest: publishing is next
        ("published", 0),  # swap done: old contents being removed
        ("time", 0.5),  # placeholders: random fractions of a whole run, set below
        ("time", 0.9),
    ]
    log = []
    holds = manifest(out)["as_of"]
    full = 1.0
    for i, (kind, planned) in enumerate(plan):
        delay = rng.uniform(0.5, 1.05) * full if kind == "time" and 0 < planned < 1 else planned
        target = AS_OF_1 if holds == AS_OF_2 else AS_OF_2  # always try to replace with other content
        t0 = time.monotonic()
        desc, killed, rc = _kill_run(inp, out, target, kind, delay)
        if i == 0:
            full = time.monotonic() - t0
        now = _which_run(out, complete)
        if not killed:
            assert rc == 0 and now == target
        elif kind == "published":
            assert now == target  # the swap is done: the new run is complete
        elif kind == "staging":
            assert now == holds  # killed long before publishing: the previous run is intact
        # other kills may land just before or just after the swap: either complete run is fine
        log.append((desc, "killed" if killed else f"finished rc={rc}", f"--out holds {now}"))
        holds = now
    print(f"whole run {full:.2f}s\n" + "\n".join(map(str, log)))
    assert sum(1 for _, k, _ in log if k == "killed") >= 7, log
    # at least one kill while files were being written left the previous run in place
    assert any(k == "killed" and d.endswith("appears in staging") for d, k, _ in log)

    # the first run into a fresh --out, killed before publishing: --out does not exist at all
    fresh = runs / "fresh"
    desc, killed, _ = _kill_run(inp, fresh, AS_OF_1, "file:account_risk.parquet", 0)
    assert killed and not fresh.exists()

    # leftovers of killed runs are only hidden staging dirs; the next complete run removes them
    leftovers = [p.name for p in runs.iterdir() if p.name != "out"]
    assert leftovers and all(n.startswith((".out.tmp-", ".fresh.tmp-")) for n in leftovers), leftovers
    for name in ("out", "fresh"):
        run_job(_utc(AS_OF_1), inp, runs / name)
    assert sorted(p.name for p in runs.iterdir()) == ["fresh", "out"]
    assert _which_run(runs / "out", complete) == AS_OF_1
    assert _which_run(runs / "fresh", complete) == AS_OF_1


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def test_staging_dirs_of_live_runs_are_left_alone(tmp_path, small_input):
    """Leftovers of dead runs are removed; a live concurrent run's staging dir is not touched."""
    dead = tmp_path / ".out.tmp-999999999"
    live = tmp_path / ".out.tmp-1"  # pid 1 always runs
    for d in (dead, live):
        d.mkdir()
        (d / "account_risk.parquet").write_bytes(b"partial")
    run_job(_utc(AS_OF_1), small_input, tmp_path / "out")
    assert not dead.exists()
    assert (live / "account_risk.parquet").read_bytes() == b"partial"


def test_two_concurrent_runs_into_the_same_out(tmp_path, small_input):
    """Both finish; --out holds one of them, complete (last publisher wins); nothing left behind."""
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            [*command(), "run", "--as-of", as_of, "--input", str(small_input), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for as_of in (AS_OF_1, AS_OF_2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert outputs.verify_outputs(out) == []
    assert manifest(out)["as_of"] in (AS_OF_1, AS_OF_2)
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------------------- --max-issue-rate


def _input_with_bad_accounts(directory: Path, n: int, bad: int, unknown_rows: int = 0) -> Path:
    t = clean_tables(n, seed=13)
    ids = t["accounts"]["account_id"].head(bad).to_list()
    t["balances"] = t["balances"].with_columns(
        pl.when(pl.col("account_id").is_in(ids) & (pl.col("asset") == "USDT"))
        .then(-1.0)
        .otherwise(pl.col("free"))
        .alias("free")
    )
    if unknown_rows:
        extra = frame("balances", [balance(10_000_001 + 2 * i, "USDT", free=1) for i in range(unknown_rows)])
        t["balances"] = pl.concat([t["balances"], extra])
    return write_inputs(t, directory)


def test_issue_rate_above_the_limit_fails_and_writes_only_rejected(tmp_path, small_input):
    parent = tmp_path / "runs"
    out = parent / "out"
    assert run_cli(small_input, out).exit_code == 0
    before = hashes(out)
    inp = _input_with_bad_accounts(tmp_path / "bad", 100, 2)  # 2% > default 1%
    res = run_cli(inp, out)
    assert res.exit_code == 4, res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    msg = res.stderr
    assert "2 of 100 accounts" in msg and "max-issue-rate" in msg and "out.rejected" in msg
    assert hashes(out) == before  # the previous report is untouched
    rejected = parent / "out.rejected"
    assert sorted(p.name for p in rejected.iterdir()) == ["data_issues.parquet", "manifest.json"]
    issues = pl.read_parquet(rejected / "data_issues.parquet")
    assert issues.height == 2 and set(issues["code"].cast(pl.String)) == {"negative_quantity"}
    assert sorted(p.name for p in parent.iterdir()) == ["out", "out.rejected"]  # no staging leftovers

    # a second rejected run replaces the rejected data_issues (now 5 bad accounts)
    inp5 = _input_with_bad_accounts(tmp_path / "bad5", 100, 5)
    assert run_cli(inp5, out).exit_code == 4
    assert pl.read_parquet(rejected / "data_issues.parquet").height == 5
    assert hashes(out) == before

    # the same input passes with a higher limit, and then --out holds it
    res = run_cli(inp, out, AS_OF_1, "--max-issue-rate", "0.05")
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(out / "data_issues.parquet").height == 2
    assert pl.read_parquet(out / "account_risk.parquet").height == 98
    assert manifest(out)["outputs"]["data_issues"]["rows"] == 2


def test_issue_rate_exactly_at_the_limit_passes(tmp_path):
    inp = _input_with_bad_accounts(tmp_path / "in", 100, 1)  # 1/100 == 0.01: not above
    res = run_cli(inp, tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "out.rejected").exists()
    assert pl.read_parquet(tmp_path / "out" / "account_risk.parquet").height == 99


def test_issue_rate_fails_on_a_fresh_out_without_creating_it(tmp_path):
    inp = _input_with_bad_accounts(tmp_path / "in", 100, 3)
    res = run_cli(inp, tmp_path / "out", AS_OF_1, "--max-issue-rate", "0.025")
    assert res.exit_code == 4
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "out.rejected" / "data_issues.parquet").exists()


def test_issue_rate_zero_rejects_any_bad_account(tmp_path):
    inp = _input_with_bad_accounts(tmp_path / "in", 50, 1)
    assert run_cli(inp, tmp_path / "out", AS_OF_1, "--max-issue-rate", "0").exit_code == 4
    clean = write_inputs(clean_tables(50, seed=2), tmp_path / "clean")
    assert run_cli(clean, tmp_path / "out", AS_OF_1, "--max-issue-rate", "0").exit_code == 0


def test_rows_of_unknown_accounts_do_not_count_towards_the_issue_rate(tmp_path):
    """The rate is over input accounts; stray rows of accounts not in accounts are listed, not counted."""
    inp = _input_with_bad_accounts(tmp_path / "in", 100, 1, unknown_rows=10)
    res = run_cli(inp, tmp_path / "out")
    assert res.exit_code == 0, res.output
    issues = pl.read_parquet(tmp_path / "out" / "data_issues.parquet")
    assert issues.filter(pl.col("code") == "unknown_account").height == 10
    assert manifest(tmp_path / "out")["accounts_with_issues"] == 1


def test_publish_where_another_run_published_after_the_check(tmp_path, monkeypatch):
    """`out` seen missing, then published by another run before the rename: this run's files are
    swapped in (last publisher wins), the other's removed, nothing left beside `out`."""
    out, tmp = tmp_path / "out", tmp_path / ".out.tmp-1"
    out.mkdir()
    (out / "account_risk.parquet").write_text("the other run's")
    tmp.mkdir()
    (tmp / "account_risk.parquet").write_text("this run's")
    monkeypatch.setattr(type(out), "exists", lambda self: False if self == out else os.path.exists(self))
    outputs.publish(tmp, out)
    assert (out / "account_risk.parquet").read_text() == "this run's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
