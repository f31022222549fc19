"""The parts every crossmargin HTML page is made of: style, tables, charts, counted words, the shell.

A page is one self-contained file (inline CSS, charts as inline SVG drawn with matplotlib, no
JavaScript, nothing fetched). It lays out what the `sql/` reports computed; these helpers only format.

- `table()`: a report's frame as HTML. A table wider than the page (`PAGE_WIDTH_PX`, estimated from
  its widest cells) is split into several tables one under the other, each repeating the report's
  label columns, as the terminal tables are (`text.split_columns`). Headers break after `_`.
- `svg()`: a matplotlib figure as inline SVG. Every axes title is tagged `title-N` and every drawn
  series `data-N-M` (ids the browser test reads: titles must not overlap, no axes may be empty).
- `Chart`: a figure of side-by-side panels; a panel with no data is left out, and a chart with no
  panel left is a "no data" note instead of an empty axis.
- `plural(n, "account")`: "1 account", "2 accounts", for every count a page writes in words.
"""

from __future__ import annotations

import hashlib
import html
import io
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crossmargin.analytics.rundir import HTML_GENERATOR
from crossmargin.analytics.sql import report_info
from crossmargin.analytics.text import label_columns, split_columns

PAGE_WIDTH_PX = 1180  # body max-width below
_CHAR_PX = 7.4  # a generous average glyph width at the tables' 12.5px font
_CELL_PAD_PX = 18  # padding either side and the cell border
_TEXT_CELL_CHARS = 36  # a longer text cell wraps (CSS max-width of td.text)

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1180px; color: #1d2433; background: #fff; line-height: 1.4; padding: 0 8px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 34px; border-bottom: 2px solid #e3e7ef; padding-bottom: 4px; }
p.meta, p.grain { color: #5b6577; font-size: 13px; margin: 4px 0 10px 0; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0 12px 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e8ebf1; }
th { background: #f3f5f9; text-align: left; font-weight: 600; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { max-width: 36ch; overflow-wrap: anywhere; }
tr:hover td { background: #fafbfd; }
div.chart { margin: 8px 0 4px 0; }
div.chart svg { width: 100%; height: auto; }
div.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
div.kpi { border: 1px solid #e3e7ef; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
div.kpi .v { font-size: 20px; font-weight: 600; }
div.kpi .l { font-size: 12px; color: #5b6577; }
p.note { font-size: 12px; color: #5b6577; }
div.callout { border-left: 4px solid #d9822b; background: #fdf6ee; padding: 6px 12px; margin: 10px 0;
              font-size: 13px; }
div.callout.ok { border-left-color: #2f9e6e; background: #f0f8f4; }
"""

COLORS = {
    "classic": "#3b6fb6",
    "pro_old": "#b0b7c3",
    "pro_new": "#d9822b",
    "accent": "#2f9e6e",
    "bad": "#c0392b",
}


# ------------------------------------------------------------------ words and numbers
def plural(n: int, word: str, words: str | None = None) -> str:
    """`n` and the noun in the right number: 1 account, 2 accounts, 0 accounts."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def fmt(value: object, col: str = "") -> str:
    """One table cell's text."""
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


def esc(text: object) -> str:
    return html.escape(str(text))


# ------------------------------------------------------------------ tables
def _header(name: str) -> str:
    """A column header that may break after each underscore."""
    return "_<wbr>".join(esc(part) for part in name.split("_"))


def _column_px(name: str, texts: list[str], numeric: bool) -> float:
    head = max(len(part) + 1 for part in name.split("_"))
    longest = max((len(t) for t in texts), default=0)
    cell = longest if numeric else min(longest, _TEXT_CELL_CHARS)
    return max(head, cell) * _CHAR_PX + _CELL_PAD_PX


def _one_table(texts: list[list[str]], names: list[str], numeric: list[bool], cols: list[int]) -> str:
    head = "".join(f"<th>{_header(names[i])}</th>" for i in cols)
    rows = []
    for row in texts:
        cells = "".join(
            f'<td class="num">{esc(row[i])}</td>' if numeric[i] else f'<td class="text">{esc(row[i])}</td>'
            for i in cols
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def table(df: pl.DataFrame, labels: tuple[str, ...] = (), max_rows: int | None = None) -> str:
    """A frame as one or more HTML tables that fit the page (see the module docstring)."""
    if df.height == 0:
        return '<p class="note">(no rows)</p>'
    shown = df if max_rows is None else df.head(max_rows)
    names = shown.columns
    numeric = [dtype.is_numeric() for dtype in shown.dtypes]
    texts = [[fmt(v, c) for v, c in zip(row, names, strict=True)] for row in shown.iter_rows()]
    widths = [_column_px(n, [r[i] for r in texts], numeric[i]) for i, n in enumerate(names)]
    keys = [names.index(c) for c in label_columns(shown, labels)]
    groups, _ = split_columns(widths, keys, PAGE_WIDTH_PX, sum)
    parts = [_one_table(texts, names, numeric, cols) for cols in groups]
    if len(parts) > 1:
        parts = [
            f'<p class="note">columns, part {k + 1} of {len(parts)}</p>{part}' for k, part in enumerate(parts)
        ]
    more = ""
    if max_rows is not None and df.height > max_rows:
        more = (
            f'<p class="note">first {plural(max_rows, "row")} of {df.height:,} shown '
            "(full table: the SQL report).</p>"
        )
    return f'<div class="tbl">{"".join(parts)}</div>{more}'


def report_table(df: pl.DataFrame, report: str, max_rows: int | None = None) -> str:
    """A report's frame as HTML tables repeating the report's label columns."""
    return table(df, report_info(report).labels, max_rows)


# ------------------------------------------------------------------ charts
def svg(fig) -> str:
    """A matplotlib figure as an inline <svg> element (see the module docstring).

    No XML prolog or RDF metadata; text drawn as paths (no font needed); ids deterministic (same
    bytes on a rerun) and distinct between the charts of one page (a salt per chart's titles).
    """
    import matplotlib

    for i, ax in enumerate(fig.axes):
        ax.title.set_gid(f"title-{i}")
        for j, artist in enumerate([*ax.patches, *ax.lines, *ax.collections]):
            kind = "ref" if artist.get_gid() == _REFERENCE else "data"
            artist.set_gid(f"{kind}-{i}-{j}")
    salt = "crossmargin-" + "-".join(ax.get_title() for ax in fig.axes)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.find("<svg") :], flags=re.DOTALL)
    # glyph and clip-path ids are per figure: prefix them so the page holds no duplicate id
    prefix = "c" + hashlib.sha1(salt.encode()).hexdigest()[:8] + "-"
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", text)
    return f'<div class="chart">{text}</div>'


def title(ax, text: str, panels: int = 1) -> None:
    """An axes title wrapped to its panel's width (so titles of side-by-side panels never meet)."""
    ax.set_title("\n".join(textwrap.wrap(text, max(30, 110 // panels))), fontsize=10)


_REFERENCE = "reference"


def mark_reference(artist) -> None:
    """A threshold line or a shaded span: drawn, but not a data series of its axes."""
    artist.set_gid(_REFERENCE)


@dataclass
class Chart:
    """Side-by-side panels of one figure; each panel `(draw(ax), has_data)`."""

    height: float
    panels: list[tuple[Callable[..., None], bool]] = field(default_factory=list)
    width: float = 12.0

    def add(self, draw: Callable[..., None], has_data: bool) -> Chart:
        self.panels.append((draw, has_data))
        return self

    def render(self, empty: str) -> str:
        """The chart's SVG with the panels that have data; `empty` (a note) when none has."""
        drawn = [draw for draw, has_data in self.panels if has_data]
        if not drawn:
            return f'<p class="note">{esc(empty)}</p>'
        from matplotlib.figure import Figure  # object API only: no pyplot global state, no GUI backend

        width = self.width if len(drawn) > 1 else self.width * (0.75 if len(self.panels) > 1 else 1)
        fig = Figure(figsize=(width, self.height), dpi=100, layout="constrained")
        axes = fig.subplots(1, len(drawn), squeeze=False)[0]
        for ax, draw in zip(axes, drawn, strict=True):
            draw(ax, len(drawn))
        return svg(fig)


# ------------------------------------------------------------------ the page
def section(heading: str, report: str | None, body: str) -> str:
    grain = (
        f'<p class="grain">{esc(report_info(report).grain)} (report <code>{report}</code>)</p>'
        if report
        else ""
    )
    return f"<section><h2>{esc(heading)}</h2>{grain}{body}</section>"


def kpis(items: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div class="kpi"><div class="v">{esc(v)}</div><div class="l">{esc(label)}</div></div>'
        for label, v in items
    )
    return f'<div class="kpis">{cells}</div>'


def document(heading: str, meta: str, body: str) -> str:
    """The whole page: head with the generator tag and the style, the heading, the body."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"{HTML_GENERATOR}<title>{esc(heading)}</title><style>{CSS}</style></head><body>"
        f'<h1>{esc(heading)}</h1><p class="meta">{meta}</p>{body}'
        "</body></html>\n"
    )


def describe(path: Path) -> str:
    """One line about a written page: its size and number of charts."""
    text = Path(path).read_text(encoding="utf-8")
    return f"wrote {path} ({len(text.encode()) / 1024:,.0f} KiB, {plural(text.count('<svg'), 'chart')})"
