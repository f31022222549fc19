"""Golden end-to-end runs of the installed CLI on the committed data/sample/.

The golden files under tests/golden/ are the reviewed outputs of `crossmargin run` on data/sample at
the two sides of the new-formula cut-over. A change in any number, flag or action shows up here as a
diff to review. Regenerate (after reviewing why they changed) with:

    PYTHONPATH=tests .venv/bin/python tests/golden/test_golden.py --regen
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from crossmargin.io.schemas import ACCOUNT_RISK, ACTIONS, ACTIONS_SCHEMA, DATA_ISSUES
from support import SAMPLE
from support.cli import cli_process
from support.runs import GOLDEN_AS_OFS as AS_OFS

GOLDEN = Path(__file__).resolve().parent


def run_sample(as_of: str, out: Path, *extra: str) -> None:
    proc = cli_process("run", "--as-of", as_of, "--input", str(SAMPLE), "--out", str(out), *extra)
    assert proc.exit_code == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """A CSV-able view of an output: lists joined with '|', floats kept exact by the CSV writer."""
    return frame.with_columns(
        [
            pl.col(c).cast(pl.List(pl.String)).list.join("|")
            for c, t in frame.schema.items()
            if isinstance(t, pl.List)
        ]
    ).with_columns(
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if isinstance(t, (pl.Enum, pl.Datetime))]
    )


@pytest.mark.parametrize("name", list(AS_OFS))
@pytest.mark.parametrize("table", ["account_risk", "actions"])
def test_outputs_match_golden(golden_runs: dict[str, Path], name: str, table: str) -> None:
    got = as_text(pl.read_parquet(golden_runs[name] / f"{table}.parquet"))
    want = pl.read_csv(GOLDEN / f"{table}_{name}.csv", schema=got.schema)
    assert_frame_equal(got, want, check_exact=True)


def test_contract_of_section_5(golden_runs: dict[str, Path]) -> None:
    """Files, column names and types of docs/rules.md §7, one row per account, every input account accounted for."""
    out = golden_runs["new"]
    for f in ("account_risk.parquet", "actions.parquet", "data_issues.parquet", "manifest.json"):
        assert (out / f).is_file()
    risk = pl.read_parquet(out / "account_risk.parquet")
    assert risk.schema == pl.Schema(ACCOUNT_RISK)
    assert risk["account_id"].is_unique().all()
    assert pl.read_parquet(out / "actions.parquet").schema == pl.Schema(ACTIONS_SCHEMA)
    issues = pl.read_parquet(out / "data_issues.parquet")
    assert issues.schema == pl.Schema(DATA_ISSUES)
    accounts = pl.read_parquet(SAMPLE / "accounts.parquet")["account_id"]
    assert set(risk["account_id"]) | set(issues["account_id"]) == set(accounts)
    assert not set(risk["account_id"]) & set(issues["account_id"])
    arrow = pq.read_schema(out / "account_risk.parquet")
    assert str(arrow.field("total_asset_usdt").type) == "double"
    assert str(arrow.field("margin_call").type) == "bool"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["as_of"] == AS_OFS["new"]
    assert manifest["policy_version"] == risk["policy_version"][0]
    assert manifest["outputs"]["account_risk"]["rows"] == risk.height
    assert manifest["inputs"]["accounts"]["rows"] == accounts.len()
    assert set(pl.read_parquet(out / "actions.parquet")["action"].cast(pl.String)) == set(ACTIONS)


def test_every_decision_is_demonstrated(golden_runs: dict[str, Path]) -> None:
    """The sample shows every flag of docs/rules.md §4 both ways, every block reason, and both migration reasons."""
    risk = pl.read_parquet(golden_runs["new"] / "account_risk.parquet")
    for flag in [
        "margin_call",
        "liquidation",
        "borrow_blocked",
        "due_for_migration",
        "migrate_now",
        "eligible_for_pro",
        "can_switch_to_classic",
    ]:
        assert risk[flag].any() and not risk[flag].all(), flag
    assert set(risk["borrow_blocked_reason"].drop_nulls().cast(pl.String)) == {
        "collateral_below_initial_risk_ratio",
        "pro_not_compliant",
        "no_available_margin",
    }
    assert (risk["partial_repayment_usdt"] > 0).any() and (risk["bad_debt_usdt"] > 0).any()
    assert (risk["switches_left_today"] == 0).any()
    assert risk.filter(pl.col("total_liability_usdt") == 0)["classic_margin_level"].eq(float("inf")).all()


def test_formula_cut_over(golden_runs: dict[str, Path]) -> None:
    """09:59:59Z uses the old Pro formula, 10:00:00Z the new one (docs/rules.md §2, §3)."""
    new = pl.read_parquet(golden_runs["new"] / "account_risk.parquet")
    old = pl.read_parquet(golden_runs["old"] / "account_risk.parquet")
    assert new["pro_margin_level"].equals(new["pro_margin_level_new"])
    assert old["pro_margin_level"].equals(old["pro_margin_level_old"])
    pro = new.filter(pl.col("margin_mode") == "pro")
    assert pro["margin_level"].equals(pro["pro_margin_level_new"])


def test_buckets_give_the_same_outputs(golden_runs: dict[str, Path], tmp_path: Path) -> None:
    """Processing account-id buckets one at a time gives exactly the single-pass outputs."""
    run_sample(AS_OFS["new"], tmp_path / "b4", "--buckets", "4")
    manifest = json.loads((tmp_path / "b4" / "manifest.json").read_text())
    assert manifest["buckets"] == 4
    for table in ("account_risk", "actions", "data_issues"):
        assert_frame_equal(
            pl.read_parquet(tmp_path / "b4" / f"{table}.parquet"),
            pl.read_parquet(golden_runs["new"] / f"{table}.parquet"),
            check_exact=True,
        )


def test_verify_command(golden_runs: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(golden_runs["new"], copy)
    assert cli_process("verify", "--out", str(copy)).exit_code == 0
    (copy / "actions.parquet").write_bytes((copy / "actions.parquet").read_bytes()[:-10] + b"0" * 10)
    proc = cli_process("verify", "--out", str(copy))
    assert proc.exit_code == 1 and "actions" in proc.stderr


def _regen() -> None:
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, as_of in AS_OFS.items():
            run_sample(as_of, Path(tmp) / name)
            for table in ("account_risk", "actions"):
                as_text(pl.read_parquet(Path(tmp) / name / f"{table}.parquet")).write_csv(
                    GOLDEN / f"{table}_{name}.csv"
                )
    print(f"golden files rewritten in {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--regen"]:
        _regen()
    else:
        print(__doc__)
