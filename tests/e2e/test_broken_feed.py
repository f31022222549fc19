"""A broken feed is not a book (docs/rules.md §6.6): an empty table, or with `--baseline` a table shrunk
below the policy's share of the baseline's rows, stops the run before any work.

Each refused case: exit 3, one line naming the table (and for a shrunken table its rows and the
baseline's), no traceback, nothing created, moved or deleted. Positive controls: the legitimately
empty tables (open orders, mode switches), a table at exactly its share, and a policy that exempts a
table, all run; and the manifest records the baseline and every ratio.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest

from crossmargin.io.feed import NOT_EMPTY
from crossmargin.synthetic.writer import write_inputs
from support.cli import cli
from support.inputs import NEW_TEXT, clean_tables

FEED_EXIT = 3


@pytest.fixture(scope="module")
def good() -> dict[str, pl.DataFrame]:
    return clean_tables(40, seed=5)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, good: dict[str, pl.DataFrame]) -> Path:
    """A previous run of the full book: the baseline of the shrunken cases."""
    base = tmp_path_factory.mktemp("baseline")
    res = invoke(write_inputs(good, base / "in"), base / "run")
    assert res.exit_code == 0, res.output
    return base / "run"


def invoke(inp: Path, out: Path, *extra: str):
    return cli("run", "--as-of", NEW_TEXT, "--input", str(inp), "--out", str(out), *extra)


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def refused(tmp_path: Path, tables: dict[str, pl.DataFrame], fmt: str = "parquet", *extra: str) -> str:
    """Run on `tables`; assert exit 3 with one line, and that nothing under tmp_path changed."""
    inp = write_inputs(tables, tmp_path / "in", fmt)
    before = tree(tmp_path)
    res = invoke(inp, tmp_path / "out", *extra)
    assert res.exit_code == FEED_EXIT, res.output
    assert "Traceback" not in res.output and res.stdout == ""
    assert res.stderr.startswith("crossmargin: error: ") and res.stderr.count("\n") == 1, res.stderr
    assert tree(tmp_path) == before and not (tmp_path / "out").exists()
    return res.stderr


def shrunk(tables: dict[str, pl.DataFrame], table: str, rows: int) -> dict[str, pl.DataFrame]:
    return {**tables, table: tables[table].head(rows)}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("table", NOT_EMPTY)
def test_a_table_with_its_header_only_stops_the_run(tmp_path, good, table, fmt):
    message = refused(tmp_path, shrunk(good, table, 0), fmt)
    assert f"input table '{table}' has no rows" in message
    assert f"{table}.{fmt} holds its header only" in message


def test_the_tables_that_may_be_empty_are_scored(tmp_path, good):
    tables = shrunk(shrunk(good, "open_orders", 0), "mode_switches", 0)
    res = invoke(write_inputs(tables, tmp_path / "in"), tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(tmp_path / "out" / "account_risk.parquet").height == good["accounts"].height


def test_a_table_below_its_share_of_the_baseline_stops_the_run(tmp_path, good, baseline):
    full = good["balances"].height
    least = math.ceil(0.5 * full)  # the fewest rows at min_row_ratio 0.5
    message = refused(tmp_path, shrunk(good, "balances", least - 1), "parquet", "--baseline", str(baseline))
    assert (
        f"input table 'balances' has {least - 1} rows, {(least - 1) / full:.1%} of the baseline's {full} "
        f"({baseline}), below min_row_ratio 0.5" in message
    )


@pytest.mark.parametrize("table", ["accounts", "prices", "collateral_tiers", "liability_brackets"])
def test_every_required_table_is_held_to_its_share(tmp_path, good, baseline, table):
    message = refused(
        tmp_path, shrunk(good, table, good[table].height // 3), "parquet", "--baseline", str(baseline)
    )
    assert f"input table '{table}' has {good[table].height // 3} rows" in message


def test_a_table_at_exactly_its_share_is_scored_and_the_manifest_records_every_ratio(
    tmp_path, good, baseline
):
    full = good["balances"].height
    at_share = full // 2 if full % 2 == 0 else full // 2 + 1  # rows >= 0.5 * full
    tables = shrunk(shrunk(good, "balances", at_share), "open_orders", 1)  # open_orders: exempt
    res = invoke(write_inputs(tables, tmp_path / "in"), tmp_path / "out", "--baseline", str(baseline))
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "out" / "manifest.json").read_text())["baseline"]
    assert record["dir"] == str(baseline) and record["as_of"] == NEW_TEXT
    assert record["tables"]["balances"] == {
        "rows": at_share,
        "baseline_rows": full,
        "ratio": at_share / full,
        "min_row_ratio": 0.5,
    }
    assert record["tables"]["open_orders"]["min_row_ratio"] is None  # exempt by default
    assert record["tables"]["open_orders"]["rows"] == 1
    assert set(record["tables"]) == set(good)


def test_without_a_baseline_the_manifest_says_so(tmp_path, good):
    res = invoke(write_inputs(shrunk(good, "balances", 3), tmp_path / "in"), tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["baseline"] is None


def test_a_policy_sets_each_tables_share(tmp_path, good, baseline):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[version]]\nname = "feed"\neffective_from = 1970-01-01T00:00:00Z\n'
        "[version.feed]\nmin_row_ratio = { balances = 0.0, open_orders = 0.9 }\n"
    )
    # balances exempted by the policy: 3 rows are scored
    res = invoke(
        write_inputs(shrunk(good, "balances", 3), tmp_path / "in"),
        tmp_path / "out",
        "--baseline",
        str(baseline),
        "--policy",
        str(policy),
    )
    assert res.exit_code == 0, res.output
    # open_orders held to 90 % by the policy
    orders = good["open_orders"].height
    shutil.rmtree(tmp_path / "in")
    shutil.rmtree(tmp_path / "out")
    options = ["--baseline", str(baseline), "--policy", str(policy)]
    message = refused(tmp_path, shrunk(good, "open_orders", orders // 2), "parquet", *options)
    assert f"input table 'open_orders' has {orders // 2} rows" in message and "min_row_ratio 0.9" in message


@pytest.mark.parametrize("ratio", ["1.5", "-0.1", '"half"'])
def test_a_share_outside_0_1_is_a_policy_error(tmp_path, good, ratio):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[version]]\nname = "feed"\neffective_from = 1970-01-01T00:00:00Z\n'
        f"[version.feed]\nmin_row_ratio = {{ balances = {ratio} }}\n"
    )
    res = invoke(write_inputs(good, tmp_path / "in"), tmp_path / "out", "--policy", str(policy))
    assert res.exit_code == 2, res.output
    assert "feed.min_row_ratio.balances must be a share in [0, 1]" in res.stderr


@pytest.mark.parametrize("what", ["missing", "empty", "not a run"])
def test_a_baseline_that_holds_no_run_is_refused_before_any_work(tmp_path, good, what):
    inp = write_inputs(good, tmp_path / "in")
    where = tmp_path / "previous"
    if what != "missing":
        where.mkdir()
    if what == "not a run":
        (where / "manifest.json").write_text('{"producer": "someone else"}')
    before = tree(tmp_path)
    res = invoke(inp, tmp_path / "out", "--baseline", str(where))
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"crossmargin: error: --baseline {where}") and res.stderr.count("\n") == 1
    assert tree(tmp_path) == before and not (tmp_path / "out").exists()


def test_backfill_takes_the_previous_nights_partition_as_the_baseline(tmp_path, good):
    day1, day2, day3 = "2025-01-20", "2025-01-21", "2025-01-22"
    for day, rows in ((day1, good["balances"].height), (day2, good["balances"].height // 3), (day3, 5)):
        write_inputs(shrunk(good, "balances", rows), tmp_path / "in" / day)
    res = cli(
        "backfill", "--from", day1, "--to", day3, "--input", tmp_path / "in" / "{date}",
        "--out-root", tmp_path / "root", "--max-issue-rate", "1",
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"{day1}: ran")  # no previous night: no baseline
    assert lines[1].startswith(f"{day2}: failed (exit 3)") and "below min_row_ratio 0.5" in lines[1]
    assert str(tmp_path / "root" / f"as_of={day1}") in lines[1]
    # day2 has no partition: day3 is held to the latest earlier one, day1's
    assert (
        lines[2].startswith(f"{day3}: failed (exit 3)")
        and str(tmp_path / "root" / f"as_of={day1}") in lines[2]
    )
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == [f"as_of={day1}"]
