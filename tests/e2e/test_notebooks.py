"""The analyst notebooks run top to bottom as the README starts them (nbclient, the venv's python3 kernel).

The README's command is `CROSSMARGIN_OUT=out/today jupyter lab notebooks/`, typed at the top of a
clone: JupyterLab starts each kernel with its working directory in `notebooks/`, with the environment
of the shell, whose PWD is the directory the command was typed in. The test gives the kernel exactly
that: cwd `notebooks/` of this repository (which holds no `out/`), PWD a directory holding the run in
`out/today`, and the relative `CROSSMARGIN_OUT=out/today`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest

from support import REPO
from support.runs import MISSING_NIGHT, OTHER_POLICY_NIGHT, risk

NOTEBOOKS = ["risk_overview", "migration_cohort"]


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return data.get("text/plain", "") + data.get("text/html", "")


@pytest.fixture(scope="module")
def typed_dir(sample_runs, sample_root, tmp_path_factory) -> Path:
    """The directory the README's command is typed in: a run's outputs in out/today."""
    top = tmp_path_factory.mktemp("clone")
    shutil.copytree(sample_runs.new, top / "out" / "today")
    shutil.copytree(sample_root.root, top / "out" / "root")
    assert not (REPO / "notebooks" / "out" / "today").exists()  # only PWD can find the run
    return top


def _execute(
    name: str, typed_dir: Path, monkeypatch, env: tuple[str, str] = ("CROSSMARGIN_OUT", "out/today")
) -> list:
    monkeypatch.setenv(*env)
    monkeypatch.setenv("PWD", str(typed_dir))  # what the shell exported where the command was typed
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.get("outputs") for c in code), "commit notebooks without outputs"
    client = nbclient.NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "notebooks")}},  # the kernel's working directory
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    for cell in code:
        assert cell.outputs, f"{name}: a code cell printed nothing:\n{cell.source[:200]}"
        assert not [o for o in cell.outputs if o.get("output_type") == "error"]
    return code


def _cell_text(cell) -> str:
    return "".join(_text(o) for o in cell.outputs)


def _has_image(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.outputs)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_reads_the_run_named_from_where_the_command_was_typed(name, typed_dir, monkeypatch):
    code = _execute(name, typed_dir, monkeypatch)
    out = (typed_dir / "out" / "today").resolve()
    manifest = json.loads((out / "manifest.json").read_text())
    first = _cell_text(code[0])
    assert f"run output: {out}\n" in first
    assert f"as_of {manifest['as_of']}, policy {manifest['policy_version']}" in first
    assert f"{manifest['accounts_in']:,} input accounts" in first
    everything = "".join(_cell_text(c) for c in code)
    must = {
        "risk_overview": ["margin_calls", "borrow_blocked_reason", "pro_not_compliant"],
        "migration_cohort": ["switch_now", "eligible_for_pro", "partial_repayment_usdt"],
    }[name]
    for word in must:
        assert word in everything, word
    assert any(_has_image(c) for c in code)  # the charts were drawn


def test_risk_overview_chart_has_the_runs_thresholds_and_a_title(typed_dir, monkeypatch):
    code = _execute("risk_overview", typed_dir, monkeypatch)
    out = typed_dir / "out" / "today"
    manifest = json.loads((out / "manifest.json").read_text())
    policy = manifest["policy"]
    chart = next(c for c in code if "margin_level_distribution" in c.source and _has_image(c))
    text = _cell_text(chart)
    assert (
        f"Margin levels at {manifest['as_of']} with the run's thresholds (policy {manifest['policy_version']})"
        in text
    )
    assert f"Pro margin call = {policy['pro_margin_call']:g}\n" in text
    assert f"Pro liquidation = {policy['pro_liquidation']:g}\n" in text
    for lev, tier in policy["classic"].items():
        assert f"Classic {lev}x margin call = {tier['margin_call']:g}\n" in text
        assert f"Classic {lev}x liquidation = {tier['liquidation']:g}\n" in text
    # the book overview shows the run's account counts per mode
    overview = _cell_text(next(c for c in code if 'run_report("risk_overview"' in c.source))
    per_mode = risk(out).group_by("margin_mode").len()
    for mode, n in per_mode.iter_rows():
        assert mode in overview and str(n) in overview


def test_programme_notebook_reads_the_root_named_from_where_the_command_was_typed(typed_dir, monkeypatch):
    code = _execute("programme", typed_dir, monkeypatch, env=("CROSSMARGIN_ROOT", "out/root"))
    first = _cell_text(code[0])
    assert f"root: {(typed_dir / 'out' / 'root').resolve()}\n" in first
    assert "5 verified partitions, 2025-01-13 to 2025-01-18" in first
    nights = _cell_text(code[1])
    assert (
        f"missing nights: [datetime.date({', '.join(str(int(x)) for x in MISSING_NIGHT.split('-'))})]"
        in nights
    )
    assert "under another policy version: [datetime.date(2025, 1, 13)]" in nights and OTHER_POLICY_NIGHT
    everything = "".join(_cell_text(c) for c in code)
    for word in ("newly_compliant", "compliance_state", "cohort_as_of", "margin_state"):
        assert word in everything, word
    assert any(_has_image(c) for c in code)


def test_migration_cohort_explains_the_account_with_the_largest_repayment(typed_dir, monkeypatch):
    code = _execute("migration_cohort", typed_dir, monkeypatch)
    cell = next(c for c in code if "explain(" in c.source)
    largest = risk(typed_dir / "out" / "today").sort(
        ["partial_repayment_usdt", "account_id"], descending=[True, False]
    )
    row = largest.row(0, named=True)
    text = _cell_text(cell)
    assert (
        f"account {row['account_id']} (scored): partial_repayment_usdt = {row['partial_repayment_usdt']!r}"
        in text
    )
    assert "docs/rules.md#partial-repayment" in text and "classic_margin_level" in text
