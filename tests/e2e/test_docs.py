"""docs/rules.md stays true to the code: the names it points at exist, its anchors resolve, its
policy defaults are the shipped ones, every data-issue code is documented, and its hand-worked
examples (the repayment, what it would take) are what the job writes for the committed sample.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from crossmargin.io.schemas import ISSUE_CODES
from crossmargin.policy import shipped_policy_text
from support import REPO

RULES = REPO / "docs" / "rules.md"
TEXT = RULES.read_text(encoding="utf-8")
LINES = TEXT.splitlines()

SCENARIOS_MARKER = "<!-- scenarios -->"
# Codes the contract requires; listed here too so that rules.md must document them even before
# schemas.ISSUE_CODES carries them.
EXTRA_ISSUE_CODES = ["ambiguous_price", "stale_price"]


# ------------------------------------------------------------------ parsing rules.md


def _in_scenarios_section() -> list[bool]:
    """Per line of rules.md: is it inside the section that the scenarios marker opens?

    The section runs from the marker to the second level-2 heading after it (the first one is the
    section's own heading), or to the end of the file."""
    flags, inside, headings_seen = [], False, 0
    for line in LINES:
        if line.strip() == SCENARIOS_MARKER:
            inside, headings_seen = True, 0
        elif inside and line.startswith("## "):
            headings_seen += 1
            if headings_seen > 1:
                inside = False
        flags.append(inside)
    return flags


SCENARIO_LINES = _in_scenarios_section()


@dataclass(frozen=True)
class Ref:
    kind: str  # "Code" or "Tests"
    path: str
    names: tuple[str, ...]
    line: int  # 1-based line in rules.md
    in_scenarios: bool

    @property
    def id(self) -> str:
        return f"L{self.line}:{self.path}" + (f" · {', '.join(self.names)}" if self.names else "")


def _refs(kind: str) -> list[Ref]:
    """Every `path · name, name` span of every `Code:` (or `Tests:`) line of rules.md."""
    out = []
    for i, line in enumerate(LINES):
        if not line.startswith(f"{kind}:"):
            continue
        spans = re.findall(r"`([^`]+)`", line)
        assert spans, f"rules.md line {i + 1}: {kind}: line names nothing"
        for span in spans:
            path, _, names = span.partition(" · ")
            out.append(
                Ref(
                    kind,
                    path.strip(),
                    tuple(n.strip() for n in names.split(",") if n.strip()),
                    i + 1,
                    SCENARIO_LINES[i],
                )
            )
    return out


CODE_REFS = _refs("Code")
TEST_REFS = _refs("Tests")


# ------------------------------------------------------------------ names defined in Python files


def _defined_names(path: Path) -> set[str]:
    """Top-level functions, classes and assigned names of a module, plus `Class.member`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names.add(f"{node.name}.{member.name}")
                    elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                        names.add(f"{node.name}.{member.target.id}")
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _names_in(path: Path) -> set[str] | str:
    """Names a documented path defines: a module's, a package's (any module of it), or a data
    file's whole text (a name then has to occur in it)."""
    if path.is_dir():
        return set().union(*(_defined_names(p) for p in sorted(path.rglob("*.py"))))
    if path.suffix == ".py":
        return _defined_names(path)
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------ the pointers


def test_rules_md_points_at_code_and_tests() -> None:
    assert len(CODE_REFS) >= 30
    assert len(TEST_REFS) >= 30
    assert any(r.in_scenarios for r in CODE_REFS)
    marked = [line for line, inside in zip(LINES, SCENARIO_LINES, strict=True) if inside]
    assert not SCENARIO_LINES[0] and next(x for x in marked if x.startswith("## ")).startswith("## 8. ")


def test_every_rule_section_ends_with_code_and_tests() -> None:
    """Each leaf section (a ### section, or a ## section without ### under it) holds a Code: line
    followed by a Tests: line, the last two non-blank lines before the next heading."""
    heads = [i for i, line in enumerate(LINES) if line.startswith(("## ", "### "))]
    leaves = [
        (h, nxt)
        for h, nxt in zip(heads, [*heads[1:], len(LINES)], strict=True)
        if not (LINES[h].startswith("## ") and nxt < len(LINES) and LINES[nxt].startswith("### "))
    ]
    assert len(leaves) >= 25
    for h, nxt in leaves:
        body = [line for line in LINES[h + 1 : nxt] if line.strip() and not line.startswith("<")]
        assert len(body) >= 2, LINES[h]
        assert body[-2].startswith("Code: "), f"{LINES[h]}: no Code: line at its end"
        assert body[-1].startswith("Tests: "), f"{LINES[h]}: no Tests: line at its end"


@pytest.mark.parametrize("ref", CODE_REFS, ids=lambda r: r.id)
def test_code_pointer_exists(ref: Ref) -> None:
    path = REPO / ref.path
    assert path.exists(), f"rules.md line {ref.line}: {ref.path} does not exist"
    defined = _names_in(path)
    for name in ref.names:
        assert name in defined, f"rules.md line {ref.line}: {name} is not defined in {ref.path}"


@pytest.mark.parametrize("ref", TEST_REFS, ids=lambda r: r.id)
def test_tests_pointer_exists(ref: Ref) -> None:
    path = REPO / ref.path
    in_a_layer = re.fullmatch(r"tests/(unit|property|golden|e2e)/test_\w+\.py", ref.path)
    assert in_a_layer and path.is_file(), f"rules.md line {ref.line}: {ref.path}"


def test_the_checker_catches_a_missing_name(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    pass\n\nclass C:\n    x: int\n    def g(self):\n        pass\n\nY = 1\n")
    assert _names_in(module) == {"f", "C", "C.x", "C.g", "Y"}
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "sub" / "a.py").write_text("def h():\n    pass\n")
    assert "h" in _names_in(package)
    assert "f" not in _names_in(package)


# ------------------------------------------------------------------ content


def test_no_reference_to_material_outside_the_repository() -> None:
    # built from pieces so that this file itself names no outside document
    outside_doc = re.compile(r"\b" + "S" + "PEC|" + "spec" + r"\.md", re.IGNORECASE)
    for text, where in [
        (TEXT, "rules.md"),
        ((REPO / "docs" / "conventions.md").read_text(), "conventions.md"),
    ]:
        assert not re.search(r"\b" + "S" + "PEC", text), where
        assert not outside_doc.search(text), where
        assert "../" + "shared" not in text, where
        assert not re.search(r"\bissues?\s*#?\d", text, re.IGNORECASE), where
        assert not re.search(r"#\d+\b", text), where


@pytest.mark.parametrize("code", [*ISSUE_CODES, *EXTRA_ISSUE_CODES])
def test_every_data_issue_code_has_a_row_in_the_codes_table(code: str) -> None:
    assert re.search(rf"^\| `{code}` \| ", TEXT, re.MULTILINE), code


def test_anchors_are_unique_and_every_link_resolves() -> None:
    anchors = re.findall(r'<a id="([a-z0-9-]+)"></a>', TEXT)
    assert len(anchors) == len(set(anchors))
    links = re.findall(r"\]\(#([a-z0-9-]+)\)", TEXT)
    assert links and set(links) <= set(anchors), set(links) - set(anchors)
    for doc in sorted((REPO / "docs").glob("*.md")):
        outside = re.findall(r"rules\.md#([a-z0-9-]+)", doc.read_text(encoding="utf-8"))
        assert set(outside) <= set(anchors), (doc.name, set(outside) - set(anchors))


def _shipped_policy() -> dict:
    """The shipped versions merged in date order (all of them: the defaults the table states)."""
    versions = sorted(tomllib.loads(shipped_policy_text())["version"], key=lambda v: v["effective_from"])
    merged: dict = {}

    def merge(into: dict, over: dict) -> None:
        for k, v in over.items():
            if isinstance(v, dict) and isinstance(into.get(k), dict):
                merge(into[k], v)
            else:
                into[k] = v

    for v in versions:
        merge(merged, v)
    return merged


POLICY_SECTION = TEXT[TEXT.index('<a id="policy"></a>') : TEXT.index('<a id="decisions"></a>')]
POLICY_ROWS = re.findall(r"^\| `([a-z_.0-9]+)` \| ([^|]+) \|", POLICY_SECTION, re.MULTILINE)


def _lookup(tree: dict, key: str):
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


def test_policy_table_lists_every_documented_key() -> None:
    keys = [k for k, _ in POLICY_ROWS]
    assert len(keys) >= 22
    for must in ["market.max_price_age_hours", "market.stable_assets", "activation.restricted_jurisdictions"]:
        assert must in keys


@pytest.mark.parametrize(("key", "cell"), POLICY_ROWS, ids=lambda x: x)
def test_policy_default_matches_policy_toml(key: str, cell: str) -> None:
    value = _lookup(_shipped_policy(), key)
    assert value is not KeyError, f"{key} is not in policy.toml"
    cell = cell.strip()
    if isinstance(value, dt.datetime):
        assert value == dt.datetime.fromisoformat(cell), key
    elif isinstance(value, list):
        assert value == json.loads(cell.strip("`")), key
    elif isinstance(value, (int, float)):
        assert float(value) == float(cell.split()[0].replace(",", "")), key
    else:  # a duration or other text: the documented number must appear in it
        assert re.sub(r"\D", "", cell.split()[0]) in str(value), key


# ------------------------------------------------------------------ the hand-worked repayment


def _row(out: Path, account_id: int) -> dict:
    return (
        pl.read_parquet(out / "account_risk.parquet")
        .filter(pl.col("account_id") == account_id)
        .row(0, named=True)
    )


def test_repayment_example_is_what_the_job_writes(golden_runs: dict[str, Path]) -> None:
    """§4.5 works account 1000264 of data/sample by hand; the job must agree."""
    section = TEXT[TEXT.index('<a id="repayment-example">') : TEXT.index('<a id="bad-debt">')]
    assert "1000264" in section and "14,586.44" in section
    out = golden_runs["new"]
    row = _row(out, 1000264)
    a, liab = 21905.09 + 15400.62, 29704.57 + 28.05
    assert row["total_asset_usdt"] == pytest.approx(37305.71, rel=1e-12) == a
    assert row["total_liability_usdt"] == pytest.approx(29732.62, rel=1e-12) == liab
    assert row["classic_leverage"] == 3 and row["margin_mode"] == "pro" and row["due_for_migration"]
    assert row["classic_margin_level"] < 1.3
    assert row["partial_repayment_usdt"] == pytest.approx(14586.44, rel=1e-12)
    assert repr(row["partial_repayment_usdt"]) in section  # the float64 value quoted in the text
    after = (a - row["partial_repayment_usdt"]) / (liab - row["partial_repayment_usdt"])
    assert after == pytest.approx(1.5, rel=1e-12)
    actions = pl.read_parquet(out / "actions.parquet").filter(pl.col("account_id") == 1000264)
    assert actions["action"].cast(pl.String).to_list() == [
        "BORROW_BLOCKED",
        "MIGRATE_TO_CLASSIC",
        "PARTIAL_REPAYMENT",
    ]


# ------------------------------------------------------------------ what it would take, by hand


def test_topup_examples_are_what_the_job_writes(golden_runs: dict[str, Path]) -> None:
    """§9.2 works a top-up of each kind on accounts of data/sample by hand; the job must agree, to the
    float64 value quoted in the text."""
    section = TEXT[TEXT.index('<a id="topup-examples">') : TEXT.index('<a id="orders-to-cancel">')]
    # 1000037: Pro 5x, USDT only (and a SELL that loses nothing): out of margin call above 1.5
    row = _row(golden_runs["new"], 1000037)
    assert row["margin_mode"] == "pro" and row["margin_call"] and not row["liquidation"]
    assert row["total_liability_usdt"] == pytest.approx(1409.46 + 0.36, rel=1e-12)
    assert row["maintenance_margin_usdt"] == pytest.approx(70.491, rel=1e-12)
    assert row["open_order_loss_usdt"] == 0.0 and row["collateral_usdt"] == 1497.91
    assert row["margin_call_topup_usdt"] == pytest.approx(1.5 * 70.491 - (1497.91 - 1409.82), rel=1e-12)
    assert row["margin_call_topup_usdt"] == pytest.approx(17.6465, rel=1e-12)
    assert "**17.6465**" in section and repr(row["margin_call_topup_usdt"]) in section
    actions = pl.read_parquet(golden_runs["new"] / "actions.parquet").filter(pl.col("account_id") == 1000037)
    call = actions.filter(pl.col("action").cast(pl.String) == "MARGIN_CALL")
    assert call["amount_usdt"].to_list() == [row["margin_call_topup_usdt"]]
    # 1000160: Classic 3x; the Pro level needs 77.5391, net equity 4,977.609: the larger
    row = _row(golden_runs["new"], 1000160)
    assert row["margin_mode"] == "classic"
    level_topup = 2 * 0.05 * 999.27 - (1021.63 + 0.01 * 3.1 * 0.9 - 999.27)
    assert level_topup == pytest.approx(77.5391, rel=1e-12)
    assert row["pro_topup_usdt"] == pytest.approx(5000 - (1021.63 + 0.01 * 3.1 - 999.27), rel=1e-12)
    assert row["pro_topup_usdt"] == pytest.approx(4977.609, rel=1e-12) and row["pro_topup_usdt"] > level_topup
    assert "**4,977.609**" in section and repr(row["pro_topup_usdt"]) in section
    # 1000248: Pro 3x, USDT only: the Classic collateral level above the IRR 1.5
    row = _row(golden_runs["new"], 1000248)
    assert row["margin_mode"] == "pro" and not row["can_switch_to_classic"]
    assert row["collateral_usdt"] == pytest.approx(528.91 + 161.72, rel=1e-12)
    assert row["classic_switch_topup_usdt"] == pytest.approx(
        1.5 * (593.86 + 0.75) - (528.91 + 161.72), rel=1e-12
    )
    assert row["classic_switch_topup_usdt"] == pytest.approx(201.285, rel=1e-12)
    assert "**201.285**" in section and repr(row["classic_switch_topup_usdt"]) in section


def test_orders_example_is_what_the_job_writes(golden_runs: dict[str, Path]) -> None:
    """§9.3 works showcase account 61 by hand: two of its four orders, the tied largest, lift it."""
    section = TEXT[TEXT.index('<a id="orders-example">') : TEXT.index('<a id="remediation-report">')]
    row = _row(golden_runs["new"], 61)
    losses = {8: 52.0, 9: 260.0, 10: 130.0, 11: 260.0}
    assert row["open_order_loss_usdt"] == sum(losses.values()) == 702.0
    assert row["pro_margin_level_new"] == (1540.0 - 1000.0 - 702.0) / 50.0
    assert (540.0 - (702.0 - 260.0)) / 50.0 <= 2 < (540.0 - (702.0 - 520.0)) / 50.0
    assert row["pro_orders_to_cancel"] == 2 and "**2**" in section
    assert row["pro_topup_usdt"] == 4460.0 and "4,460" in section
