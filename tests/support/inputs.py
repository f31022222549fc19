"""Small builders for literal input tables (docs/rules.md §6) with the exact dtypes of schemas.INPUT_SCHEMAS.

Typical use in a test::

    t = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "USDT", free=950.0, borrowed=800.0)],
    )
    r = run(t, NEW)          # crossmargin.engine.score(t, resolve(NEW))
    assert one(r, 1)["margin_call"] is True

Defaults (documented, so hand arithmetic in tests can rely on them):
- prices: USDT at 1.0 (added unless a USDT price is given); a price given without `priced_at` ticks
  every 12 hours from 2024-12-01 to 2025-02-01 (synthetic.small.HEARTBEAT), so it is in effect and
  fresh at any as_of the tests use;
- collateral tiers: USDT one slice [0, inf) ratio 1.0 (added unless USDT tiers are given);
- liability brackets: USDT one slice [0, inf), maintenance rate 0.125, initial rate 0.25
  (both powers of two, so margins of integer liabilities are exact), leverage 4;
- accounts: Classic 3x, cross margin activated, quiz passed, questionnaire and terms both at
  COMPLIANT_AT = 2024-12-17T00:00Z (the first compliant instant), country "FR".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.synthetic.small import bracket_rows, ticking, tier_rows

US = dt.timedelta(microseconds=1)
INF = float("inf")


def ts(text: str) -> dt.datetime:
    """'2025-01-21T10:00:00Z' -> aware UTC datetime."""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


EPOCH = ts("2020-01-01T00:00:00Z")
COMPLIANCE_FROM = ts("2024-12-17T00:00:00Z")
BORROW_DISABLED_FROM = ts("2024-12-19T00:00:00Z")
SWITCHED_FROM = ts("2025-01-15T00:00:00Z")
NEW_FORMULA_FROM = ts("2025-01-21T10:00:00Z")
COMPLIANT_AT = COMPLIANCE_FROM

NEW = NEW_FORMULA_FROM  # first instant of the new policy
OLD = ts("2025-01-20T12:00:00Z")  # old formula, after every compliance date

DEFAULT_USDT_MMR = 0.125
DEFAULT_USDT_IMR = 0.25

_UNSET: Any = object()


# --------------------------------------------------------------------------------- row builders
def account(
    account_id: int,
    margin_mode: str = "classic",
    classic_leverage: int = 3,
    *,
    cross_margin_activated: bool = True,
    pro_quiz_passed: bool = True,
    questionnaire_completed_at: dt.datetime | None = _UNSET,
    terms_agreed_at: dt.datetime | None = _UNSET,
    country: str = "FR",
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "margin_mode": margin_mode,
        "classic_leverage": classic_leverage,
        "cross_margin_activated": cross_margin_activated,
        "pro_quiz_passed": pro_quiz_passed,
        "questionnaire_completed_at": COMPLIANT_AT
        if questionnaire_completed_at is _UNSET
        else questionnaire_completed_at,
        "terms_agreed_at": COMPLIANT_AT if terms_agreed_at is _UNSET else terms_agreed_at,
        "country": country,
    }


def balance(
    account_id: int,
    asset: str,
    free: float = 0.0,
    locked: float = 0.0,
    borrowed: float = 0.0,
    interest: float = 0.0,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "asset": asset,
        "free": float(free),
        "locked": float(locked),
        "borrowed": float(borrowed),
        "interest": float(interest),
    }


def order(
    account_id: int,
    order_id: int,
    base_asset: str,
    quote_asset: str,
    side: str,
    price: float,
    remaining_qty: float,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "order_id": order_id,
        "base_asset": base_asset,
        "quote_asset": quote_asset,
        "side": side,
        "price": float(price),
        "remaining_qty": float(remaining_qty),
    }


def switch(account_id: int, switched_at: dt.datetime) -> dict[str, Any]:
    return {"account_id": account_id, "switched_at": switched_at}


def price(asset: str, price_usdt: float, priced_at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One price row at `priced_at`, or without it the rows of a feed ticking every 12 hours."""
    if priced_at is not None:
        return [{"asset": asset, "price_usdt": float(price_usdt), "priced_at": priced_at}]
    return ticking(asset, float(price_usdt))


def tiers(
    asset: str,
    slices: Iterable[tuple[float, float | None, float]],
    effective_from: dt.datetime = EPOCH,
) -> list[dict[str, Any]]:
    """Collateral tiers of one asset: slices (lower_usdt, upper_usdt or None, collateral_ratio)."""
    return tier_rows(asset, slices, effective_from)


def one_slice(asset: str, ratio: float = 1.0, effective_from: dt.datetime = EPOCH) -> list[dict[str, Any]]:
    return tiers(asset, [(0.0, None, ratio)], effective_from)


def brackets(
    asset: str,
    slices: Iterable[tuple[float, float | None, float, float]],
    effective_from: dt.datetime = EPOCH,
) -> list[dict[str, Any]]:
    """Liability brackets of one asset: slices (lower_usdt, upper_usdt or None, mmr, imr)."""
    return bracket_rows(asset, slices, effective_from)


def one_bracket(
    asset: str,
    mmr: float = DEFAULT_USDT_MMR,
    imr: float = DEFAULT_USDT_IMR,
    effective_from: dt.datetime = EPOCH,
) -> list[dict[str, Any]]:
    return brackets(asset, [(0.0, None, mmr, imr)], effective_from)


# --------------------------------------------------------------------------------- tables
def frame(name: str, rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """One input table with exactly the schema of INPUT_SCHEMAS[name] (empty if no rows)."""
    schema = INPUT_SCHEMAS[name]
    rows = [dict(r) for r in rows]
    for r in rows:
        extra = set(r) - set(schema)
        if extra:
            raise ValueError(f"{name}: unknown columns {sorted(extra)}")
    return pl.DataFrame(rows, schema=schema)


def _flatten(rows: Iterable[Any] | pl.DataFrame) -> list[dict[str, Any]]:
    if isinstance(rows, pl.DataFrame):  # e.g. a table of crossmargin.synthetic.small.reference_tables()
        return rows.to_dicts()
    out: list[dict[str, Any]] = []
    for r in rows:
        if isinstance(r, Mapping):
            out.append(dict(r))
        else:  # a list of rows, e.g. from tiers(...)
            out.extend(dict(x) for x in r)
    return out


def tables(
    accounts: Iterable[Mapping[str, Any]] = (),
    balances: Iterable[Mapping[str, Any]] = (),
    open_orders: Iterable[Mapping[str, Any]] = (),
    mode_switches: Iterable[Mapping[str, Any]] = (),
    prices: Mapping[str, float] | Iterable[Any] = (),
    collateral_tiers: Iterable[Any] = (),
    liability_brackets: Iterable[Any] = (),
    *,
    defaults: bool = True,
) -> dict[str, pl.DataFrame]:
    """The 7 input tables. `prices` may be {asset: price} (ticking prices) or a list of price(...) rows.

    Every table also takes a DataFrame of its rows.

    `collateral_tiers` / `liability_brackets` take rows or lists of rows (tiers(...), brackets(...)).
    With defaults=True, the USDT price, tiers and bracket of the module docstring are added when the
    caller gives none for USDT.
    """
    price_rows = (
        [r for a, p in prices.items() for r in price(a, p)]
        if isinstance(prices, Mapping)
        else _flatten(prices)
    )
    tier_rows = _flatten(collateral_tiers)
    bracket_rows = _flatten(liability_brackets)
    if defaults:
        if not any(r["asset"] == "USDT" for r in price_rows):
            price_rows[:0] = price("USDT", 1.0)
        if not any(r["asset"] == "USDT" for r in tier_rows):
            tier_rows[:0] = one_slice("USDT", 1.0)
        if not any(r["asset"] == "USDT" for r in bracket_rows):
            bracket_rows[:0] = one_bracket("USDT")
    return {
        "accounts": frame("accounts", _flatten(accounts)),
        "balances": frame("balances", _flatten(balances)),
        "prices": frame("prices", price_rows),
        "open_orders": frame("open_orders", _flatten(open_orders)),
        "mode_switches": frame("mode_switches", _flatten(mode_switches)),
        "collateral_tiers": frame("collateral_tiers", tier_rows),
        "liability_brackets": frame("liability_brackets", bracket_rows),
    }


# --------------------------------------------------------------------------------- policy files
def threshold_policy(
    classic: Mapping[int, tuple[float, float]] | None = None,
    pro: tuple[float, float] | None = None,
    name: str = "test-thresholds",
    *,
    initial_risk_ratio: Mapping[int, float] | None = None,
    activation: Mapping[str, float] | None = None,
) -> str:
    """The text of a `--policy` file that sets (margin_call, liquidation) thresholds from the start
    (1970), per Classic leverage and for Pro; optionally the IRR per Classic leverage and activation
    values (`new_min_pro_margin_level`, `new_min_net_equity_usdt`,
    `old_min_classic_collateral_margin_level`); every other value stays the shipped one."""
    lines = ["[[version]]", f'name = "{name}"', "effective_from = 1970-01-01T00:00:00Z"]
    classic, irr = dict(classic or {}), dict(initial_risk_ratio or {})
    for leverage in sorted(set(classic) | set(irr)):
        lines.append(f"[version.classic.leverage.{leverage}]")
        if leverage in classic:
            margin_call, liquidation = classic[leverage]
            lines += [f"margin_call = {margin_call!r}", f"liquidation = {liquidation!r}"]
        if leverage in irr:
            lines.append(f"initial_risk_ratio = {irr[leverage]!r}")
    if pro is not None:
        lines += ["[version.pro]", f"margin_call = {pro[0]!r}", f"liquidation = {pro[1]!r}"]
    if activation:
        lines += ["[version.activation]", *(f"{key} = {float(value)!r}" for key, value in activation.items())]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- running
def run(t: Mapping[str, pl.DataFrame], as_of: dt.datetime, policy_file: Any = None) -> Any:
    """crossmargin.engine.score(t, policy.resolve(as_of)) -> RunResult."""
    from crossmargin.engine import score as compute
    from crossmargin.policy import resolve

    return compute(dict(t), resolve(as_of, policy_file))


def one(result: Any, account_id: int) -> dict[str, Any]:
    """The account_risk row of one account, as a dict (fails if absent or duplicated)."""
    rows = result.account_risk.filter(pl.col("account_id") == account_id).to_dicts()
    issues = result.data_issues.filter(pl.col("account_id") == account_id).to_dicts()
    assert len(rows) == 1, f"account {account_id}: {len(rows)} account_risk rows; data_issues={issues}"
    return rows[0]


def actions_of(result: Any, account_id: int) -> list[tuple[str, str | None, float | None]]:
    """The actions rows of one account as sorted (action, reason, amount_usdt) tuples."""
    rows = result.actions.filter(pl.col("account_id") == account_id).to_dicts()
    return sorted(
        ((str(r["action"]), r["reason"], r["amount_usdt"]) for r in rows), key=lambda x: (x[0], str(x[1]))
    )
