"""The analyst notebooks run top to bottom on a real run (nbclient, the venv's python3 kernel)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from analytics_fixtures import REPO, sample_runs

nbclient = pytest.importorskip("nbclient", reason="nbclient is in the [dev] extra")

NOTEBOOKS = ["risk_overview", "migration_cohort"]


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return data.get("text/plain", "") + data.get("text/html", "")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_on_a_sample_run(name, tmp_path, monkeypatch):
    runs = sample_runs()
    monkeypatch.setenv("CROSSMARGIN_OUT", str(runs.new))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
    path = REPO / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.get("outputs") for c in code), "commit notebooks without outputs"
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    for cell in code:
        assert cell.outputs, f"{name}: a code cell printed nothing:\n{cell.source[:200]}"
        assert not [o for o in cell.outputs if o.get("output_type") == "error"]
    first = "".join(_text(o) for o in code[0].outputs)
    assert str(runs.new) in first and "2025-01-21T10:00:00Z" in first
    everything = "".join(_text(o) for c in code for o in c.outputs)
    must = {
        "risk_overview": ["margin_calls", "borrow_blocked_reason", "pro_not_compliant"],
        "migration_cohort": ["switch_now", "eligible_for_pro", "partial_repayment_usdt"],
    }[name]
    for word in must:
        assert word in everything, word
    # the charts were drawn
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)


def test_notebooks_default_to_out_dir():
    for name in NOTEBOOKS:
        text = Path(REPO / "notebooks" / f"{name}.ipynb").read_text()
        assert 'os.environ.get(\\"CROSSMARGIN_OUT\\", \\"out\\")' in text
