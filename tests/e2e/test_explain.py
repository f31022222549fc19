"""`crossmargin explain`: one account's numbers are the run's, bit for bit, and its parts add up.

For every account of data/sample at both golden instants, the explanation's `account_risk` (read back
from its JSON) is the run's row to the last bit, each sum is its rows' parts added left to right from
-0.0 as the valuation adds them, each formula filled in with the account's numbers gives the value,
and each decision agrees with the checks shown for it. Plus real CLI calls: --input and --out, JSON and
text, an account with a data issue, and every refusal as one line with exit 2.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import struct
from pathlib import Path

import polars as pl
import pytest

from crossmargin.explain import explain, explain_many
from crossmargin.explain.document import SUM_PARTS, jsonable
from crossmargin.explain.scoring import account_filter
from crossmargin.explain.source import from_input
from crossmargin.explain.text import render
from crossmargin.job import run_job
from crossmargin.rules.quantities import nan_as_zero
from support import SAMPLE
from support.cli import Ran, cli, cli_process
from support.runs import GOLDEN_AS_OFS as AS_OFS

REPAYING = 1000264  # docs/rules.md's worked repayment example


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def same(got, want) -> bool:
    """Equal values; floats to the bit."""
    if isinstance(want, float):
        return isinstance(got, float) and bits(got) == bits(want)
    return got == want


@pytest.fixture(scope="module")
def explained(golden_runs) -> dict[str, dict[int, dict]]:
    """Every account of the sample at each instant, from one engine run each, read back from JSON."""
    ids = pl.read_parquet(SAMPLE / "accounts.parquet")["account_id"].to_list()
    return {
        name: {
            i: json.loads(json.dumps(doc)) for i, doc in explain_many(ids, input=SAMPLE, as_of=as_of).items()
        }
        for name, as_of in AS_OFS.items()
    }


def run_rows(out: Path) -> dict[int, dict]:
    return {r["account_id"]: jsonable(r) for r in pl.read_parquet(out / "account_risk.parquet").to_dicts()}


@pytest.mark.parametrize("name", list(AS_OFS))
def test_every_account_risk_row_is_the_runs_to_the_bit(golden_runs, explained, name):
    rows = run_rows(golden_runs[name])
    docs = explained[name]
    assert len(rows) == len(docs) == 461  # every account of data/sample
    for account_id, want in rows.items():
        doc = docs[account_id]
        assert doc["status"] == "scored" and doc["data_issues"] == [] and doc["not_scored"] is None
        got = doc["account_risk"]
        assert list(got) == list(want)  # every column, in the run's order
        wrong = [c for c in want if not same(got[c], want[c])]
        assert not wrong, (account_id, wrong)


def added(parts: list[float | None]) -> float:
    """The parts added as the valuation adds them: left to right from -0.0, a NaN as 0, a row of an
    asset no price or table names (None) not at all. Without a row the account has no run in that
    table and its sum is 0 (the account pass)."""
    if not parts:
        return 0.0
    total = -0.0
    for p in parts:
        if p is not None:
            total += nan_as_zero(p)
    return total


@pytest.mark.parametrize("name", list(AS_OFS))
def test_the_rows_parts_add_up_to_the_accounts_sums_to_the_bit(explained, name):
    rows_seen = 0
    for doc in explained[name].values():
        sums = {s["output"]: s for s in doc["sums"]}
        for total, (table, part) in SUM_PARTS.items():
            parts = [row[part] for row in doc[table]]
            rows_seen += len(parts)
            assert sums[total]["value"] == doc["account_risk"][total]
            assert bits(added(parts)) == bits(doc["account_risk"][total]), (doc["account_id"], total)
    assert rows_seen > 5 * 1000  # balance rows (five sums each) and orders were all checked


def evaluated(filled: str) -> float:
    """A formula filled in with the account's numbers, evaluated with float64 arithmetic."""
    text = filled.replace("−", "-").replace("·", "*").replace("inf", "float('inf')")
    try:
        return float(eval(text, {"__builtins__": {"max": max, "float": float}}))
    except ZeroDivisionError:
        return math.inf  # the +inf rule: a zero denominator


@pytest.mark.parametrize("name", list(AS_OFS))
def test_each_formula_filled_in_gives_the_value(explained, name):
    checked = 0
    for doc in explained[name].values():
        risk = doc["account_risk"]
        for item in [*doc["quantities"], *doc["levels"], *doc["decisions"]]:
            if "filled" not in item or item["output"] == "partial_repayment_usdt":
                continue
            assert bits(evaluated(item["filled"])) == bits(float(item["value"])), (doc["account_id"], item)
            if "numerator" in item:
                quotient = math.inf if item["denominator"] == 0 else item["numerator"] / item["denominator"]
                assert bits(quotient) == bits(risk[item["output"]])
            checked += 1
        repayment = next(i for i in doc["decisions"] if i["output"] == "partial_repayment_usdt")
        if all(c["holds"] for c in repayment["checks"]):
            a, liab = risk["total_asset_usdt"], risk["total_liability_usdt"]
            x = min(max(evaluated(repayment["filled"]), 0.0), a, liab)
            assert bits(x) == bits(repayment["value"]) and repayment["value"] > 0
            checked += 1
    assert checked > 460 * 10


def item(doc: dict, part: str, output: str) -> dict:
    return next(i for i in doc[part] if i["output"] == output)


def holds(doc: dict, output: str) -> list[bool]:
    return [c["holds"] for c in item(doc, "decisions", output)["checks"]]


@pytest.mark.parametrize("name", list(AS_OFS))
def test_each_decision_agrees_with_the_checks_shown_for_it(explained, name):
    for doc in explained[name].values():
        risk = doc["account_risk"]
        for output in ["pro_compliant", "due_for_migration", "migrate_now", "eligible_for_pro"]:
            assert risk[output] == all(holds(doc, output)), (doc["account_id"], output)
        for output in ["liquidation", "margin_call"]:
            assert [risk[output]] == holds(doc, output)
        reasons = item(doc, "decisions", "borrow_blocked_reason")["checks"]
        first = next((c["name"] for c in reasons if c["holds"]), None)
        assert risk["borrow_blocked_reason"] == first
        eligible = item(doc, "decisions", "eligible_for_pro")["checks"]
        if risk["margin_mode"] == "classic":
            assert risk["pro_ineligible_reasons"] == [c["name"] for c in eligible[1:] if not c["holds"]]
        assert risk["can_switch_to_classic"] == all(holds(doc, "can_switch_to_classic"))
        at_risk = holds(doc, "partial_repayment_usdt")
        assert (risk["partial_repayment_usdt"] > 0) <= all(at_risk)
        for part in ["distances", "topups"]:
            for i in doc[part]:
                followed = [c for c in i["checks"] if c["followed"]]
                # 0: the condition holds already, or (a top-up, an infimum) the level is at its threshold
                at = [c["holds"] or (part == "topups" and c["measured"] == c["threshold"]) for c in followed]
                assert i["value"] != 0 or all(at), (doc["account_id"], i["output"])


def test_the_repayment_example_as_json_through_the_cli(golden_runs):
    res = cli(
        "explain", "--input", SAMPLE, "--as-of", AS_OFS["new"], "--account", REPAYING, "--format", "json"
    )
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    want = run_rows(golden_runs["new"])[REPAYING]
    assert all(same(doc["account_risk"][c], want[c]) for c in want)
    assert doc["account_risk"]["partial_repayment_usdt"] == 14586.440000000002
    repayment = item(doc, "decisions", "partial_repayment_usdt")
    assert repayment["filled"] == "(1.5·29732.62 − 37305.71) / (1.5 − 1)"
    assert repayment["threshold"] == 1.3 and repayment["section"] == "docs/rules.md#partial-repayment"
    assert [b["asset"] for b in doc["balances"]] == ["USDT"]
    assert [a["action"] for a in doc["actions"]] == [
        "BORROW_BLOCKED",
        "MIGRATE_TO_CLASSIC",
        "PARTIAL_REPAYMENT",
    ]
    for key in [
        "value_usdt",
        "liability_usdt",
        "collateral_usdt",
        "maintenance_margin_usdt",
        "initial_margin_usdt",
    ]:
        assert key in doc["balances"][0]
    for d in doc["decisions"]:
        assert {"output", "value", "rule", "threshold"} <= set(d)


def test_infinity_is_written_as_json_infinity():
    """An account without a liability: its levels are +inf, written `Infinity`."""
    ids = (
        pl.read_parquet(SAMPLE / "balances.parquet")
        .group_by("account_id")
        .agg((pl.col("borrowed") + pl.col("interest")).sum().alias("debt"))
    )
    account_id = ids.filter(pl.col("debt") == 0)["account_id"].min()
    res = cli(
        "explain", "--input", SAMPLE, "--as-of", AS_OFS["new"], "--account", account_id, "--format", "json"
    )
    assert res.exit_code == 0
    text = res.stdout
    assert '"classic_margin_level": Infinity' in text
    assert json.loads(text)["account_risk"]["classic_margin_level"] == math.inf


def test_out_run_dir_explains_that_run(golden_runs):
    argv = ["explain", "--account", str(REPAYING), "--format", "json"]
    res = cli(*argv, "--out", golden_runs["old"])
    assert res.exit_code == 0
    from_run = json.loads(res.stdout)
    res = cli(*argv, "--input", SAMPLE, "--as-of", AS_OFS["old"])
    assert res.exit_code == 0
    from_dir = json.loads(res.stdout)
    assert from_run["as_of"] == "2025-01-21T09:59:59Z"
    assert from_run["source"]["run"] == str(golden_runs["old"].absolute())
    assert {**from_run, "source": None} == {**from_dir, "source": None}


def test_out_takes_the_runs_baseline(golden_runs, tmp_path):
    out = tmp_path / "with-baseline"
    run_job(dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC), SAMPLE, out, baseline=golden_runs["old"])
    res = cli("explain", "--out", out, "--account", REPAYING, "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["source"]["baseline"] == str(golden_runs["old"].absolute()) and doc["status"] == "scored"
    assert "baseline" in render(doc)


def test_the_text_names_every_section_and_the_exact_numbers():
    doc = explain(REPAYING, input=SAMPLE, as_of=AS_OFS["new"])
    text = render(doc)
    assert max(len(line) for line in text.splitlines()) <= 100
    needles = [
        "Account 1000264: scored",
        "14586.440000000002",
        "= (1.5·29732.62 − 37305.71) / (1.5 − 1)",
        "docs/rules.md#partial-repayment",
        "docs/rules.md#borrow-blocked",
        "docs/rules.md#tiered-sums",
        "docs/rules.md#levels",
        "pro_not_compliant",
        "2025-01-21T10:00:00Z",
        "Σ account",
        "classic_switch_topup_usdt = 7293.22",
    ]
    for needle in needles:
        assert needle in text, needle
    res = cli("explain", "--input", SAMPLE, "--as-of", AS_OFS["new"], "--account", REPAYING)
    assert res.exit_code == 0
    assert res.stdout == text


def test_the_text_anchors_are_sections_of_rules_md():
    rules = (SAMPLE.parents[1] / "docs" / "rules.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', rules))
    doc = explain(REPAYING, input=SAMPLE, as_of=AS_OFS["new"])
    named = {s for s in doc["sections"].values()}
    for part in ["sums", "quantities", "levels", "decisions", "distances", "topups"]:
        named |= {i["section"] for i in doc[part]}
    missing = {s for s in named if s.split("#")[1] not in anchors}
    assert not missing, missing


# ------------------------------------------------------------------ an account with a data issue


@pytest.fixture(scope="module")
def stale_btc(tmp_path_factory) -> Path:
    """The sample with BTC's prices stopped on 2025-01-20 at 00:00: at 10:00 the next day it is stale."""
    copy = tmp_path_factory.mktemp("stale") / "in"
    shutil.copytree(SAMPLE, copy)
    prices = pl.read_parquet(copy / "prices.parquet")
    cut = dt.datetime(2025, 1, 20, tzinfo=dt.UTC)
    prices.filter((pl.col("asset") != "BTC") | (pl.col("priced_at") <= cut)).write_parquet(
        copy / "prices.parquet"
    )
    return copy


def test_an_account_with_a_data_issue_shows_its_issues_and_what_could_be_computed(stale_btc, tmp_path):
    balances = pl.read_parquet(stale_btc / "balances.parquet")
    holders = balances.group_by("account_id").agg((pl.col("asset") == "BTC").any().alias("btc"), pl.len())
    account_id = holders.filter(pl.col("btc") & (pl.col("len") > 1))["account_id"].min()
    out = tmp_path / "run"
    run_job(dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC), stale_btc, out, max_issue_rate=1.0)
    res = cli("explain", "--out", out, "--account", account_id, "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["status"] == "data_issue" and doc["account_risk"] is None
    issues = pl.read_parquet(out / "data_issues.parquet").filter(pl.col("account_id") == account_id)
    assert [(i["table"], i["code"], i["detail"]) for i in doc["data_issues"]] == [
        (r["table"], r["code"], r["detail"]) for r in issues.to_dicts()
    ]
    assert {i["asset"] for i in doc["data_issues"]} == {"BTC"}
    assert {i["code"] for i in doc["data_issues"]} == {"stale_price"}
    computed = doc["not_scored"]
    rows = {b["asset"]: b for b in doc["balances"]}
    assert math.isnan(rows["BTC"]["value_usdt"]) and rows["BTC"]["price_usdt"] != rows["BTC"]["price_usdt"]
    others = [b["value_usdt"] for a, b in rows.items() if a != "BTC"]
    assert others and computed["total_asset_usdt"] == added([b["value_usdt"] for b in doc["balances"]]) > 0
    text = render(doc)
    assert (
        f"Account {account_id}: NOT SCORED" in text
        and "stale_price" in text
        and "none of them is a result" in text
    )


def test_rows_without_an_account_and_a_duplicated_account(tmp_path):
    """An id only balances holds (unknown_account): its rows valued, nothing else computed. An id
    accounts holds twice (duplicate_row): the first row shown, the count said."""
    copy = tmp_path / "in"
    shutil.copytree(SAMPLE, copy)
    balances, accounts = (
        pl.read_parquet(copy / "balances.parquet"),
        pl.read_parquet(copy / "accounts.parquet"),
    )
    orphan = balances.filter(pl.col("account_id") == REPAYING).with_columns(
        pl.lit(77777777).cast(balances.schema["account_id"]).alias("account_id")
    )
    pl.concat([balances, orphan]).write_parquet(copy / "balances.parquet")
    twin = accounts.filter(pl.col("account_id") == REPAYING).with_columns(pl.lit("[bold]ZZ").alias("country"))
    pl.concat([accounts, twin]).write_parquet(copy / "accounts.parquet")
    docs = explain_many([77777777, REPAYING], input=copy, as_of=AS_OFS["new"])
    lone = docs[77777777]
    assert lone["status"] == "data_issue" and lone["account"] is None and lone["not_scored"] is None
    assert [i["code"] for i in lone["data_issues"]] == ["unknown_account"]
    assert lone["balances"][0]["value_usdt"] == 37305.71 and lone["levels"] == lone["decisions"] == []
    assert "No row of accounts holds this account_id" in render(lone)
    twice = docs[REPAYING]
    assert (
        twice["status"] == "data_issue" and twice["account_rows"] == 2 and twice["account"]["country"] == "BR"
    )
    assert {i["code"] for i in twice["data_issues"]} == {"duplicate_row"}
    assert twice["not_scored"]["partial_repayment_usdt"] == 14586.440000000002
    assert "accounts holds 2 rows for this account_id" in render(twice)


# ------------------------------------------------------------------ refusals: one line, exit 2


def one_line_error(res: Ran) -> str:
    err = res.stderr
    assert err.startswith("crossmargin: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_an_input_changed_since_the_run_is_refused(tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(SAMPLE, inputs)
    out = tmp_path / "run"
    run_job(dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC), inputs, out)
    assert cli("explain", "--out", out, "--account", REPAYING).exit_code == 0
    switches = pl.read_parquet(inputs / "mode_switches.parquet")
    switches.head(switches.height - 1).write_parquet(inputs / "mode_switches.parquet")
    res = cli("explain", "--out", out, "--account", REPAYING)
    assert res.exit_code == 2
    err = one_line_error(res)
    assert "input table 'mode_switches'" in err and "would not be of that run" in err
    (inputs / "mode_switches.parquet").unlink()
    res = cli("explain", "--out", out, "--account", REPAYING)
    assert res.exit_code == 2
    assert "mode_switches" in one_line_error(res)


def test_a_policy_changed_since_the_run_is_refused(tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[version]]\nname = "desk"\neffective_from = 1970-01-01T00:00:00Z\n[version.pro]\nmargin_call = 1.4\n'
    )
    out = tmp_path / "run"
    run_job(dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC), SAMPLE, out, policy_file=policy)
    res = cli("explain", "--out", out, "--account", REPAYING, "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert item(doc, "decisions", "margin_call")["threshold"] == 1.4
    policy.write_text(policy.read_text().replace("1.4", "1.45"))
    res = cli("explain", "--out", out, "--account", REPAYING)
    assert res.exit_code == 2
    assert "policy_sha256" in one_line_error(res)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--input", str(SAMPLE), "--as-of", AS_OFS["new"], "--account", "999"],
            "account 999 is in no input",
        ),
        (["--input", str(SAMPLE), "--as-of", AS_OFS["new"], "--account", "abc"], "--account 'abc'"),
        (["--input", str(SAMPLE), "--as-of", AS_OFS["new"]], "--account"),
        (["--input", str(SAMPLE), "--account", "1"], "--as-of"),
        (["--input", str(SAMPLE), "--as-of", "yesterday", "--account", "1"], "--as-of 'yesterday'"),
        (["--input", str(SAMPLE), "--as-of", AS_OFS["new"], "--account", "1", "--format", "xml"], "--format"),
        (["--out", str(SAMPLE), "--input", str(SAMPLE), "--account", "1"], "--out RUN_DIR alone"),
        (["--out", str(SAMPLE), "--account", "1"], "not a run's output directory"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, says):
    res = cli("explain", *argv)
    assert res.exit_code == 2
    assert says in one_line_error(res)


def test_the_installed_command_refuses_an_unknown_id_in_one_line():
    proc = cli_process("explain", "--input", SAMPLE, "--as-of", AS_OFS["new"], "--account", "42424242")
    assert proc.exit_code == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1].startswith("crossmargin: error: account 42424242")
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------ reading one account's rows


def test_the_account_filter_is_pushed_into_every_account_tables_scan():
    source = from_input(SAMPLE, dt.datetime(2025, 1, 21, 10, tzinfo=dt.UTC))
    for ids in ([REPAYING], [REPAYING, 1]):
        for name in ["accounts", "balances", "open_orders", "mode_switches"]:
            plan = source.tables[name].filter(account_filter(ids)).explain()
            scan = plan[plan.index("Parquet SCAN") :]
            assert "SELECTION:" in scan and "account_id" in scan.split("SELECTION:")[1], (name, plan)
