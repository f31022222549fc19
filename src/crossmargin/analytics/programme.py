"""The migration programme over every night of a root (`crossmargin report --root ROOT --html FILE`).

One self-contained page (`crossmargin.analytics.page`) laying out the root reports of `sql/`, run
once each on one connection (`root.run_root_reports`); it computes no number itself:

- the nights it covers, and a call-out for the missing nights (no verified partition: none written,
  or left out because it does not verify, with the reason) and for the partitions under another
  policy version than the latest (report `programme_nights`);
- a time series per state (report `programme_progress`): a night without a partition is a gap, never
  interpolated, and shaded; a night under another policy version is shaded in another colour;
- the transitions between compliance states, margin modes and margin states (`programme_transitions`);
- the cohort due on the first night, followed across the nights (`programme_cohort`).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl

from crossmargin.analytics.page import (
    COLORS,
    Chart,
    document,
    esc,
    kpis,
    mark_reference,
    plural,
    report_table,
    section,
    title,
)
from crossmargin.analytics.root import Root, run_root_reports
from crossmargin.analytics.rundir import write_dest

REPORTS = ["programme_nights", "programme_progress", "programme_transitions", "programme_cohort"]
MAX_TRANSITION_ROWS = 400
STATE_SERIES = [  # (column of programme_progress, label, colour)
    ("pro_accounts", "Pro accounts", COLORS["pro_old"]),
    ("pro_compliant", "Pro, compliant", COLORS["accent"]),
    ("due_for_migration", "due for migration", COLORS["pro_new"]),
    ("migrate_now", "to be switched now", COLORS["bad"]),
    ("eligible_for_pro", "Classic, eligible for Pro", COLORS["classic"]),
]
COHORT_STATES = {  # state of programme_cohort -> colour, in stacking order
    "pending": COLORS["pro_new"],
    "switch_now": COLORS["bad"],
    "not_yet_required": "#e6c79c",
    "compliant": COLORS["accent"],
    "classic": COLORS["classic"],
    "absent": "#8a8f99",
}
_MISSING = "#dfe3ea"
_OTHER_POLICY = "#f7d9b5"


def _ranges(days: list[dt.date]) -> str:
    from crossmargin.backfill import day_ranges

    return day_ranges(days)


def _values(df: pl.DataFrame, col: str) -> list[float]:
    """A column as floats, a null as NaN: the chart shows a gap there, it draws no line across."""
    return [math.nan if v is None else float(v) for v in df[col].to_list()]


def _runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive nights as (first, last) pairs: one shaded span each."""
    runs: list[list[dt.date]] = []
    for d in days:
        if runs and d - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return [(r[0], r[-1]) for r in runs]


def _shade(ax, nights: pl.DataFrame) -> None:
    """Shade the missing nights and the nights under another policy version (never interpolated)."""
    half = dt.timedelta(hours=12)
    for flag, colour, label in (
        (~pl.col("has_partition"), _MISSING, "no partition"),
        (pl.col("other_policy_version"), _OTHER_POLICY, "other policy version"),
    ):
        for k, (a, b) in enumerate(_runs(nights.filter(flag)["as_of"].to_list())):
            span = ax.axvspan(a - half, b + half, color=colour, zorder=0, label=label if k == 0 else None)
            mark_reference(span)


def _date_axis(ax) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(labelsize=7.5)


def _states_panel(progress: pl.DataFrame, nights: pl.DataFrame):
    def draw(ax, panels: int) -> None:
        days = progress["as_of"].to_list()
        for col, label, colour in STATE_SERIES:
            ax.plot(days, _values(progress, col), "o-", markersize=3, color=colour, label=label)
        _shade(ax, nights)
        _date_axis(ax)
        ax.set_ylabel("accounts", fontsize=8)
        ax.legend(fontsize=7, loc="best")
        title(ax, "Accounts per state, night by night", panels)

    return draw


def _repayment_panel(progress: pl.DataFrame, nights: pl.DataFrame):
    def draw(ax, panels: int) -> None:
        days = progress["as_of"].to_list()
        ax.plot(
            days, _values(progress, "partial_repayment_usdt"), "o-", markersize=3, color=COLORS["pro_new"]
        )
        newly = ax.twinx()
        newly.bar(days, _values(progress, "newly_compliant"), width=0.6, color=COLORS["accent"], alpha=0.5)
        newly.set_ylabel("newly compliant (bars)", fontsize=8)
        newly.tick_params(labelsize=7.5)
        _shade(ax, nights)
        _date_axis(ax)
        ax.set_ylabel("partial repayment required (USDT, line)", fontsize=8)
        title(
            ax,
            "Partial repayment required, and Pro accounts newly compliant since the previous night",
            panels,
        )

    return draw


def _cohort_panel(cohort: pl.DataFrame, nights: pl.DataFrame):
    def draw(ax, panels: int) -> None:
        days = nights.filter("has_partition")["as_of"].to_list()
        bottom = [0.0] * len(days)
        for state, colour in COHORT_STATES.items():
            got = dict(cohort.filter(pl.col("state") == state).select("as_of", "accounts").iter_rows())
            heights = [float(got.get(d, 0)) for d in days]
            if any(heights):
                ax.bar(days, heights, bottom=bottom, width=0.7, color=colour, label=state)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        _shade(ax, nights)
        _date_axis(ax)
        ax.set_ylabel("accounts of the cohort", fontsize=8)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        first = cohort["cohort_as_of"][0]
        title(ax, f"Accounts due for migration on {first}, by state on each night", panels)

    return draw


def _callouts(nights: pl.DataFrame, root: Root) -> str:
    missing = nights.filter(~pl.col("has_partition"))
    other = nights.filter(pl.col("other_policy_version"))
    latest = nights["latest_policy_version"][0]
    parts = []
    if missing.height:
        items = "".join(
            f"<li>{esc(night)}: left out, {esc(reason)}</li>"
            for night, reason in missing.filter(pl.col("left_out_reason").is_not_null())
            .select("as_of", "left_out_reason")
            .iter_rows()
        )
        parts.append(
            f'<div class="callout"><b>Missing nights: {plural(missing.height, "night")} without a verified '
            f"partition</b> ({esc(_ranges(missing['as_of'].to_list()))}). Their points are left out of every "
            f"chart and table, never interpolated.<ul>{items}</ul></div>"
        )
    else:
        parts.append(
            '<div class="callout ok">No missing night: every night of the range has a verified partition.</div>'
        )
    if other.height:
        items = "".join(
            f"<li>{esc(night)}: policy {esc(version)}</li>"
            for night, version in other.select("as_of", "policy_version").iter_rows()
        )
        parts.append(
            f'<div class="callout"><b>{plural(other.height, "partition")} under another policy version</b> '
            f"than the latest ({esc(latest)}): their figures follow other rules.<ul>{items}</ul></div>"
        )
    else:
        parts.append(f'<div class="callout ok">Every partition is under policy version {esc(latest)}.</div>')
    return "".join(parts)


def _latest_kpis(progress: pl.DataFrame) -> str:
    last = progress.filter(pl.col("accounts").is_not_null()).row(-1, named=True)
    newly = last["newly_compliant"]
    return kpis(
        [
            (f"Pro accounts on {last['as_of']}", f"{last['pro_accounts']:,}"),
            ("compliant", f"{last['pro_compliant']:,}"),
            ("newly compliant since the previous night", "–" if newly is None else f"{newly:,}"),
            ("due for migration", f"{last['due_for_migration']:,}"),
            ("to be switched now", f"{last['migrate_now']:,}"),
            ("partial repayment required (USDT)", f"{last['partial_repayment_usdt']:,.0f}"),
        ]
    )


def render_programme_page(root: Root) -> str:
    """The programme page's HTML text for a root's verified partitions."""
    frames = run_root_reports(REPORTS, root)
    nights, progress = frames["programme_nights"], frames["programme_progress"]
    transitions, cohort = frames["programme_transitions"], frames["programme_cohort"]
    first, last = nights["as_of"][0], nights["as_of"][-1]
    covered = nights.filter("has_partition").height
    series = (
        Chart(4.2)
        .add(_states_panel(progress, nights), covered > 0)
        .add(_repayment_panel(progress, nights), covered > 0)
        .render("No night with a verified partition.")
    )
    cohort_chart = Chart(3.8).add(_cohort_panel(cohort, nights), cohort.height > 0)
    body = (
        _callouts(nights, root)
        + _latest_kpis(progress)
        + section(
            "The programme night by night",
            "programme_progress",
            series + report_table(progress, "programme_progress"),
        )
        + section(
            "Transitions between states",
            "programme_transitions",
            report_table(transitions, "programme_transitions", MAX_TRANSITION_ROWS),
        )
        + section(
            "The cohort due on the first night",
            "programme_cohort",
            cohort_chart.render("No account was due for migration on the first night: no cohort to follow.")
            + (report_table(cohort, "programme_cohort") if cohort.height else ""),
        )
        + section("Nights covered", "programme_nights", report_table(nights, "programme_nights"))
    )
    meta = (
        f"root <code>{esc(root.path.name or str(root.path))}</code> · {esc(first)} to {esc(last)} · "
        f"{plural(covered, 'night')} with a verified partition of {plural(nights.height, 'night')}"
    )
    return document(f"crossmargin migration programme — {first} to {last}", meta, body)


def write_programme_page(root: Root, html_path: Path, *, force: bool = False) -> Path:
    """Write the programme page of a root to `html_path` (replacing only a page crossmargin wrote)."""
    text = render_programme_page(root)
    return write_dest(
        html_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), kind="report", force=force
    )
