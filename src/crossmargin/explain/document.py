"""The explanation of one account as a JSON-ready structure (what `--format json` prints, what the
notebook helper returns, what the text is rendered from).

Keys (stable):
- `account_id`, `status` ("scored" or "data_issue"), `as_of`, `policy_version`, `source`;
- `account`: the account's input row;
- `account_risk`: every column of its account_risk row, the run's values (null when not scored);
- `not_scored`: for an account with a data issue, the same columns as far as they could still be
  computed (never in account_risk: not a result);
- `data_issues`: table, code, detail, asset;
- `balances`: per row its inputs, holding and debt, price and priced_at, value_usdt, liability_usdt,
  collateral_usdt, maintenance_margin_usdt, initial_margin_usdt and the tier slices they use;
- `open_orders`: per order its inputs, prices and first-slice ratios, given_usdt, received_usdt, loss_usdt;
- `mode_switches`: the account's switches;
- `sums`: each account sum with the rows it adds;
- `quantities`, `levels`, `decisions`, `distances`, `topups`: per output its value, rule, docs/rules.md
  section, formula (filled in) and checks (measure, comparison, threshold, holds); a decision also
  carries `threshold` (its first check's);
- `actions`: the account's rows of actions.

Numbers are the float64 values themselves: json writes them so they read back to the same bits
(+inf as `Infinity`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import polars as pl

from crossmargin.explain import checks as checks_
from crossmargin.explain.checks import Item
from crossmargin.explain.rows import balance_rows, order_rows
from crossmargin.explain.scoring import Scored
from crossmargin.io.schemas import ACCOUNT_RISK, INPUT_SCHEMAS
from crossmargin.kernels.runs import ACCOUNT
from crossmargin.rules import decisions

# each account sum, and the part of each row it adds (explain/rows.py)
SUM_PARTS = {
    "total_asset_usdt": ("balances", "value_usdt"),
    "total_liability_usdt": ("balances", "liability_usdt"),
    "collateral_usdt": ("balances", "collateral_usdt"),
    "maintenance_margin_usdt": ("balances", "maintenance_margin_usdt"),
    "initial_margin_usdt": ("balances", "initial_margin_usdt"),
    "open_order_loss_usdt": ("open_orders", "loss_usdt"),
}
SECTIONS = {
    "sums": "row-quantities",
    "balances": "tiered-sums",
    "open_orders": "open-order-loss",
    "mode_switches": "switches",
    "data_issues": "data-issues",
    "actions": "actions",
    "prices": "price-in-effect",
}
_FIELD = re.compile(r"\{([a-z_]+)\}")


def jsonable(value: Any) -> Any:
    """A value as JSON holds it: a timestamp as ISO 8601 UTC text, lists item by item."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def item_lists(policy) -> dict[str, list[Item]]:
    return {
        "quantities": checks_.quantity_items(),
        "levels": checks_.level_items(policy),
        "decisions": checks_.decision_items(policy),
        "distances": checks_.distance_items(policy),
        "topups": checks_.topup_items(policy),
    }


def not_scored_frame(scored: Scored) -> pl.DataFrame:
    """Every computed account's account_risk columns as far as they exist (no cast: its values may be
    the bad ones its issue is about)."""
    policy = scored.policy
    extra = scored.computed.with_columns(
        decisions.pro_ineligible_reasons(policy).cast(pl.List(pl.String)),
        pl.lit(policy.as_of).dt.cast_time_unit("us").alias("as_of"),
        pl.lit(policy.version).alias("policy_version"),
    )
    return extra.select([c for c in ACCOUNT_RISK if c in extra.columns])


def fill(template: str, values: dict[str, Any], names: bool = False) -> str:
    """A formula template with each {column} replaced by its name (`names`) or its value (repr)."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if names:
            return name.removesuffix("_usdt")
        value = values.get(name)
        return repr(float(value)) if isinstance(value, float) else str(value)

    return _FIELD.sub(one, template)


def _check(check: checks_.Check, key: str, at: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    threshold = at.get(f"{key}/threshold", check.threshold)
    measured = at.get(f"{key}/measured", values.get(check.measure) if check.measure else None)
    out = {"name": check.name, "measure": check.measure, "measured": measured, "comparison": check.comparison,
           "threshold": threshold, "applies_to": check.note or None, "holds": at[f"{key}/holds"]}  # fmt: skip
    if check.followed is not None:
        out["followed"] = at[f"{key}/followed"]
    return out


def explain_item(item: Item, at: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """One output: value, rule, section, formula filled in, numerator/denominator, checks."""
    known = {**at, **values}
    out: dict[str, Any] = {"output": item.output, "value": values.get(item.output), "rule": item.rule,
                           "section": item.section}  # fmt: skip
    formula = item.formula
    if isinstance(formula, dict):
        formula = formula.get(str(values.get("margin_mode")))
    if formula is not None:
        out["formula"] = fill(formula, known, names=True)
        out["filled"] = fill(formula, known)
    if item.parts is not None:
        out["numerator"] = at[f"{item.output}/numerator"]
        out["denominator"] = at[f"{item.output}/denominator"]
    out["checks"] = [_check(c, f"{item.output}/{j}", at, values) for j, c in enumerate(item.checks)]
    headline = item.headline if item.headline is not None else 0 if len(item.checks) == 1 else None
    out["threshold"] = out["checks"][headline]["threshold"] if headline is not None else None
    return out


def _sums(values: dict[str, Any], rows: dict[str, list[dict]]) -> list[dict[str, Any]]:
    return [
        {"output": name, "value": values.get(name), "adds": f"{table}.{part}", "rows": len(rows[table]),
         "section": checks_.section(SECTIONS["sums"] if table == "balances" else SECTIONS["open_orders"])}
        for name, (table, part) in SUM_PARTS.items()
    ]  # fmt: skip


class Accounts:
    """The explanations of the accounts of one engine run (`Scored`), one per account id."""

    def __init__(self, scored: Scored) -> None:
        self.scored = scored
        policy = scored.policy
        self.items = item_lists(policy)
        every = [i for items in self.items.values() for i in items]
        self.evaluated = _by_account(checks_.evaluate(scored.computed, every, policy))
        self.risk = _by_account(scored.account_risk)
        self.not_scored = _by_account(not_scored_frame(scored))
        self.issues = _grouped(scored.issues.select(ACCOUNT, "table", "code", "detail", "asset"))
        self.actions = _grouped(scored.actions.select(ACCOUNT, "action", "reason", "amount_usdt"))
        self.inputs = {name: _frames(frame) for name, frame in scored.rows.items()}
        self.valued = {"balances": _frames(scored.passed.balances.frame),
                       "open_orders": _frames(scored.passed.orders.frame)}  # fmt: skip

    def known(self, account_id: int) -> bool:
        """Whether any input row or issue names the account."""
        return account_id in self.issues or any(account_id in frames for frames in self.inputs.values())

    def explain(self, account_id: int, source: dict[str, Any]) -> dict[str, Any]:
        """The account's explanation (the module docstring lists its keys), JSON-ready."""
        policy = self.scored.policy
        risk = self.risk.get(account_id)
        values = risk if risk is not None else self.not_scored.get(account_id) or {}
        rows = self._rows(account_id)
        account = self._input("accounts", account_id)
        doc = {
            "account_id": account_id,
            "status": "scored" if risk is not None else "data_issue",
            "as_of": jsonable(policy.as_of),
            "policy_version": policy.version,
            "source": source,
            "account": account.drop(ACCOUNT).row(0, named=True) if account.height else None,
            "account_rows": account.height,  # more than 1: a duplicate_row issue (the first is shown)
            "account_risk": risk,
            "not_scored": None if risk is not None else (values or None),
            "data_issues": self.issues.get(account_id, []),
            **rows,
            "mode_switches": self._input("mode_switches", account_id).drop(ACCOUNT).to_dicts(),
            "sums": _sums(values, rows),
            **self._outputs(account_id, values),
            "actions": self.actions.get(account_id, []),
            "sections": {name: checks_.section(anchor) for name, anchor in SECTIONS.items()},
        }
        return jsonable(doc)

    def _rows(self, account_id: int) -> dict[str, list[dict[str, Any]]]:
        """The account's balance rows and open orders, each valued."""
        terms, market = self.scored.terms, self.scored.market
        return {
            "balances": balance_rows(
                self._input("balances", account_id), self._valued("balances", account_id), terms, market
            ),
            "open_orders": order_rows(
                self._input("open_orders", account_id), self._valued("open_orders", account_id), market
            ),
        }

    def _outputs(self, account_id: int, values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Each output explained; none for an account without an accounts row (nothing was computed)."""
        at = self.evaluated.get(account_id)
        return {
            name: [explain_item(i, at, values) for i in items] if at else []
            for name, items in self.items.items()
        }

    def _input(self, table: str, account_id: int) -> pl.DataFrame:
        frame = self.inputs[table].get(account_id)
        return frame if frame is not None else pl.DataFrame(schema=INPUT_SCHEMAS[table])

    def _valued(self, table: str, account_id: int) -> pl.DataFrame:
        frame = self.valued[table].get(account_id)
        if frame is None:  # no rows: the table's columns without a row
            whole = self.scored.passed.balances if table == "balances" else self.scored.passed.orders
            frame = whole.frame.clear()
        return frame


def _frames(frame: pl.DataFrame) -> dict[int, pl.DataFrame]:
    """A frame's rows by account id (in their order)."""
    return {
        key[0]: part for key, part in frame.partition_by(ACCOUNT, as_dict=True, maintain_order=True).items()
    }


def _by_account(frame: pl.DataFrame) -> dict[int, dict[str, Any]]:
    """The first row of each account, by id."""
    return {
        row[ACCOUNT]: row
        for row in frame.unique(ACCOUNT, keep="first", maintain_order=True).iter_rows(named=True)
    }


def _grouped(frame: pl.DataFrame) -> dict[int, list[dict[str, Any]]]:
    """Each account's rows (without its id), by id."""
    return {i: part.drop(ACCOUNT).to_dicts() for i, part in _frames(frame).items()}
