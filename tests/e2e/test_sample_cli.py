"""`crossmargin sample` as a user runs it (a real process): the files are those of
crossmargin.synthetic.write_sample with the same arguments, and `--faults` goes through the one fault
injector (crossmargin.synthetic.faults): the engine reports every expected issue.
"""

from __future__ import annotations

from crossmargin.engine import score as compute
from crossmargin.io.inputs import load_tables
from crossmargin.io.schemas import TABLES
from crossmargin.policy import resolve
from crossmargin.synthetic import SHOWCASE_AS_OF, generate_with_faults, write_sample
from support.cli import cli_process


def test_sample_command_with_faults_writes_what_the_library_writes(tmp_path):
    out = tmp_path / "cli"
    proc = cli_process("sample", "--accounts", "600", "--seed", "4", "--faults", "0.05", "--out", out)
    assert proc.exit_code == 0, proc.stderr
    assert "600 random accounts" in proc.stdout and "30 injected faults" in proc.stdout
    write_sample(tmp_path / "lib", accounts=600, seed=4, faults=0.05)
    cli_files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert sorted(cli_files) == sorted(f"{t}.parquet" for t in TABLES)
    assert cli_files == {p.name: p.read_bytes() for p in sorted((tmp_path / "lib").iterdir())}

    _, expected = generate_with_faults(600, seed=4, faults=0.05)
    assert expected.height == 30
    result = compute(load_tables(out), resolve(SHOWCASE_AS_OF))
    got = {(a, str(c)) for a, c in result.data_issues.select("account_id", "code").iter_rows()}
    missing = [(a, c) for a, c in expected.select("account_id", "code").iter_rows() if (a, c) not in got]
    assert missing == [], missing
