"""Where analysts see what it would take: `sql/remediation.sql` and its section of the cohort page.

A hand-built run (literal frames, every top-up worked out by hand) gives the report's exact rows; on
the sample runs the report adds up to account_risk (an independent polars computation); the page's
section lays out the report's rows, with a chart only when some account is blocked.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from crossmargin.analytics.html import ReportData
from crossmargin.analytics.remediation_section import remediation_section
from crossmargin.analytics.sql import run_report
from crossmargin.job import run_job
from support.inputs import account, balance, one_slice, order, price, tables, tiers
from support.runs import NEW_AS_OF, risk

REPORT = "remediation"


def _run(tmp: Path, book: dict[str, pl.DataFrame]) -> Path:
    inputs = tmp / "in"
    inputs.mkdir()
    for name, frame in book.items():
        frame.write_parquet(inputs / f"{name}.parquet")
    run_job(NEW_AS_OF, inputs, tmp / "out")
    return tmp / "out"


def hand_built_book() -> dict[str, pl.DataFrame]:
    """USDT collateral [0, 10k) × 1, [10k, ∞) × 0 (a deposit's collateral stops at 10,000); USDT's
    maintenance rate 0.125. Classic 3x (margin call > 1.3 · L; Pro: (C − L − OOL)/MM > 2 and net equity
    > 5,000) and Pro 3x (margin call: (C − L)/MM > 1.5; switching: C/L > 1.5):

    | id | mode | held / owed | margin call | Pro (level, net equity) | orders | switch |
    | 1 | classic | 1,000 / 0 | 0 | (0, 4,000) → 4,000 | 0 | |
    | 2 | classic | 1,200 / 1,000 | 100 | (50, 4,800) → 4,800 | none enough | |
    | 3 | classic | 500 / 1,000 | 800 | (750, 5,500) → 5,500 | none enough | |
    | 4 | classic | 6,000 / 0 | 0 | 0 | 0 | |
    | 5 | classic | 9,000 / 9,000 | 2,700 | C = 11,250 > 10k: none | none enough | |
    | 6 | pro | 1,000 / 1,000 | 187.5 | | | 500 |
    | 7 | pro | 20,000 / 1,000 | 0 | | | 0 |
    | 8 | pro | 100 / 10,000 | C = 11,875: none | | | C = 15,000: none |
    | 9 | classic | 900 / 500, three orders of loss 150 | 0 | (175, 4,600) → 4,600 | 2 | |
    | 10 | classic | 0 / 20,000 | 26,000 | C = 25,000: none | none enough | |
    """
    held_owed = {
        1: (1000, 0),
        2: (1200, 1000),
        3: (500, 1000),
        4: (6000, 0),
        5: (9000, 9000),
        6: (1000, 1000),
        7: (20_000, 1000),
        8: (100, 10_000),
        9: (900, 500),
        10: (0, 20_000),
    }
    pro = {6, 7, 8}
    return tables(
        accounts=[account(i, "pro" if i in pro else "classic") for i in held_owed],
        balances=[balance(i, "USDT", free=h, borrowed=o) for i, (h, o) in held_owed.items()],
        # a BUY of 1 BTC at 200 with BTC at 100 and ratio 0.5: given 200, received 50, loss 150
        open_orders=[order(9, k, "BTC", "USDT", "BUY", 200.0, 1.0) for k in (1, 2, 3)],
        prices=[*price("USDT", 1.0), *price("BTC", 100.0)],
        collateral_tiers=[tiers("USDT", [(0, 10_000, 1.0), (10_000, None, 0.0)]), one_slice("BTC", 0.5)],
    )


# (margin_mode, condition, band) -> (accounts, topup_usdt, orders_to_cancel)
EXPECTED = {
    ("classic", "out_of_margin_call", "0"): (3, 0.0, None),  # 1, 4, 9
    ("classic", "out_of_margin_call", "(0, 100]"): (1, 100.0, None),  # 2
    ("classic", "out_of_margin_call", "(500, 1k]"): (1, 800.0, None),  # 3
    ("classic", "out_of_margin_call", "(1k, 5k]"): (1, 2700.0, None),  # 5
    ("classic", "out_of_margin_call", "> 10k"): (1, 26_000.0, None),  # 10
    ("classic", "eligible_for_pro", "0"): (1, 0.0, None),  # 4
    ("classic", "eligible_for_pro", "(1k, 5k]"): (3, 13_400.0, None),  # 1, 2, 9
    ("classic", "eligible_for_pro", "(5k, 10k]"): (1, 5500.0, None),  # 3
    ("classic", "eligible_for_pro", "no deposit is enough"): (2, None, None),  # 5, 10
    ("classic", "pro_level_by_cancelling", "0"): (2, None, 0),  # 1, 4 (no liability)
    ("classic", "pro_level_by_cancelling", "2"): (1, None, 2),  # 9
    ("classic", "pro_level_by_cancelling", "cancelling all is not enough"): (4, None, None),  # 2, 3, 5, 10
    ("pro", "out_of_margin_call", "0"): (1, 0.0, None),  # 7
    ("pro", "out_of_margin_call", "(100, 500]"): (1, 187.5, None),  # 6
    ("pro", "out_of_margin_call", "no deposit is enough"): (1, None, None),  # 8
    ("pro", "switch_to_classic", "0"): (1, 0.0, None),  # 7
    ("pro", "switch_to_classic", "(100, 500]"): (1, 500.0, None),  # 6
    ("pro", "switch_to_classic", "no deposit is enough"): (1, None, None),  # 8
}


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("remediation"), hand_built_book())


def test_the_report_on_a_hand_built_run(hand_run: Path) -> None:
    got = run_report(REPORT, hand_run)
    rows = {
        (str(r["margin_mode"]), r["condition"], r["band"]): (
            r["accounts"],
            r["topup_usdt"],
            r["orders_to_cancel"],
        )
        for r in got.iter_rows(named=True)
    }
    assert rows.keys() == EXPECTED.keys()
    for key, (accounts, topup, orders) in EXPECTED.items():
        assert rows[key][0] == accounts and rows[key][2] == orders, key
        assert rows[key][1] == (None if topup is None else pytest.approx(topup, rel=1e-12)), key
    # in order: mode, then condition, then band from 0 to "none is enough"
    keys = got.select("margin_mode", "condition_order", "band_order").rows()
    assert keys == sorted(keys, key=lambda k: (str(k[0]), k[1], k[2]))


@pytest.mark.parametrize("which", ["new", "old"])
def test_the_report_adds_up_to_account_risk(sample_runs, which: str) -> None:
    """Per (mode, condition) the bands count every account the column is defined for once, and sum its
    top-ups (orders); every band holds only values of its range."""
    out = getattr(sample_runs, which)
    got = run_report(REPORT, out).with_columns(pl.col("margin_mode").cast(pl.String))
    r = risk(out)
    columns = {
        ("classic", "out_of_margin_call"): "margin_call_topup_usdt",
        ("pro", "out_of_margin_call"): "margin_call_topup_usdt",
        ("classic", "eligible_for_pro"): "pro_topup_usdt",
        ("pro", "switch_to_classic"): "classic_switch_topup_usdt",
    }
    if which == "new":
        columns["classic", "pro_level_by_cancelling"] = "pro_orders_to_cancel"
    assert set(got.select("margin_mode", "condition").unique().rows()) == set(columns)
    for (mode, condition), column in columns.items():
        mine = r.filter(pl.col("margin_mode") == mode)[column]
        part = got.filter((pl.col("margin_mode") == mode) & (pl.col("condition") == condition))
        assert part["accounts"].sum() == mine.len() > 0, (mode, condition)
        total = part["orders_to_cancel" if column == "pro_orders_to_cancel" else "topup_usdt"].sum()
        assert total == pytest.approx(mine.sum(), rel=1e-9, abs=1e-9), (mode, condition)
        never = part.filter(pl.col("band_order") == 9)["accounts"].sum()
        assert never == mine.null_count(), (mode, condition)
    topups = got.filter(
        pl.col("condition") != "pro_level_by_cancelling", pl.col("band_order").is_between(1, 6)
    )
    edges = {
        1: (0, 100),
        2: (100, 500),
        3: (500, 1000),
        4: (1000, 5000),
        5: (5000, 10_000),
        6: (10_000, None),
    }
    for row in topups.iter_rows(named=True):
        low, high = edges[row["band_order"]]
        assert row["topup_usdt"] > low * row["accounts"], row
        assert high is None or row["topup_usdt"] <= high * row["accounts"], row


def test_the_page_section_lays_out_the_report(hand_run: Path) -> None:
    section = remediation_section(ReportData(hand_run))
    assert section.startswith("<section><h2>What it would take</h2>")
    assert section.count("<svg") == 1  # blocked accounts: the chart, with both panels
    for r in run_report(REPORT, hand_run).iter_rows(named=True):
        cells = rf'<td class="text">{r["condition"]}</td><td class="text">{re.escape(r["band"])}</td>'
        cells += rf'<td class="num">{r["accounts"]:,}</td>'
        assert re.search(cells, section.replace("&gt;", ">")), (r["condition"], r["band"])
    assert "condition_order" not in section and "band_order" not in section


def test_no_chart_when_no_account_is_blocked(tmp_path: Path) -> None:
    """Every condition holds (no liability, net equity above 5,000): the table only, and a note."""
    book = tables(
        accounts=[account(1), account(2, "pro")],
        balances=[balance(1, "USDT", free=6000.0), balance(2, "USDT", free=1000.0)],
    )
    section = remediation_section(ReportData(_run(tmp_path, book)))
    assert "<svg" not in section
    assert "No account is blocked by a condition a deposit or a cancellation could lift." in section
    assert section.count("<tr>") == 1 + 5  # header and one band 0 row per (mode, condition)
