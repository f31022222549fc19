"""The HTML migration cohort report: self-contained, numbers from the SQL reports, renders in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analytics_fixtures import NEW_AS_OF, assert_one_error_line, cli, cli_process, risk, sample_runs
from crossmargin.analytics.html import SECTIONS, ReportData, render_report, write_report
from crossmargin.analytics.sql import run_report
from crossmargin.io.inputs import load_tables
from crossmargin.job import run_job

CHROMIUM = Path("/usr/bin/chromium")
N_CHARTS = 5  # margin level distribution, cohorts, partial repayments, funnel, stress scenarios


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("html") / "cohort_report.html"
    write_report(sample_runs().new, path)
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


def test_report_numbers_come_from_the_sql_reports(report):
    _, text = report
    runs = sample_runs()
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
        cells = rf"<td>{row['condition']}</td><td class=\"num\">{row['failing_accounts']:,}</td>"
        assert re.search(cells, text), row["condition"]
    assert "2025-01-21 10:00 UTC" in text and "Pro formula in force: new" in text


def test_report_without_pro_accounts(tmp_path):
    """A book with no Pro account (nothing due, empty cohorts) still renders every chart."""
    runs = sample_runs()
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, table in load_tables(runs.input_dir).items():
        frame = table.filter(pl.col("margin_mode") == "classic") if name == "accounts" else table
        frame.collect().write_parquet(inputs / f"{name}.parquet")
    out = tmp_path / "out"
    run_job(NEW_AS_OF, inputs, out, max_issue_rate=1.0)
    assert risk(out).filter(pl.col("margin_mode") == "pro").height == 0
    text = render_report(out)
    assert text.count("<svg") == N_CHARTS
    assert '<div class="v">0</div><div class="l">Pro accounts due for migration</div>' in text


def test_report_cli_is_deterministic(report, tmp_path, capsys):
    dest = tmp_path / "r.html"
    for _ in range(2):  # a report it wrote is replaced by the next one
        res = cli(capsys, "report", "--out", sample_runs().new, "--html", dest)
        assert res.code == 0, res
        assert f"{N_CHARTS} charts" in res.out
        assert dest.read_text(encoding="utf-8") == report[1]  # rerun = same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left


def test_report_cli_errors_are_one_line(tmp_path, capsys):
    new = sample_runs().new
    res = cli(capsys, "report", "--out", tmp_path / "nope", "--html", tmp_path / "x.html")
    assert_one_error_line(res, 2, "not a run's output directory")
    assert not (tmp_path / "x.html").exists()
    (tmp_path / "empty").mkdir()
    res = cli(capsys, "report", "--out", tmp_path / "empty", "--html", tmp_path / "x.html")
    assert_one_error_line(res, 2, "no manifest.json")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(new, corrupt)
    (corrupt / "manifest.json").write_text("{")
    assert_one_error_line(
        cli(capsys, "report", "--out", corrupt, "--html", tmp_path / "x.html"), 2, "corrupt"
    )
    # a file crossmargin did not write is left alone unless --force
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my own notes</html>")
    res = cli(capsys, "report", "--out", new, "--html", mine)
    assert_one_error_line(res, 2, "refusing to replace", "--force")
    assert mine.read_text() == "<html>my own notes</html>"
    assert cli(capsys, "report", "--out", new, "--html", mine, "--force").code == 0
    assert mine.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # unwritable destinations
    res = cli(capsys, "report", "--out", new, "--html", mine / "r.html")
    assert_one_error_line(res, 2, "cannot write", "is not a directory")
    assert_one_error_line(cli(capsys, "report", "--out", new, "--html", tmp_path), 2, "is a directory")
    res = cli_process("report", "--out", tmp_path / "nope", "--html", tmp_path / "x.html")
    assert_one_error_line(res, 2, "no such directory")


def test_report_needs_no_extra():
    """matplotlib (the charts) is a base dependency of the installed package, not an extra's."""
    from importlib.metadata import requires

    base = [r for r in requires("crossmargin") or [] if "extra ==" not in r]
    assert any(r.startswith("matplotlib") for r in base), base


def test_report_sections_are_one_function_each(report):
    """The page is SECTIONS in order; a section added to the list shows up in the report."""
    _, text = report
    titles = re.findall(r"<section><h2>([^<]+)</h2>", text)
    assert len(titles) == len(SECTIONS) == 10
    assert titles[0] == "Book overview" and titles[-1] == "Stress scenarios and distance to liquidation"

    def extra(data: ReportData) -> str:
        n = data.report("risk_overview")["accounts"].sum()
        return f"<section><h2>Extra</h2><p>{n} accounts</p></section>"

    SECTIONS.append(extra)
    try:
        page = render_report(sample_runs().new)
    finally:
        SECTIONS.remove(extra)
    assert page.count("<section>") == 11 and f"<p>{risk(sample_runs().new).height} accounts</p>" in page


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
