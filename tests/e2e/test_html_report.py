"""The HTML pages: self-contained, numbers from the SQL reports, laid out well in Chromium at 1280 px.

Every page (the cohort page of a run without and with stress scenarios, and the programme page over a
root of nightly partitions) is rendered in headless Chromium at 1280 px with a small script appended
to a copy of the page, which measures: every table fits the page, chart titles do not overlap, every
chart axes draws data; and the page's words count right ("1 account", never "1 accounts").
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crossmargin.analytics.html import SECTIONS, ReportData, render_report, write_report
from crossmargin.analytics.sql import run_report
from crossmargin.io.inputs import load_tables
from crossmargin.job import run_job
from support.cli import assert_one_error_line, cli, cli_process
from support.runs import NEW_AS_OF, risk

CHROMIUM = Path("/usr/bin/chromium")
N_CHARTS = (
    6  # margin level distribution, cohorts, partial repayments, funnel, what it would take, stress scenarios
)


@pytest.fixture(scope="module")
def report(sample_runs, tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("html") / "cohort_report.html"
    write_report(sample_runs.new, path)
    return path, path.read_text(encoding="utf-8")


def test_report_is_self_contained(report):
    _, text = report
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("<svg") == N_CHARTS
    lowered = text.lower()
    for needle in ("<script", "<link", "<img", " src=", "@import", "url(http", "cdn"):
        assert needle not in lowered, needle
    # the only URLs are the SVG/XLink namespace names (never fetched)
    urls = set(re.findall(r"https?://[^\"' )>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "duplicate element ids across the inline charts"
    for ref in set(re.findall(r'href="#([^"]+)"', text)) | set(re.findall(r"url\(#([^)]+)\)", text)):
        assert f'id="{ref}"' in text, ref


def test_report_numbers_come_from_the_sql_reports(sample_runs, report):
    _, text = report
    runs = sample_runs
    r = risk(runs.new)
    due = r.filter("due_for_migration").height
    repay = r["partial_repayment_usdt"].sum()
    assert due > 0
    kpi = {
        label: value
        for value, label in re.findall(r'<div class="v">([^<]*)</div><div class="l">([^<]*)</div>', text)
    }
    assert kpi["accounts in account_risk"] == f"{r.height:,}"
    assert kpi["Pro accounts due for migration"] == f"{due:,}"
    assert kpi["to be switched to Classic now"] == f"{r.filter('migrate_now').height:,}"
    assert kpi["partial repayment required (USDT)"] == f"{repay:,.0f}"
    # every funnel step of the report is a row of the page's funnel table, with its counts
    for row in run_report("pro_eligibility_funnel", runs.new).iter_rows(named=True):
        cells = (
            rf"<td class=\"text\">{row['condition']}</td><td class=\"num\">{row['failing_accounts']:,}</td>"
        )
        assert re.search(cells, text), row["condition"]
    assert "2025-01-21 10:00 UTC" in text and "Pro formula in force: new" in text


def test_report_without_pro_accounts(sample_runs, tmp_path):
    """A book with no Pro account (nothing due, empty cohorts) still renders every chart."""
    runs = sample_runs
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, table in load_tables(runs.input_dir).items():
        frame = table.filter(pl.col("margin_mode") == "classic") if name == "accounts" else table
        frame.collect().write_parquet(inputs / f"{name}.parquet")
    out = tmp_path / "out"
    run_job(NEW_AS_OF, inputs, out, max_issue_rate=1.0)
    assert risk(out).filter(pl.col("margin_mode") == "pro").height == 0
    text = render_report(out)
    # no empty chart: the cohort and repayment charts say there is nothing to draw instead
    assert text.count("<svg") == N_CHARTS - 2
    assert "No Pro account is due for migration: no cohort chart." in text
    assert "No Pro account is due for migration: nothing to repay." in text
    assert "Pro accounts: Pro margin level" not in text  # the Pro panel is left out, the Classic one kept
    assert '<div class="v">0</div><div class="l">Pro accounts due for migration</div>' in text


def test_report_cli_is_deterministic(sample_runs, report, tmp_path):
    dest = tmp_path / "r.html"
    for _ in range(2):  # a report it wrote is replaced by the next one
        res = cli("report", "--out", sample_runs.new, "--html", dest)
        assert res.exit_code == 0, res
        assert f"{N_CHARTS} charts" in res.stdout
        assert dest.read_text(encoding="utf-8") == report[1]  # rerun = same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left


def test_report_cli_errors_are_one_line(sample_runs, tmp_path):
    new = sample_runs.new
    res = cli("report", "--out", tmp_path / "nope", "--html", tmp_path / "x.html")
    assert_one_error_line(res, 2, "not a run's output directory")
    assert not (tmp_path / "x.html").exists()
    (tmp_path / "empty").mkdir()
    res = cli("report", "--out", tmp_path / "empty", "--html", tmp_path / "x.html")
    assert_one_error_line(res, 2, "no manifest.json")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(new, corrupt)
    (corrupt / "manifest.json").write_text("{")
    assert_one_error_line(cli("report", "--out", corrupt, "--html", tmp_path / "x.html"), 2, "corrupt")
    # a file crossmargin did not write is left alone unless --force
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my own notes</html>")
    res = cli("report", "--out", new, "--html", mine)
    assert_one_error_line(res, 2, "refusing to replace", "--force")
    assert mine.read_text() == "<html>my own notes</html>"
    assert cli("report", "--out", new, "--html", mine, "--force").exit_code == 0
    assert mine.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # unwritable destinations
    res = cli("report", "--out", new, "--html", mine / "r.html")
    assert_one_error_line(res, 2, "cannot write", "is not a directory")
    assert_one_error_line(cli("report", "--out", new, "--html", tmp_path), 2, "is a directory")
    res = cli_process("report", "--out", tmp_path / "nope", "--html", tmp_path / "x.html")
    assert_one_error_line(res, 2, "no such directory")


def test_report_needs_no_extra():
    """matplotlib (the charts) is a base dependency of the installed package, not an extra's."""
    from importlib.metadata import requires

    base = [r for r in requires("crossmargin") or [] if "extra ==" not in r]
    assert any(r.startswith("matplotlib") for r in base), base


def test_report_sections_are_one_function_each(sample_runs, report):
    """The page is SECTIONS in order; a section added to the list shows up in the report."""
    _, text = report
    titles = re.findall(r"<section><h2>([^<]+)</h2>", text)
    assert len(titles) == len(SECTIONS) == 11
    assert titles[0] == "Book overview" and titles[-1] == "Stress scenarios and distance to liquidation"

    def extra(data: ReportData) -> str:
        n = data.report("risk_overview")["accounts"].sum()
        return f"<section><h2>Extra</h2><p>{n} accounts</p></section>"

    SECTIONS.append(extra)
    try:
        page = render_report(sample_runs.new)
    finally:
        SECTIONS.remove(extra)
    assert page.count("<section>") == 12 and f"<p>{risk(sample_runs.new).height} accounts</p>" in page


# ------------------------------------------------------------------ a real headless browser
def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        # offline: any host lookup fails, so the page can only show what it carries itself
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium absent (apt-get install chromium)")
def test_chromium_renders_the_charts(report, tmp_path):
    path, _ = report
    url = path.resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    assert rendered.count("<svg") == N_CHARTS  # the parsed DOM holds every inline chart
    assert len(re.findall(r"<path\b", rendered)) > 200  # with its drawing (bars, glyphs, axes)
    assert "Pro eligibility funnel" in rendered and "switch_now" in rendered

    shot = tmp_path / "report.png"
    res = _chromium(tmp_path, "--window-size=1280,4200", f"--screenshot={shot}", url)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[0] >= 4000 and img.shape[1] == 1280
    non_white = (img.sum(axis=2) < 720).mean()
    assert 0.03 < non_white < 0.9, non_white  # neither blank nor a solid block

    def share(rgb: tuple[int, int, int], tol: int = 12) -> float:
        return (np.abs(img - np.array(rgb)).max(axis=2) <= tol).mean()

    # each chart's own colour is on screen: Classic bars, new-formula Pro bars, the funnel's bars
    assert share((0x3B, 0x6F, 0xB6)) > 1e-4, "Classic level histogram not drawn"
    assert share((0xD9, 0x82, 0x2B)) > 1e-4, "Pro (new formula) histogram / repayment bars not drawn"
    assert share((0x2F, 0x9E, 0x6E)) > 1e-4, "eligibility funnel not drawn"


# ------------------------------------------------------------------ layout quality at 1280 px
PLURAL_NOUNS = ("accounts", "charts", "rows", "nights", "partitions", "scenarios", "days", "issues")
# appended to a copy of the page: measures the layout, writes the result as JSON into the DOM
_MEASURE = """<script>
(() => {
  const page = document.documentElement.clientWidth;
  const out = {page, wide_tables: [], overlapping_titles: [], clipped_titles: [], empty_axes: [], charts: 0, tables: 0};
  const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1
                        && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  document.querySelectorAll('table').forEach((t, i) => {
    out.tables += 1;
    const r = t.getBoundingClientRect();
    if (r.right > page || t.scrollWidth > t.parentElement.clientWidth)
      out.wide_tables.push({i, right: r.right, width: t.scrollWidth, head: t.rows[0].innerText.slice(0, 80)});
  });
  document.querySelectorAll('div.chart svg').forEach((svg, k) => {
    out.charts += 1;
    const box = svg.getBoundingClientRect();
    const titles = [...svg.querySelectorAll('g[id*="-title-"]')]
      .map(g => g.getBoundingClientRect()).filter(r => r.width > 0);
    titles.forEach((a, i) => {
      if (!inside(a, box)) out.clipped_titles.push(k);
      titles.slice(i + 1).forEach(b => { if (meet(a, b)) out.overlapping_titles.push(k); });
    });
    svg.querySelectorAll('g[id*="-axes_"]').forEach(ax => {
      const drawn = [...ax.querySelectorAll('[id*="-data-"]')].filter(e => {
        const r = e.getBoundingClientRect(); return r.width * r.height > 0; });
      if (!drawn.length) out.empty_axes.push(k + ':' + ax.id);
    });
  });
  out.text = document.body.innerText;
  const pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def _measure(page: Path, tmp: Path) -> dict:
    """The page laid out by Chromium at 1280 px: the measurements of _MEASURE."""
    import html as html_module
    import json

    probe = tmp / f"measure-{page.name}"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"), encoding="utf-8"
    )
    dom = _chromium(tmp, "--window-size=1280,900", "--dump-dom", probe.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    return json.loads(html_module.unescape(found.group(1)))


@pytest.fixture(scope="module")
def pages(tmp_path_factory, sample_runs, sample_root, scenario_run) -> dict[str, Path]:
    from crossmargin.analytics.programme import write_programme_page
    from crossmargin.analytics.root import open_root

    tmp = tmp_path_factory.mktemp("pages")
    return {
        "cohort": write_report(sample_runs.new, tmp / "cohort.html"),
        "cohort_with_scenarios": write_report(scenario_run, tmp / "scenarios.html"),
        "programme": write_programme_page(open_root(sample_root.root), tmp / "programme.html"),
    }


@pytest.mark.parametrize("name", ["cohort", "cohort_with_scenarios", "programme"])
def test_page_words_count_right(pages, name):
    """Counts in words agree with their number, in the text and in the charts (SVG keeps text as comments)."""
    text = pages[name].read_text(encoding="utf-8")
    wrong = re.findall(rf"(?<![\d.,])1 ({'|'.join(PLURAL_NOUNS)})\b", text)
    assert not wrong, wrong
    assert re.search(r"(?<![\d.,])1 (account|night|row|partition)\b", text), "no singular count on the page"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium absent (apt-get install chromium)")
@pytest.mark.parametrize("name", ["cohort", "cohort_with_scenarios", "programme"])
def test_page_layout_in_chromium_at_1280px(pages, name, tmp_path):
    m = _measure(pages[name], tmp_path)
    assert m["page"] >= 1200 and m["tables"] >= 4 and m["charts"] >= 2, {
        k: m[k] for k in ("page", "tables", "charts")
    }
    assert m["wide_tables"] == [], m["wide_tables"]  # no table wider than the page
    assert m["overlapping_titles"] == [] and m["clipped_titles"] == [], m
    assert m["empty_axes"] == [], m["empty_axes"]  # every axes draws data
    wrong = re.findall(rf"(?<![\d.,])1 ({'|'.join(PLURAL_NOUNS)})\b", m["text"])
    assert not wrong, wrong


def test_the_layout_checks_can_fail(tmp_path):
    """The measuring script sees a table wider than the page, overlapping titles and an empty axes."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium absent")
    from matplotlib.figure import Figure

    from crossmargin.analytics.page import document, svg

    fig = Figure(figsize=(12, 3))
    left, right = fig.subplots(1, 2)
    left.set_title("a title long enough to run into the title of the panel beside it " * 2)
    right.set_title("and the title of the panel beside it, just as long as the first one " * 2)
    right.bar([1, 2], [3, 4])  # the left axes draws nothing
    wide = "<table><tr>" + "<td>" + "x" * 400 + "</td></tr></table>"
    page = tmp_path / "bad.html"
    page.write_text(document("bad", "", wide + svg(fig)), encoding="utf-8")
    m = _measure(page, tmp_path)
    assert m["wide_tables"] and m["overlapping_titles"] and len(m["empty_axes"]) == 1, m
