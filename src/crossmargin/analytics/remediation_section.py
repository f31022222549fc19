"""The "What it would take" section of the cohort page (`crossmargin.analytics.html`): report
`sql/remediation.sql` laid out, a chart and its table; nothing is summed or counted here.

The chart shows the accounts a condition blocks: the top-up bands of each (margin mode, condition) as
grouped bars, and the bands of orders to cancel beside them; band "0" (the condition holds, or any
deposit lifts it) is the table's only. A panel without such accounts is left out, and the chart is a
note when neither has any.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from crossmargin.analytics.page import COLORS, Chart, report_table, section, title

if TYPE_CHECKING:
    from crossmargin.analytics.html import ReportData

REPORT = "remediation"
CANCELLING = "pro_level_by_cancelling"
# (margin mode, condition) -> bar colour, in the report's order
SERIES = {
    ("classic", "out_of_margin_call"): COLORS["classic"],
    ("classic", "eligible_for_pro"): COLORS["accent"],
    ("pro", "out_of_margin_call"): COLORS["bad"],
    ("pro", "switch_to_classic"): COLORS["pro_new"],
    ("classic", CANCELLING): COLORS["pro_old"],
}


def _blocked(bands: pl.DataFrame) -> pl.DataFrame:
    """The report's rows of accounts the condition blocks (every band but 0)."""
    return bands.filter(pl.col("band_order") > 0)


def _band_panel(rows: pl.DataFrame, heading: str, xlabel: str):
    """Grouped bars: accounts per band, one bar per (margin mode, condition) of `rows`."""
    order = rows.select("band_order", "band").unique().sort("band_order")
    labels = order["band"].to_list()
    series = rows.select("margin_mode", "condition", "condition_order").unique()
    series = series.sort("margin_mode", "condition_order").select("margin_mode", "condition").rows()

    def draw(ax, panels: int) -> None:
        width = 0.8 / max(len(series), 1)
        for k, (mode, condition) in enumerate(series):
            got = dict(
                rows.filter((pl.col("margin_mode") == mode) & (pl.col("condition") == condition))
                .select("band", "accounts")
                .iter_rows()
            )
            xs = [i - 0.4 + (k + 0.5) * width for i in range(len(labels))]
            heights = [got.get(label, 0) for label in labels]
            bars = ax.bar(
                xs,
                heights,
                width,
                color=SERIES[mode, condition],
                label=f"{mode}: {condition}",
            )
            ax.bar_label(bars, labels=[f"{h:,}" if h else "" for h in heights], fontsize=7)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7.5)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("accounts", fontsize=8)
        ax.tick_params(axis="y", labelsize=7.5)
        ax.margins(y=0.15)
        title(ax, heading, panels)
        ax.legend(fontsize=7)

    return draw


def _chart(bands: pl.DataFrame) -> str:
    blocked = _blocked(bands)
    topups = blocked.filter(pl.col("condition") != CANCELLING)
    orders = blocked.filter(pl.col("condition") == CANCELLING)
    chart = Chart(3.6)
    chart.add(
        _band_panel(topups, "Blocked accounts by the least deposit that lifts them", "top-up (USDT)"),
        topups.height > 0,
    )
    chart.add(
        _band_panel(
            orders, "Classic accounts by the open orders to cancel for Pro's level", "orders to cancel"
        ),
        orders.height > 0,
    )
    return chart.render("No account is blocked by a condition a deposit or a cancellation could lift.")


def remediation_section(data: ReportData) -> str:
    bands = data.report(REPORT)
    note = (
        '<p class="note">A top-up is the deposit (USDT) at which the level reaches its threshold: the account '
        "must deposit more than that. Band 0: the condition holds now, or the level sits exactly at its "
        "threshold; <i>no deposit is enough</i>: a USDT collateral slice of ratio 0 is reached first, or USDT "
        "has no usable price or collateral tiers. Orders are cancelled largest loss first.</p>"
    )
    table = report_table(bands.drop("condition_order", "band_order"), REPORT)
    return section("What it would take", REPORT, _chart(bands) + note + table)
