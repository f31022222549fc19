"""Self-contained HTML migration cohort report of one run (`crossmargin report --out DIR --html FILE`).

One HTML file, opening offline (`crossmargin.analytics.page`: inline CSS, charts as inline SVG drawn
with matplotlib, no JavaScript). Every number comes from a SQL report of `sql/` (`run_report`), the
single source of the numbers; this module only lays them out: it sums, counts or groups nothing.

Sections: book overview, distribution of Classic and Pro margin levels (log-scale buckets, +inf for
accounts without liability, policy thresholds drawn as lines), migration cohorts (by compliance state,
chart and cohort table), partial repayment totals, Pro eligibility funnel, old vs new Pro formula
impact, borrow blocks, margin calls and liquidations, what it would take to lift each block
(`remediation_section`), data issues, stress scenarios.

Each section is one function `(ReportData) -> html` listed in `SECTIONS`, in page order: a new
section is a new function appended there. `ReportData` runs each SQL report once, on first use. A
chart panel without data is left out, and a chart without any is a note (`page.Chart`).

matplotlib is a base dependency: the report is a main use of the package and must work on a plain
install.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
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
from crossmargin.analytics.remediation_section import remediation_section
from crossmargin.analytics.rundir import require_run, write_dest
from crossmargin.analytics.sql import query, run_report

MAX_COHORT_ROWS = 300  # rows of the cohort table shown in the HTML (the full table is the SQL report)
_LINE_STYLES = {"liquidation": ("#c0392b", "-"), "margin_call": ("#e67e22", "--")}


@dataclass
class ReportData:
    """One run's output directory and its SQL reports, each run once on first use."""

    out_dir: Path
    _frames: dict[str, pl.DataFrame] = field(default_factory=dict)

    def report(self, name: str) -> pl.DataFrame:
        if name not in self._frames:
            self._frames[name] = run_report(name, self.out_dir)
        return self._frames[name]

    def view(self, name: str) -> pl.DataFrame:
        key = f"view:{name}"
        if key not in self._frames:
            self._frames[key] = query(self.out_dir, f"select * from {name}")
        return self._frames[key]

    def table(self, name: str, max_rows: int | None = None) -> str:
        return report_table(self.report(name), name, max_rows)


# ------------------------------------------------------------------ charts
def _bucket_x(bucket: int) -> float:
    # log10(level) * 10 units: bucket k covers [k, k+1); the end buckets are set apart by a gap
    return {-12: -14.0, 21: 23.0}.get(bucket, float(bucket))


def _threshold_lines(ax, thresholds: pl.DataFrame, names: list[str]) -> None:
    th = thresholds.filter(pl.col("name").is_in(names) & (pl.col("value") > 0))
    seen: set[tuple[str, float]] = set()
    for name, lev, value in th.select("name", "classic_leverage", "value").iter_rows():
        if (name, value) in seen:
            continue
        seen.add((name, value))
        color, ls = next((v for k, v in _LINE_STYLES.items() if name.endswith(k)), ("#2f9e6e", ":"))
        line = ax.axvline(
            10 * math.log10(value),
            color=color,
            linestyle=ls,
            linewidth=1,
            label=f"{name}{f' ({lev}x)' if lev else ''} = {value:g}",
        )
        mark_reference(line)


def _level_panel(dist, thresholds, mode, n, levels, heading, lines):
    def draw(ax, panels: int) -> None:
        sub = dist.filter(pl.col("margin_mode") == mode)
        width = 1.0 / len(levels)
        for i, (level_name, label, color) in enumerate(levels):
            s = sub.filter(pl.col("level_name") == level_name).sort("bucket")
            xs = [_bucket_x(b) + i * width for b in s["bucket"]]
            ax.bar(xs, s["accounts"].to_list(), width=width, align="edge", color=color, label=label)
        _threshold_lines(ax, thresholds, lines)
        ax.set_xticks([-13.5, -10.0, 0.0, 10.0, 20.5, 23.5])
        ax.set_xticklabels(["≤0", "0.1", "1", "10", "≥100", "+inf"], fontsize=8)
        ax.set_xlim(-15, 25)
        title(ax, f"{heading} ({plural(n, 'account')})", panels)
        ax.set_xlabel("margin level (log scale; +inf = no liability)", fontsize=8)
        ax.set_ylabel("accounts", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(fontsize=7, loc="upper left")

    return draw


def _level_distribution_chart(data: ReportData) -> str:
    """Classic and Pro margin level histograms on log-scale buckets; +inf and <=0 as end bars."""
    dist, thresholds = data.report("margin_level_distribution"), data.view("policy_thresholds")
    per_mode = dict(data.report("risk_overview").select("margin_mode", "accounts").iter_rows())
    classic, pro = per_mode.get("classic", 0), per_mode.get("pro", 0)
    chart = Chart(4.6)
    chart.add(
        _level_panel(
            dist,
            thresholds,
            "classic",
            classic,
            [("classic_margin_level", "classic_margin_level", COLORS["classic"])],
            "Classic accounts: classic_margin_level",
            ["classic_margin_call", "classic_liquidation"],
        ),
        classic > 0,
    )
    chart.add(
        _level_panel(
            dist,
            thresholds,
            "pro",
            pro,
            [
                ("pro_margin_level_old", "old formula: net equity / MM", COLORS["pro_old"]),
                ("pro_margin_level_new", "new formula: (net collateral - OOL) / MM", COLORS["pro_new"]),
            ],
            "Pro accounts: Pro margin level, old vs new formula",
            ["pro_margin_call", "pro_liquidation", "new_min_pro_margin_level"],
        ),
        pro > 0,
    )
    return chart.render("No scored account: no margin level to draw.")


def _cohort_chart(grid: pl.DataFrame) -> str:
    """Pro accounts due for migration per Classic level bucket, stacked by net-equity bucket."""
    levels = (
        grid.select("level_bucket_order", "classic_margin_level_bucket").unique().sort("level_bucket_order")
    )
    equities = grid.select("equity_bucket_order", "net_equity_bucket").unique().sort("equity_bucket_order")
    palette = ["#1f4e79", "#2e75b6", "#9dc3e6", "#f4b183", "#c55a11", "#7f3f00"]

    def draw(ax, panels: int) -> None:
        labels = levels["classic_margin_level_bucket"].to_list()
        bottoms = [0] * len(labels)
        for i, eq in enumerate(equities["net_equity_bucket"]):
            vals = grid.filter(pl.col("net_equity_bucket") == eq).sort("level_bucket_order")
            heights = vals["due_for_migration_accounts"].to_list()
            if not any(heights):
                continue
            ax.bar(
                range(len(labels)), heights, bottom=bottoms, color=palette[i % 6], label=f"net equity {eq}"
            )
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_xlabel("classic_margin_level bucket (the level once in Classic)", fontsize=8)
        ax.set_ylabel("accounts due for migration", fontsize=8)
        title(ax, "Pro accounts due for migration by Classic margin level and net equity", panels)
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(fontsize=7, ncols=2)

    has_data = grid.filter(pl.col("due_for_migration_accounts") > 0).height > 0
    return Chart(3.4).add(draw, has_data).render("No Pro account is due for migration: no cohort chart.")


def _repayment_chart(rep: pl.DataFrame) -> str:
    def draw(ax, panels: int) -> None:
        labels = [f"{s}, {lev}x" for s, lev in rep.select("migration_state", "classic_leverage").iter_rows()]
        y = list(range(rep.height))
        ax.barh(
            y, rep["total_liability_usdt"].to_list(), color="#d5dbe5", label="total liability of due accounts"
        )
        ax.barh(
            y,
            rep["partial_repayment_usdt"].to_list(),
            color=COLORS["pro_new"],
            height=0.5,
            label="partial repayment required before the switch",
        )
        ax.barh(y, rep["bad_debt_usdt"].to_list(), color=COLORS["bad"], height=0.2, label="bad debt")
        for yi, (amount, n) in enumerate(
            rep.select("partial_repayment_usdt", "accounts_needing_repayment").iter_rows()
        ):
            ax.text(amount, yi, f"  {amount:,.0f} USDT ({plural(n, 'account')})", va="center", fontsize=7.5)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("USDT", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        title(ax, "Partial repayment totals by migration state and Classic leverage", panels)
        ax.set_xlim(0, max(rep["total_liability_usdt"].max() or 0, 1) * 1.15)
        ax.legend(fontsize=7, loc="lower right")

    chart = Chart(1.6 + 0.45 * max(rep.height, 1)).add(draw, rep.height > 0)
    return chart.render("No Pro account is due for migration: nothing to repay.")


def _funnel_chart(funnel: pl.DataFrame) -> str:
    steps = funnel.filter(pl.col("step").is_not_null()).sort("step")
    has_data = (
        steps.height > 0
        and (steps["passing_accounts"].max() or 0) + (steps["failing_accounts"].max() or 0) > 0
    )

    def draw(ax, panels: int) -> None:
        y = list(range(steps.height))
        remaining = steps["remaining_accounts"].to_list()
        failing = steps["failing_accounts"].to_list()
        ax.barh(
            y, remaining, color=COLORS["accent"], label="remaining: pass this and every earlier condition"
        )
        ax.barh(
            y,
            failing,
            color="none",
            edgecolor=COLORS["bad"],
            hatch="///",
            linewidth=0.8,
            label="fail this condition (whatever else they fail)",
        )
        for yi, (r, f) in enumerate(zip(remaining, failing, strict=True)):
            ax.text(max(r, f), yi, f"  {r:,} remain / {f:,} fail", va="center", fontsize=7.5)
        ax.set_yticks(y)
        ax.set_yticklabels(steps["condition"].to_list(), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("Classic accounts", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        title(ax, "Pro eligibility funnel (Classic accounts, activation conditions in order)", panels)
        ax.set_xlim(0, max(*remaining, *failing, 1) * 1.3)
        ax.legend(fontsize=7, loc="lower right")

    return Chart(3.8).add(draw, has_data).render("No Classic account: no eligibility funnel.")


def _scenario_panel(per: pl.DataFrame):
    def draw(ax, panels: int) -> None:
        x = list(range(per.height))
        for shift, col, color, label in (
            (-0.2, "newly_at_margin_call", COLORS["accent"], "newly at margin call"),
            (0.2, "newly_at_liquidation", COLORS["bad"], "newly at liquidation"),
        ):
            ax.bar([i + shift for i in x], per[col].to_list(), 0.4, color=color, label=label)
        ax.set_xticks(x)
        ax.set_xticklabels(per["scenario"].to_list(), rotation=35, ha="right", fontsize=7.5)
        ax.set_ylabel("accounts", fontsize=8)
        ax.tick_params(axis="y", labelsize=7.5)
        debt = ax.twinx()
        debt.plot(
            x, per["bad_debt_usdt"].to_list(), "o-", color="#333333", markersize=3, label="bad debt (USDT)"
        )
        debt.set_ylabel("bad debt under the scenario (USDT)", fontsize=8)
        debt.tick_params(labelsize=7.5)
        ax.legend(fontsize=7, loc="upper left")
        debt.legend(fontsize=7, loc="upper right")
        title(ax, "Accounts newly at margin call / liquidation, and bad debt, by scenario", panels)

    return draw


def _distance_panel(bands: pl.DataFrame):
    order = bands.select("band_order", "liquidation_drop_band").unique().sort("band_order")
    labels = order["liquidation_drop_band"].to_list()

    def draw(ax, panels: int) -> None:
        bottom = [0] * len(labels)
        for mode in ("classic", "pro"):
            got = dict(
                bands.filter(pl.col("margin_mode") == mode)
                .select("liquidation_drop_band", "accounts")
                .iter_rows()
            )
            heights = [got.get(label, 0) for label in labels]
            color = COLORS["classic"] if mode == "classic" else COLORS["pro_new"]
            if any(heights):
                ax.bar(range(len(labels)), heights, bottom=bottom, color=color, label=mode)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7.5)
        ax.tick_params(axis="y", labelsize=7.5)
        ax.set_ylabel("accounts", fontsize=8)
        title(ax, "Uniform fall of non-stable prices that reaches liquidation (liquidation_drop)", panels)
        ax.legend(fontsize=7)

    return draw, bool(labels)


# ------------------------------------------------------------------ sections
def _kpis_block(data: ReportData) -> str:
    h = data.report("cohort_headline").row(0, named=True)
    return kpis(
        [
            ("accounts in account_risk", f"{h['accounts']:,}"),
            ("Pro accounts due for migration", f"{h['due_for_migration']:,}"),
            ("to be switched to Classic now", f"{h['migrate_now']:,}"),
            ("partial repayment required (USDT)", f"{h['partial_repayment_usdt']:,.0f}"),
            ("bad debt of due accounts (USDT)", f"{h['due_bad_debt_usdt']:,.0f}"),
            ("accounts with data issues", f"{h['accounts_with_data_issues']:,}"),
        ]
    )


def overview_section(data: ReportData) -> str:
    return section("Book overview", "risk_overview", data.table("risk_overview"))


def level_distribution_section(data: ReportData) -> str:
    note = (
        '<p class="note">Ten buckets per decade of the level; lines are the thresholds of the policy in '
        "force at as_of (Classic: per leverage; Pro: margin call, liquidation, activation level).</p>"
    )
    return section(
        "Distribution of Classic and Pro margin levels",
        "margin_level_distribution",
        _level_distribution_chart(data) + note,
    )


def cohorts_section(data: ReportData) -> str:
    cohorts = data.report("migration_cohorts")
    non_compliant = cohorts.filter(pl.col("compliance_state") != "compliant").drop(
        "level_bucket_order", "equity_bucket_order"
    )
    return section(
        "Migration cohorts",
        "migration_cohorts",
        "<h3>By compliance state (report <code>migration_states</code>)</h3>"
        + data.table("migration_states")
        + _cohort_chart(data.report("due_for_migration_grid"))
        + "<h3>Cohort table (non-compliant Pro accounts)</h3>"
        + report_table(non_compliant, "migration_cohorts", MAX_COHORT_ROWS),
    )


def repayments_section(data: ReportData) -> str:
    rep = data.report("partial_repayments")
    return section(
        "Partial repayment totals",
        "partial_repayments",
        _repayment_chart(rep) + data.table("partial_repayments"),
    )


def funnel_section(data: ReportData) -> str:
    funnel = data.report("pro_eligibility_funnel")
    return section(
        "Pro eligibility funnel",
        "pro_eligibility_funnel",
        _funnel_chart(funnel) + data.table("pro_eligibility_funnel"),
    )


def formula_impact_section(data: ReportData) -> str:
    return section("Old vs new Pro formula", "pro_formula_impact", data.table("pro_formula_impact"))


def borrow_blocks_section(data: ReportData) -> str:
    return section("Borrow blocks", "borrow_blocks", data.table("borrow_blocks"))


def margin_calls_section(data: ReportData) -> str:
    return section(
        "Margin calls and liquidations", "margin_calls_liquidations", data.table("margin_calls_liquidations")
    )


def data_issues_section(data: ReportData) -> str:
    return section("Data issues", "data_issues_summary", data.table("data_issues_summary"))


def scenarios_section(data: ReportData) -> str:
    """Stress scenarios (report scenario_totals, from scenario_summary; empty without `run --scenarios`)
    and the distribution of liquidation_drop (report liquidation_distance)."""
    per = data.report("scenario_totals")
    distance, has_bands = _distance_panel(data.report("liquidation_distance"))
    chart = Chart(4.4).add(_scenario_panel(per), per.height > 0).add(distance, has_bands)
    body = chart.render("No scored account: no stress chart.")
    if per.height == 0:
        body += (
            '<p class="note">No stress scenarios in this run '
            "(<code>crossmargin run --scenarios default</code> adds them).</p>"
        )
    else:
        body += data.table("scenario_summary")
    note = (
        '<p class="note">Scenarios: report <code>scenario_totals</code> (scenario_summary summed over margin '
        "modes); distance: report <code>liquidation_distance</code>. A scenario multiplies prices (stable "
        "assets keep theirs unless named); liquidation_drop is the smallest uniform fall of every non-stable "
        "price that puts the account at its liquidation threshold.</p>"
    )
    return section(
        "Stress scenarios and distance to liquidation",
        "scenario_summary",
        body + note + "<h3>Distance to liquidation</h3>" + data.table("liquidation_distance"),
    )


# The page's sections, in order: each one function of ReportData returning its <section>.
SECTIONS: list[Callable[[ReportData], str]] = [
    overview_section,
    level_distribution_section,
    cohorts_section,
    repayments_section,
    funnel_section,
    formula_impact_section,
    borrow_blocks_section,
    margin_calls_section,
    remediation_section,
    data_issues_section,
    scenarios_section,
]


def render_report(out_dir: Path) -> str:
    """The report's HTML text for one run's output directory."""
    out_dir = Path(out_dir)
    require_run(out_dir)
    data = ReportData(out_dir)
    info = data.view("run_info")
    as_of = info["as_of"][0]
    as_of_text = as_of.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if as_of is not None else "?"
    version = info["policy_version"][0]
    formula = "new" if info["new_formula"][0] else "old"
    warning = ""
    if info["policy_matches_run"][0] is False:
        warning = (
            '<p class="note"><b>Warning:</b> the policy the run used (manifest policy_sha256) could not be '
            "found; threshold lines, the funnel's conditions and the formula-impact thresholds use the "
            "shipped policy.</p>"
        )
    sections = "".join(section(data) for section in SECTIONS)
    meta = (
        f"run output <code>{esc(out_dir.name or str(out_dir))}</code> · as_of {esc(as_of_text)} · "
        f"policy {esc(version)} · Pro formula in force: {formula}"
    )
    heading = f"crossmargin migration cohort report — {as_of_text}"
    return document(heading, meta, f"{warning}{_kpis_block(data)}{sections}")


def write_report(out_dir: Path, html_path: Path, *, force: bool = False) -> Path:
    """Write the self-contained HTML report of one run's output directory to `html_path`.

    An existing file is replaced only if it is a report written by crossmargin, or with `force`.
    """
    text = render_report(out_dir)
    return write_dest(
        html_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), kind="report", force=force
    )
