"""An explanation (explain/document.py) as terminal text, with rich: one titled section per part, each
naming its docs/rules.md section; numbers that matter written exactly (the float's repr), readable in
100 columns.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

WIDTH = 100  # columns when the output is not a terminal (a pipe, a file, a notebook)
# a balance row's parts (explain/rows.py) and their headings here
BALANCE_VALUES = {
    "value_usdt": "value",
    "liability_usdt": "liability",
    "collateral_usdt": "collateral",
    "maintenance_margin_usdt": "maint. margin",
    "initial_margin_usdt": "initial margin",
}


def show(value: Any) -> str:
    """A value as written in the explanation: a float exactly (its repr), as JSON writes it otherwise."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"inf": "+inf", "nan": "NaN"}.get(repr(value), repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def _table(title: str, *columns: str, numeric: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold", expand=False)
    for c in columns:
        table.add_column(c, justify="right" if c in numeric else "left", overflow="fold")
    return table


def _anchor(doc: dict[str, Any], name: str) -> str:
    return doc["sections"][name]


def header(doc: dict[str, Any]) -> list[Any]:
    source = doc["source"]
    where = f"inputs {source['input_dir']}" + (f" (the run in {source['run']})" if source["run"] else "")
    if source["policy_file"]:
        where += f", policy file {source['policy_file']}"
    if source["baseline"]:
        where += f", baseline {source['baseline']}"
    status = "scored" if doc["status"] == "scored" else "NOT SCORED: data issues"
    lines = [
        Text(f"Account {doc['account_id']}: {status}", style="bold"),
        Text(f"as_of {doc['as_of']}, policy {doc['policy_version']}; {where}"),
    ]
    if doc["status"] != "scored":
        lines.append(
            Text(
                "This account has data issues, so it is left out of account_risk and actions. The values "
                "below are what could still be computed: none of them is a result of the run.",
                style="bold red",
            )
        )
    account = doc["account"]
    if account is None:
        lines.append(Text("No row of accounts holds this account_id: nothing but its rows could be valued."))
    else:
        lines.append(Text("; ".join(f"{k} {show(v)}" for k, v in account.items())))
    if doc["account_rows"] > 1:
        lines.append(
            Text(f"accounts holds {doc['account_rows']} rows for this account_id; the first is shown.")
        )
    return lines


def data_issues(doc: dict[str, Any]) -> list[Any]:
    if not doc["data_issues"]:
        return []
    table = _table(f"Data issues ({_anchor(doc, 'data_issues')})", "table", "code", "asset", "detail")
    for issue in doc["data_issues"]:
        table.add_row(issue["table"], issue["code"], show(issue["asset"]), issue["detail"])
    return [table]


def balances(doc: dict[str, Any]) -> list[Any]:
    rows = doc["balances"]
    amounts = ("free", "locked", "borrowed", "interest")
    inputs = _table("Balance rows (asset units)", "asset", *amounts, numeric=amounts)
    for r in rows:
        inputs.add_row(show(r["asset"]), *(show(r[c]) for c in amounts))
    figures = ("holding", "debt", "price_usdt")
    prices = _table(
        f"holding = free + locked, debt = borrowed + interest, at the price in effect ({_anchor(doc, 'prices')})",
        "asset", *figures, "priced_at", numeric=figures,
    )  # fmt: skip
    for r in rows:
        problem = f" ({r['price_problem']})" if r.get("price_problem") else ""
        prices.add_row(show(r["asset"]), *(show(r[c]) for c in figures), show(r["priced_at"]) + problem)
    values = _table(
        f"Balances valued in USDT, and the account's sums ({_anchor(doc, 'sums')})",
        "asset", *BALANCE_VALUES.values(), numeric=tuple(BALANCE_VALUES.values()),
    )  # fmt: skip
    for r in rows:
        values.add_row(show(r["asset"]), *(show(r[c]) for c in BALANCE_VALUES))
    sums = {s["adds"]: s["value"] for s in doc["sums"]}
    values.add_section()
    values.add_row("Σ account", *(show(sums[f"balances.{c}"]) for c in BALANCE_VALUES), style="bold")
    return [inputs, prices, values, *_slices(doc)]


def _slices(doc: dict[str, Any]) -> list[Any]:
    table = _table(
        f"Tier slices used: a value is Σ rate × the part of it in each slice ({_anchor(doc, 'balances')})",
        "asset", "of", "slice [lower, upper)", "rate", "part in slice", "rate × part",
        numeric=("rate", "part in slice", "rate × part"),
    )  # fmt: skip
    for r in doc["balances"]:
        for kind, parts in r["slices"].items():
            for p in parts:
                bounds = f"[{show(p['lower_usdt'])}, {show(p['upper_usdt'])})"
                table.add_row(
                    show(r["asset"]),
                    kind,
                    bounds,
                    show(p["rate"]),
                    show(p["amount_usdt"]),
                    show(p["value_usdt"]),
                )
    return [table] if table.row_count else []


def open_orders(doc: dict[str, Any]) -> list[Any]:
    if not doc["open_orders"]:
        return [Text(f"Open orders: none, so open_order_loss_usdt is 0 ({_anchor(doc, 'open_orders')})")]
    table = _table(
        f"Open orders: loss = max(0, given − received) ({_anchor(doc, 'open_orders')})",
        "order_id", "side pair", "qty @ limit", "given_usdt", "received_usdt", "loss_usdt",
        numeric=("given_usdt", "received_usdt", "loss_usdt"),
    )  # fmt: skip
    for o in doc["open_orders"]:
        table.add_row(
            show(o["order_id"]),
            f"{show(o['side'])} {show(o['base_asset'])}/{show(o['quote_asset'])}",
            f"{show(o['remaining_qty'])} @ {show(o['price'])}",
            show(o["given_usdt"]),
            show(o["received_usdt"]),
            show(o["loss_usdt"]),
        )
    ool = next(s["value"] for s in doc["sums"] if s["output"] == "open_order_loss_usdt")
    table.add_section()
    table.add_row("Σ account", "", "", "", "open_order_loss_usdt", show(ool), style="bold")
    return [table]


def formulas(doc: dict[str, Any], part: str, title: str) -> list[Any]:
    """Each output as its formula, then with the account's numbers filled in (a level: also as the
    numerator and denominator the engine divided), then its value."""
    if not doc[part]:
        return []
    out: list[Any] = [Text(f"{title} ({doc[part][0]['section']})", style="bold")]
    for item in doc[part]:
        line = Text(f"{item['output']} = {item['formula']}")
        if item["section"] != doc[part][0]["section"]:
            line.append(f"   ({item['section']})", style="dim")
        out.append(line)
        steps = [item["filled"]]
        value = show(item["value"])
        if "numerator" in item:
            steps.append(f"{show(item['numerator'])} / {show(item['denominator'])}")
            if item["denominator"] == 0:
                value += " (a zero denominator)"
        out.append(Text(f"    = {' = '.join(dict.fromkeys([*steps, value]))}", style="bold"))
    return [*out, Text("")]


def checked(doc: dict[str, Any], part: str, title: str) -> list[Any]:
    """Each output with its value, rule, formula and the checks it is decided by."""
    if not doc[part]:
        return []
    out: list[Any] = [Text(title, style="bold")]
    for item in doc[part]:
        line = Text(f"{item['output']} = {show(item['value'])}", style="bold")
        line.append(f"   {item['rule']}; {item['section']}", style="dim")
        out.append(line)
        if "filled" in item:
            out.append(Text(f"    {item['formula']}\n    = {item['filled']}"))
        if item["checks"]:
            out.append(_checks(item["checks"]))
    return out


def _checks(checks: list[dict[str, Any]]) -> Padding:
    table = Table(show_header=True, header_style="dim", box=None, padding=(0, 1), expand=False)
    table.add_column("check", no_wrap=True)
    for c in ("measure = value", "compared", "holds"):
        table.add_column(c, overflow="fold")
    for c in checks:
        measured = f"{c['measure']} = {show(c['measured'])}" if c["measure"] else ""
        compared = f"{c['comparison']} {show(c['threshold'])}".strip()
        if c.get("applies_to"):
            compared += f" ({c['applies_to']})"
        holds = ("yes" if c["holds"] else "no") + (
            "" if c.get("followed", True) else " (not for this account)"
        )
        table.add_row(c["name"], measured, compared, holds)
    return Padding(table, (0, 0, 0, 3))  # the table's own padding of 1: under the text above


def actions(doc: dict[str, Any]) -> list[Any]:
    if not doc["actions"]:
        why = "" if doc["status"] == "scored" else ": an account with a data issue gets none"
        return [Text(f"Actions: none{why} ({_anchor(doc, 'actions')})")]
    table = _table(
        f"Actions ({_anchor(doc, 'actions')})", "action", "reason", "amount_usdt", numeric=("amount_usdt",)
    )
    for a in doc["actions"]:
        table.add_row(a["action"], show(a["reason"]), show(a["amount_usdt"]))
    return [table]


def switches(doc: dict[str, Any]) -> list[Any]:
    times = ", ".join(s["switched_at"] for s in doc["mode_switches"]) or "none"
    return [Text(f"Mode switches ({_anchor(doc, 'mode_switches')}): {times}")]


def renderables(doc: dict[str, Any]) -> list[Any]:
    """Every section of one account's explanation, in reading order (for an account that was not
    scored, each computed section says so in its title)."""
    unscored = "" if doc["status"] == "scored" else " [not scored]"
    return [
        *header(doc),
        *data_issues(doc),
        *balances(doc),
        *open_orders(doc),
        *switches(doc),
        *formulas(doc, "quantities", f"Quantities made of the sums{unscored}"),
        *formulas(
            doc, "levels", f"Levels{unscored}: each one float64 division, +inf when its denominator is 0"
        ),
        *checked(doc, "decisions", f"Decisions{unscored}"),
        *checked(
            doc, "distances", f"Distances to thresholds{unscored} (a uniform move of the non-stable prices)"
        ),
        *checked(doc, "topups", f"What it would take{unscored}"),
        *actions(doc),
    ]


def render(doc: dict[str, Any], width: int | None = None) -> str:
    """The explanation as text `width` columns wide (default WIDTH)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width or WIDTH, color_system=None, soft_wrap=False, highlight=False, markup=False
    )  # no markup: a detail or a name is printed as it is, brackets included
    for part in renderables(doc):
        console.print(part)
        if isinstance(part, Table | Padding):
            console.print()
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
