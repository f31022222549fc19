"""Self-contained HTML migration cohort report (`crossmargin report --out DIR --html FILE`).

One HTML file, opening offline: inline CSS, charts as inline SVG drawn with matplotlib (no
JavaScript, no CDN, no external font or image). Every number comes from a SQL report of `sql/`
(`run_report`), the single source of the numbers; this module only lays them out.

Sections: book overview, distribution of Classic and Pro margin levels (log-scale buckets, +inf for
accounts without liability, policy thresholds drawn as lines), migration cohorts (summary by
compliance state, chart and cohort table), partial repayment totals, Pro eligibility funnel, old vs
new Pro formula impact, borrow blocks, margin calls and liquidations, data issues.

Each section is one function `(ReportData) -> html` listed in `SECTIONS`, in page order: a new
section is a new function appended there. `ReportData` runs each SQL report once, on first use.

matplotlib is a base dependency: the report is a main use of the package and must work on a plain
install.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crossmargin.analytics.rundir import HTML_GENERATOR, require_run, write_dest
from crossmargin.analytics.sql import query, report_grain, run_report

MAX_COHORT_ROWS = 300  # rows of the cohort table shown in the HTML (the full table is the SQL report)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1180px; color: #1d2433; background: #fff; line-height: 1.4; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 34px; border-bottom: 2px solid #e3e7ef; padding-bottom: 4px; }
p.meta, p.grain { color: #5b6577; font-size: 13px; margin: 4px 0 10px 0; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0 12px 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e8ebf1; }
th { background: #f3f5f9; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:hover td { background: #fafbfd; }
div.chart { margin: 8px 0 4px 0; }
div.chart svg { width: 100%; height: auto; }
div.tbl { overflow-x: auto; }
div.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
div.kpi { border: 1px solid #e3e7ef; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
div.kpi .v { font-size: 20px; font-weight: 600; }
div.kpi .l { font-size: 12px; color: #5b6577; }
p.note { font-size: 12px; color: #5b6577; }
"""

_COLORS = {
    "classic": "#3b6fb6",
    "pro_old": "#b0b7c3",
    "pro_new": "#d9822b",
    "accent": "#2f9e6e",
    "bad": "#c0392b",
}


# ------------------------------------------------------------------ formatting helpers
def _fmt(value: object, col: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+inf" if value > 0 else "-inf"
        if "share" in col:
            return f"{value:.1%}"
        if abs(value) >= 100 or col.endswith("_usdt"):
            return f"{value:,.2f}"
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _table(df: pl.DataFrame, max_rows: int | None = None) -> str:
    if df.height == 0:
        return '<p class="note">(no rows)</p>'
    shown = df if max_rows is None else df.head(max_rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown.columns)
    numeric = [dtype.is_numeric() for dtype in shown.dtypes]
    rows = []
    for row in shown.iter_rows():
        cells = "".join(
            f'<td class="num">{html.escape(_fmt(v, c))}</td>'
            if is_num
            else f"<td>{html.escape(_fmt(v, c))}</td>"
            for v, c, is_num in zip(row, shown.columns, numeric, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    more = ""
    if max_rows is not None and df.height > max_rows:
        more = f'<p class="note">first {max_rows:,} of {df.height:,} rows shown (full table: the SQL report).</p>'
    return f'<div class="tbl"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{more}'


def _svg(fig) -> str:
    """A matplotlib figure as an inline <svg> element.

    No XML prolog or RDF metadata; text drawn as paths (no font needed); ids deterministic (same
    bytes on a rerun) and distinct between the charts of one page (a salt per chart title).
    """
    import matplotlib

    salt = "crossmargin-" + "-".join(ax.get_title() for ax in fig.axes)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.find("<svg") :], flags=re.DOTALL)
    # glyph and clip-path ids are per figure: prefix them so the page holds no duplicate id
    prefix = "c" + hashlib.sha1(salt.encode()).hexdigest()[:8] + "-"
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", text)
    return f'<div class="chart">{text}</div>'


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # object API only: no pyplot global state, no GUI backend

    fig = Figure(figsize=(width, height), dpi=100)
    return fig


def _no_data(ax, text: str = "no accounts") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#5b6577")


# ------------------------------------------------------------------ charts
def _level_distribution_chart(dist: pl.DataFrame, thresholds: pl.DataFrame) -> str:
    """Classic and Pro margin level histograms on log-scale buckets; +inf and <=0 as end bars."""
    fig = _figure(12, 4.6)
    axes = fig.subplots(1, 2, sharey=False)

    def xpos(bucket: int) -> float:
        # log10(level) * 10 units: bucket k covers [k, k+1); the end buckets are set apart by a gap
        return {-12: -14.0, 21: 23.0}.get(bucket, float(bucket))

    series = [
        (
            axes[0],
            "classic",
            [("classic_margin_level", "classic_margin_level", _COLORS["classic"])],
            "Classic accounts: classic_margin_level",
            ["classic_margin_call", "classic_liquidation"],
        ),
        (
            axes[1],
            "pro",
            [
                ("pro_margin_level_old", "old formula: net equity / MM", _COLORS["pro_old"]),
                ("pro_margin_level_new", "new formula: (net collateral - OOL) / MM", _COLORS["pro_new"]),
            ],
            "Pro accounts: Pro margin level, old vs new formula",
            ["pro_margin_call", "pro_liquidation", "new_min_pro_margin_level"],
        ),
    ]
    styles = {"liquidation": ("#c0392b", "-"), "margin_call": ("#e67e22", "--")}
    for ax, mode, levels, title, lines in series:
        sub = dist.filter(pl.col("margin_mode") == mode)
        total = 0
        width = 1.0 / len(levels)
        for i, (level_name, label, color) in enumerate(levels):
            s = sub.filter(pl.col("level_name") == level_name).sort("bucket")
            n = int(s["accounts"].sum())
            total += n
            ax.bar(
                [xpos(b) + i * width for b in s["bucket"]],
                s["accounts"].to_list(),
                width=width,
                align="edge",
                color=color,
                label=f"{label} (n={n:,})",
            )
        if total == 0:
            _no_data(ax)
        th = thresholds.filter(pl.col("name").is_in(lines) & (pl.col("value") > 0))
        seen: set[tuple[str, float]] = set()
        for name, lev, value in th.select("name", "classic_leverage", "value").iter_rows():
            if (name, value) in seen:
                continue
            seen.add((name, value))
            color, ls = next((v for k, v in styles.items() if name.endswith(k)), ("#2f9e6e", ":"))
            ax.axvline(
                10 * math.log10(value),
                color=color,
                linestyle=ls,
                linewidth=1,
                label=f"{name}{f' ({lev}x)' if lev else ''} = {value:g}",
            )
        ax.set_xticks([-13.5, -10.0, 0.0, 10.0, 20.5, 23.5])
        ax.set_xticklabels(["≤0", "0.1", "1", "10", "≥100", "+inf"], fontsize=8)
        ax.set_xlim(-15, 25)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("margin level (log scale; +inf = no liability)", fontsize=8)
        ax.set_ylabel("accounts", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _svg(fig)


def _cohort_chart(cohorts: pl.DataFrame) -> str:
    """Pro accounts due for migration per Classic level bucket, stacked by net-equity bucket."""
    fig = _figure(12, 3.4)
    ax = fig.subplots()
    due = cohorts.filter(pl.col("due_for_migration_accounts") > 0)
    if due.height == 0:
        _no_data(ax, "no Pro account is due for migration")
        ax.set_xticks([])
        return _svg(fig)
    # order of buckets = order of first appearance in the report (it is sorted by bucket order)
    level_order = cohorts["classic_margin_level_bucket"].unique(maintain_order=True).to_list()
    level_order = sorted(level_order, key=_bucket_sort_key)
    equity_order = sorted(cohorts["net_equity_bucket"].unique().to_list(), key=_equity_sort_key)
    grid = due.group_by("classic_margin_level_bucket", "net_equity_bucket").agg(
        pl.col("due_for_migration_accounts").sum()
    )
    bottoms = [0] * len(level_order)
    cmap = ["#1f4e79", "#2e75b6", "#9dc3e6", "#f4b183", "#c55a11", "#7f3f00"]
    for i, eq in enumerate(equity_order):
        vals = []
        for lvl in level_order:
            hit = grid.filter(
                (pl.col("classic_margin_level_bucket") == lvl) & (pl.col("net_equity_bucket") == eq)
            )
            vals.append(int(hit["due_for_migration_accounts"].sum()) if hit.height else 0)
        if sum(vals) == 0:
            continue
        ax.bar(
            range(len(level_order)), vals, bottom=bottoms, color=cmap[i % len(cmap)], label=f"net equity {eq}"
        )
        bottoms = [b + v for b, v in zip(bottoms, vals, strict=True)]
    ax.set_xticks(range(len(level_order)))
    ax.set_xticklabels(level_order, fontsize=8)
    ax.set_xlabel("classic_margin_level bucket (the level once in Classic)", fontsize=8)
    ax.set_ylabel("accounts due for migration", fontsize=8)
    ax.set_title("Pro accounts due for migration by Classic margin level and net equity", fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=7, ncols=2)
    return _svg(fig)


def _bucket_sort_key(label: str) -> float:
    if label == "no liability":
        return math.inf
    nums = re.findall(r"[\d.]+", label)
    if label.startswith("<="):
        return -1.0
    return float(nums[0]) if nums else 0.0


def _equity_sort_key(label: str) -> float:
    if label.startswith("<"):
        return -math.inf
    m = re.match(r"[>= ]*([\d.]+)([kM]?)", label)
    if not m:
        return 0.0
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6}[m.group(2)]


def _repayment_chart(rep: pl.DataFrame) -> str:
    fig = _figure(12, 1.2 + 0.45 * max(rep.height, 1))
    ax = fig.subplots()
    if rep.height == 0:
        _no_data(ax, "no Pro account is due for migration")
        ax.set_xticks([])
        return _svg(fig)
    labels = [f"{s}, {lev}x" for s, lev in rep.select("migration_state", "classic_leverage").iter_rows()]
    y = list(range(rep.height))
    ax.barh(
        y, rep["total_liability_usdt"].to_list(), color="#d5dbe5", label="total liability of due accounts"
    )
    ax.barh(
        y,
        rep["partial_repayment_usdt"].to_list(),
        color=_COLORS["pro_new"],
        height=0.5,
        label="partial repayment required before the switch",
    )
    ax.barh(y, rep["bad_debt_usdt"].to_list(), color=_COLORS["bad"], height=0.2, label="bad debt")
    for yi, (amount, n) in enumerate(
        rep.select("partial_repayment_usdt", "accounts_needing_repayment").iter_rows()
    ):
        ax.text(amount, yi, f"  {amount:,.0f} USDT ({n:,} accounts)", va="center", fontsize=7.5)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("USDT", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title("Partial repayment totals by migration state and Classic leverage", fontsize=10)
    ax.set_xlim(0, max(rep["total_liability_usdt"].max() or 0, 1) * 1.15)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=3)
    return _svg(fig)


def _funnel_chart(funnel: pl.DataFrame) -> str:
    fig = _figure(12, 3.6)
    ax = fig.subplots()
    steps = funnel.filter(pl.col("step").is_not_null()).sort("step")
    if steps.height == 0 or (steps["passing_accounts"].sum() + steps["failing_accounts"].sum()) == 0:
        _no_data(ax, "no Classic accounts")
        ax.set_xticks([])
        return _svg(fig)
    labels = steps["condition"].to_list()
    y = list(range(steps.height))
    remaining = steps["remaining_accounts"].to_list()
    failing = steps["failing_accounts"].to_list()
    ax.barh(y, remaining, color=_COLORS["accent"], label="remaining: pass this and every earlier condition")
    ax.barh(
        y,
        failing,
        left=[0] * len(y),
        color="none",
        edgecolor=_COLORS["bad"],
        hatch="///",
        linewidth=0.8,
        label="fail this condition (whatever else they fail)",
    )
    for yi, (r, f) in enumerate(zip(remaining, failing, strict=True)):
        ax.text(max(r, f), yi, f"  {r:,} remain / {f:,} fail", va="center", fontsize=7.5)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Classic accounts", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title("Pro eligibility funnel (Classic accounts, activation conditions in order)", fontsize=10)
    ax.set_xlim(0, max(*remaining, *failing, 1) * 1.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2)
    return _svg(fig)


# ------------------------------------------------------------------ the page
def _section(title: str, report: str | None, body: str) -> str:
    grain = (
        f'<p class="grain">{html.escape(report_grain(report))} (report <code>{report}</code>)</p>'
        if report
        else ""
    )
    return f"<section><h2>{html.escape(title)}</h2>{grain}{body}</section>"


def _kpis(items: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div class="kpi"><div class="v">{html.escape(v)}</div><div class="l">{html.escape(label)}</div></div>'
        for label, v in items
    )
    return f'<div class="kpis">{cells}</div>'


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


def _total(df: pl.DataFrame, col: str) -> float:
    return float(df[col].sum()) if df.height else 0.0


def _kpis_block(data: ReportData) -> str:
    overview = data.report("risk_overview")
    cohorts = data.report("migration_cohorts")
    rep = data.report("partial_repayments")
    issues = data.report("data_issues_summary")
    return _kpis(
        [
            ("accounts in account_risk", f"{int(_total(overview, 'accounts')):,}"),
            ("Pro accounts due for migration", f"{int(_total(cohorts, 'due_for_migration_accounts')):,}"),
            ("to be switched to Classic now", f"{int(_total(cohorts, 'migrate_now_accounts')):,}"),
            ("partial repayment required (USDT)", f"{_total(rep, 'partial_repayment_usdt'):,.0f}"),
            ("bad debt of due accounts (USDT)", f"{_total(rep, 'bad_debt_usdt'):,.0f}"),
            ("accounts with data issues", f"{int(issues['distinct_accounts_all_issues'].max() or 0):,}"),
        ]
    )


def overview_section(data: ReportData) -> str:
    return _section("Book overview", "risk_overview", _table(data.report("risk_overview")))


def level_distribution_section(data: ReportData) -> str:
    chart = _level_distribution_chart(
        data.report("margin_level_distribution"), data.view("policy_thresholds")
    )
    note = (
        '<p class="note">Ten buckets per decade of the level; lines are the thresholds of the policy in '
        "force at as_of (Classic: per leverage; Pro: margin call, liquidation, activation level).</p>"
    )
    return _section(
        "Distribution of Classic and Pro margin levels", "margin_level_distribution", chart + note
    )


def cohorts_section(data: ReportData) -> str:
    cohorts = data.report("migration_cohorts")
    dims = ("compliance_state", "classic_margin_level_bucket", "net_equity_bucket", "country")
    by_state = cohorts.group_by("compliance_state", maintain_order=True).agg(
        pl.col(c).sum() for c in cohorts.columns if c not in dims
    )
    non_compliant = cohorts.filter(pl.col("compliance_state") != "compliant")
    return _section(
        "Migration cohorts",
        "migration_cohorts",
        "<h3>By compliance state</h3>"
        + _table(by_state)
        + _cohort_chart(cohorts)
        + "<h3>Cohort table (non-compliant Pro accounts)</h3>"
        + _table(non_compliant, MAX_COHORT_ROWS),
    )


def repayments_section(data: ReportData) -> str:
    rep = data.report("partial_repayments")
    return _section("Partial repayment totals", "partial_repayments", _repayment_chart(rep) + _table(rep))


def funnel_section(data: ReportData) -> str:
    funnel = data.report("pro_eligibility_funnel")
    return _section(
        "Pro eligibility funnel", "pro_eligibility_funnel", _funnel_chart(funnel) + _table(funnel)
    )


def formula_impact_section(data: ReportData) -> str:
    return _section("Old vs new Pro formula", "pro_formula_impact", _table(data.report("pro_formula_impact")))


def borrow_blocks_section(data: ReportData) -> str:
    return _section("Borrow blocks", "borrow_blocks", _table(data.report("borrow_blocks")))


def margin_calls_section(data: ReportData) -> str:
    return _section(
        "Margin calls and liquidations",
        "margin_calls_liquidations",
        _table(data.report("margin_calls_liquidations")),
    )


def data_issues_section(data: ReportData) -> str:
    return _section("Data issues", "data_issues_summary", _table(data.report("data_issues_summary")))


def scenarios_section(data: ReportData) -> str:
    """Stress scenarios: accounts newly at margin call / liquidation and bad debt per scenario
    (report scenario_summary; empty without `run --scenarios`), and the distribution of
    liquidation_drop (report liquidation_distance)."""
    summary = data.report("scenario_summary")
    bands = data.report("liquidation_distance")
    fig = _figure(12, 4.2)
    left, right = fig.subplots(1, 2)
    per = summary.group_by("scenario", maintain_order=True).agg(
        pl.col("newly_at_margin_call", "newly_at_liquidation", "bad_debt_usdt").sum()
    )
    if per.height == 0:
        _no_data(left, "no scenarios in this run (crossmargin run --scenarios default)")
        left.set_xticks([])
    else:
        x = list(range(per.height))
        left.bar(
            [i - 0.2 for i in x],
            per["newly_at_margin_call"].to_list(),
            0.4,
            color=_COLORS["accent"],
            label="newly at margin call",
        )
        left.bar(
            [i + 0.2 for i in x],
            per["newly_at_liquidation"].to_list(),
            0.4,
            color=_COLORS["bad"],
            label="newly at liquidation",
        )
        left.set_xticks(x)
        left.set_xticklabels(per["scenario"].to_list(), rotation=35, ha="right", fontsize=7.5)
        left.set_ylabel("accounts", fontsize=8)
        debt = left.twinx()
        debt.plot(
            x, per["bad_debt_usdt"].to_list(), "o-", color="#333333", markersize=3, label="bad debt (USDT)"
        )
        debt.set_ylabel("bad debt under the scenario (USDT)", fontsize=8)
        debt.tick_params(labelsize=7.5)
        left.legend(fontsize=7, loc="upper left")
        debt.legend(fontsize=7, loc="upper right")
    left.tick_params(axis="y", labelsize=7.5)
    left.set_title("Accounts newly at margin call / liquidation, and bad debt, by scenario", fontsize=10)
    order = bands.select("band_order", "liquidation_drop_band").unique().sort("band_order")
    labels = order["liquidation_drop_band"].to_list()
    bottom = [0] * len(labels)
    for mode in ("classic", "pro"):
        got = dict(
            bands.filter(pl.col("margin_mode") == mode)
            .select("liquidation_drop_band", "accounts")
            .iter_rows()
        )
        heights = [got.get(label, 0) for label in labels]
        color = _COLORS["classic"] if mode == "classic" else _COLORS["pro_new"]
        right.bar(range(len(labels)), heights, bottom=bottom, color=color, label=mode)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    right.set_xticks(range(len(labels)))
    right.set_xticklabels(labels, rotation=35, ha="right", fontsize=7.5)
    right.tick_params(axis="y", labelsize=7.5)
    right.set_ylabel("accounts", fontsize=8)
    right.set_title(
        "Uniform fall of non-stable prices that reaches liquidation (liquidation_drop)", fontsize=10
    )
    if labels:
        right.legend(fontsize=7)
    note = (
        '<p class="note">Left: report <code>scenario_summary</code> summed over margin modes; right: report '
        "<code>liquidation_distance</code>. A scenario multiplies prices (stable assets keep theirs unless "
        "named); liquidation_drop is the smallest uniform fall of every non-stable price that puts the "
        "account at its liquidation threshold.</p>"
    )
    return _section(
        "Stress scenarios and distance to liquidation",
        "scenario_summary",
        _svg(fig) + note + _table(summary) + "<h3>Distance to liquidation</h3>" + _table(bands),
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
    kpis = _kpis_block(data)
    sections = [section(data) for section in SECTIONS]
    title = f"crossmargin migration cohort report — {as_of_text}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"{HTML_GENERATOR}<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="meta">run output <code>{html.escape(out_dir.name or str(out_dir))}</code> · '
        f"as_of {html.escape(as_of_text)} · policy {html.escape(str(version))} · Pro formula in force: {formula}</p>"
        f"{warning}{kpis}{''.join(sections)}"
        "</body></html>\n"
    )


def write_report(out_dir: Path, html_path: Path, *, force: bool = False) -> Path:
    """Write the self-contained HTML report of one run's output directory to `html_path`.

    An existing file is replaced only if it is a report written by crossmargin, or with `force`.
    """
    text = render_report(out_dir)
    return write_dest(
        html_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), kind="report", force=force
    )


def describe(path: Path) -> str:
    """One line about a written report: its size and number of charts."""
    text = Path(path).read_text(encoding="utf-8")
    return f"wrote {path} ({len(text.encode()) / 1024:,.0f} KiB, {text.count('<svg')} charts)"
