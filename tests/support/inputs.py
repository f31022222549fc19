"""The one builder of input tables for the tests (docs/rules.md §6), with exactly the dtypes of
schemas.INPUT_SCHEMAS: rows, tables, the small universe, policy files, and the building blocks of the
hypothesis strategies.

Typical use in a test::

    t = tables(
        accounts=[account(1, "pro")],
        balances=[balance(1, "USDT", free=950.0, borrowed=800.0)],
    )
    r = run(t, NEW)          # crossmargin.engine.score(t, resolve(NEW))
    assert one(r, 1)["margin_call"] is True

`rows(...)` takes the same arguments and gives the seven tables as lists of dicts, the form the scalar
reference (support/reference.py) reads; `frames(lists)` turns such lists into the engine's frames.

Defaults (documented, so hand arithmetic in tests can rely on them):
- prices: USDT at 1.0 (added unless a USDT price is given); a price given without `priced_at` ticks
  every 12 hours from 2024-12-01 to 2025-02-01 (HEARTBEAT), so it is in effect and fresh at any as_of
  the tests use;
- collateral tiers: USDT one slice [0, inf) ratio 1.0 (added unless USDT tiers are given);
- liability brackets: USDT one slice [0, inf), maintenance rate 0.125, initial rate 0.25
  (both powers of two, so margins of integer liabilities are exact), leverage 4;
- accounts: Classic 3x, cross margin activated, quiz passed, questionnaire and terms both at
  COMPLIANT_AT = 2024-12-17T00:00Z (the first compliant instant), country "FR".

The small universe (the robustness tests' inputs): five good assets (USDT, BTC, ETH, BNB, DOGE) with
hand-set reference data, one broken asset per way reference data can be wrong
(`reference_tables(broken=True)`; the names are crossmargin.synthetic.faults'), and `clean_tables(n,
seed)`, a valid input of n accounts generated vectorized with numpy (no data issue expected). Faults go
in with crossmargin.synthetic.faults.inject_faults(..., reference=reference_tables(broken=True)).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from hypothesis import strategies as st

from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.synthetic.faults import (
    BAD_BRACKET,
    BAD_RATE,
    GAP,
    INF_PRICE,
    LATE_PRICE,
    NAN_PRICE,
    NEG_PRICE,
    NO_BRACKETS,
    NO_PRICE,
    NO_TIERS,
    NOT_AT_ZERO,
    NULL_PRICE,
    OVERLAP,
    STALE_PRICE,
    TIED_PRICE,
)

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
NEW_TEXT = "2025-01-21T10:00:00Z"  # NEW as `--as-of` takes it
OLD = ts("2025-01-20T12:00:00Z")  # old formula, after every compliance date

DEFAULT_USDT_MMR = 0.125
DEFAULT_USDT_IMR = 0.25

# a price feed that keeps ticking: the same value every 12 hours over the window the tests value at,
# so a price is in effect and fresh (at most 12 h old) at any as_of in it
HEARTBEAT = [ts("2024-12-01T00:00:00Z") + dt.timedelta(hours=12 * i) for i in range(125)]

_UNSET: Any = object()


def _number(x: float | None) -> float | None:
    """A quantity as a float; None (a missing value) stays None."""
    return None if x is None else float(x)


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
    free: float | None = 0.0,
    locked: float | None = 0.0,
    borrowed: float | None = 0.0,
    interest: float | None = 0.0,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "asset": asset,
        "free": _number(free),
        "locked": _number(locked),
        "borrowed": _number(borrowed),
        "interest": _number(interest),
    }


def order(
    account_id: int,
    order_id: int,
    base_asset: str,
    quote_asset: str,
    side: str,
    price: float | None,
    remaining_qty: float | None,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "order_id": order_id,
        "base_asset": base_asset,
        "quote_asset": quote_asset,
        "side": side,
        "price": _number(price),
        "remaining_qty": _number(remaining_qty),
    }


def switch(account_id: int, switched_at: dt.datetime | None) -> dict[str, Any]:
    return {"account_id": account_id, "switched_at": switched_at}


def ticking(asset: str, price_usdt: float | None) -> list[dict[str, Any]]:
    """Price rows of one asset at every HEARTBEAT instant (2024-12-01 .. 2025-02-01)."""
    return [{"asset": asset, "price_usdt": price_usdt, "priced_at": at} for at in HEARTBEAT]


def price(asset: str, price_usdt: float | None, priced_at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One price row at `priced_at`, or without it the rows of a feed ticking every 12 hours."""
    if priced_at is not None:
        return [{"asset": asset, "price_usdt": _number(price_usdt), "priced_at": priced_at}]
    return ticking(asset, _number(price_usdt))


def fresh_prices(as_of: dt.datetime, **assets: float) -> list[list[dict[str, Any]]]:
    """One price row per asset (USDT at 1.0 unless given), priced one hour before as_of: in effect
    and fresh."""
    return [price(a, p, as_of - dt.timedelta(hours=1)) for a, p in {"USDT": 1.0, **assets}.items()]


def tiers(
    asset: str,
    slices: Iterable[tuple[float, float | None, float]],
    effective_from: dt.datetime = EPOCH,
) -> list[dict[str, Any]]:
    """Collateral tiers of one asset: slices (lower_usdt, upper_usdt or None, collateral_ratio)."""
    return [
        {
            "asset": asset,
            "effective_from": effective_from,
            "lower_usdt": float(lo),
            "upper_usdt": None if up is None else float(up),
            "collateral_ratio": float(r),
        }
        for lo, up, r in slices
    ]


def one_slice(asset: str, ratio: float = 1.0, effective_from: dt.datetime = EPOCH) -> list[dict[str, Any]]:
    return tiers(asset, [(0.0, None, ratio)], effective_from)


def brackets(
    asset: str,
    slices: Iterable[tuple[float, float | None, float, float]],
    effective_from: dt.datetime = EPOCH,
    *,
    leverage: float | None = None,
) -> list[dict[str, Any]]:
    """Liability brackets of one asset: slices (lower_usdt, upper_usdt or None, mmr, imr).

    `leverage` is informational (no formula reads it): 1 / imr unless given.
    """
    return [
        {
            "asset": asset,
            "effective_from": effective_from,
            "lower_usdt": float(lo),
            "upper_usdt": None if up is None else float(up),
            "leverage": ((1.0 / imr) if imr else 1.0) if leverage is None else leverage,
            "maintenance_margin_rate": float(mmr),
            "initial_margin_rate": float(imr),
        }
        for lo, up, mmr, imr in slices
    ]


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


def frames(lists: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, pl.DataFrame]:
    """The 7 input tables as frames, from lists of rows (a table not given is empty)."""
    return {name: frame(name, lists.get(name, ())) for name in INPUT_SCHEMAS}


def _flatten(rows: Iterable[Any] | pl.DataFrame) -> list[dict[str, Any]]:
    if isinstance(rows, pl.DataFrame):  # e.g. a table of reference_tables()
        return rows.to_dicts()
    out: list[dict[str, Any]] = []
    for r in rows:
        if isinstance(r, Mapping):
            out.append(dict(r))
        else:  # a list of rows, e.g. from tiers(...)
            out.extend(dict(x) for x in r)
    return out


def rows(
    accounts: Iterable[Mapping[str, Any]] = (),
    balances: Iterable[Mapping[str, Any]] = (),
    open_orders: Iterable[Mapping[str, Any]] = (),
    mode_switches: Iterable[Mapping[str, Any]] = (),
    prices: Mapping[str, float] | Iterable[Any] = (),
    collateral_tiers: Iterable[Any] = (),
    liability_brackets: Iterable[Any] = (),
    *,
    defaults: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """The 7 input tables as lists of rows. `prices` may be {asset: price} (ticking prices) or a list
    of price(...) rows.

    Every table also takes a DataFrame of its rows; `collateral_tiers` / `liability_brackets` take rows
    or lists of rows (tiers(...), brackets(...)). With defaults=True, the USDT price, tiers and bracket
    of the module docstring are added (first) when the caller gives none for USDT.
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
        "accounts": _flatten(accounts),
        "balances": _flatten(balances),
        "prices": price_rows,
        "open_orders": _flatten(open_orders),
        "mode_switches": _flatten(mode_switches),
        "collateral_tiers": tier_rows,
        "liability_brackets": bracket_rows,
    }


def tables(*args: Any, **kwargs: Any) -> dict[str, pl.DataFrame]:
    """rows(...) as the engine's frames: the 7 input tables with their exact schemas."""
    return frames(rows(*args, **kwargs))


# --------------------------------------------------------------------------------- the small universe
GOOD = {"USDT": 1.0, "BTC": 100_000.0, "ETH": 4_000.0, "BNB": 700.0, "DOGE": 0.25}  # asset: price
UNTOUCHED = "UNTOUCHED"  # broken tiers and brackets, no price; nobody holds it: never an issue


def reference_tables(broken: bool = False) -> dict[str, pl.DataFrame]:
    """prices, collateral_tiers, liability_brackets of the small universe's GOOD assets (and, if
    `broken`, of its broken assets)."""
    prices = [row for a, p in GOOD.items() for row in ticking(a, p)]
    # an older and a future price for BTC: the job must take the latest priced_at <= as_of
    prices += [
        {"asset": "BTC", "price_usdt": 1.0, "priced_at": EPOCH - dt.timedelta(days=1)},
        {"asset": "BTC", "price_usdt": 7.0, "priced_at": NEW + US},
    ]
    ctiers: list[dict] = []
    lbrackets: list[dict] = []
    for a in GOOD:
        if a == "USDT":
            ctiers += tiers(a, [(0, None, 1.0)])
            lbrackets += brackets(a, [(0, None, 0.125, 0.25)])
        else:
            ctiers += tiers(a, [(0, 1e6, 0.95), (1e6, None, 0.5)])
            lbrackets += brackets(a, [(0, 1e6, 0.05, 0.1), (1e6, None, 0.1, 0.2)])
    if broken:
        for a in [NO_TIERS, NO_BRACKETS, GAP, OVERLAP, BAD_RATE, NOT_AT_ZERO, BAD_BRACKET]:
            prices += ticking(a, 2.0)
        prices += [
            {"asset": LATE_PRICE, "price_usdt": 2.0, "priced_at": NEW + dt.timedelta(seconds=1)},
            *ticking(INF_PRICE, float("inf")),
            *ticking(NAN_PRICE, float("nan")),
            *ticking(NEG_PRICE, -1.0),
            {"asset": STALE_PRICE, "price_usdt": 2.0, "priced_at": EPOCH},  # a feed that stopped long ago
            *ticking(TIED_PRICE, 2.0),
            *ticking(TIED_PRICE, 2.5),  # two values at every instant: ambiguous
            *ticking(NULL_PRICE, None),
        ]
        ok_t = [(0, None, 0.9)]
        ok_b = [(0, None, 0.05, 0.1)]
        price_faults = [INF_PRICE, NAN_PRICE, NEG_PRICE, STALE_PRICE, TIED_PRICE, NULL_PRICE]
        for a in [NO_PRICE, LATE_PRICE, NO_BRACKETS, BAD_BRACKET, *price_faults]:
            ctiers += tiers(a, ok_t)
        for a in [NO_PRICE, LATE_PRICE, NO_TIERS, GAP, OVERLAP, BAD_RATE, NOT_AT_ZERO, *price_faults]:
            lbrackets += brackets(a, ok_b)
        ctiers += tiers(GAP, [(0, 100, 0.9), (200, None, 0.8)])
        ctiers += tiers(OVERLAP, [(0, 100, 0.9), (50, None, 0.8)])
        ctiers += tiers(BAD_RATE, [(0, None, 1.5)])
        ctiers += tiers(NOT_AT_ZERO, [(100, None, 0.9)])
        lbrackets += brackets(BAD_BRACKET, [(0, None, -0.1, 0.1)])
        # broken tables of an asset nobody holds, owes or trades: never an issue
        ctiers += tiers(UNTOUCHED, [(5, 1, 7.0)])
        lbrackets += brackets(UNTOUCHED, [(0, 10, 2.0, 3.0)])
    return {
        "prices": frame("prices", prices),
        "collateral_tiers": frame("collateral_tiers", ctiers),
        "liability_brackets": frame("liability_brackets", lbrackets),
    }


def _columns(name: str, data: dict[str, Any]) -> pl.DataFrame:
    schema = INPUT_SCHEMAS[name]
    return pl.DataFrame(data, schema=schema) if data else pl.DataFrame(schema=schema)


def clean_tables(n: int, seed: int = 0, first_id: int = 1_000) -> dict[str, pl.DataFrame]:
    """A valid input of n accounts of the small universe (ids first_id, first_id+2, ...), scored at
    NEW: no data issue expected."""
    rng = np.random.default_rng(seed)
    ids = first_id + 2 * np.arange(n, dtype=np.int64)
    pro = rng.random(n) < 0.4
    t_q = pl.Series(
        np.where(
            rng.random(n) < 0.8,
            np.datetime64(COMPLIANT_AT.replace(tzinfo=None), "us"),
            np.datetime64("NaT", "us"),
        )
    ).dt.replace_time_zone("UTC")
    accounts = _columns(
        "accounts",
        {
            "account_id": ids,
            "margin_mode": np.where(pro, "pro", "classic"),
            "classic_leverage": np.where(rng.random(n) < 0.5, 3, 5).astype(np.int64),
            "cross_margin_activated": rng.random(n) < 0.9,
            "pro_quiz_passed": rng.random(n) < 0.8,
            "questionnaire_completed_at": t_q,
            "terms_agreed_at": t_q,
            "country": rng.choice(np.array(["FR", "DE", "SG", "US", "JP"]), n),
        },
    )
    # balances: every account holds USDT; each other asset with probability 0.3, owed with 0.3 of that
    parts = []
    for a in GOOD:
        take = np.ones(n, bool) if a == "USDT" else rng.random(n) < 0.3
        m = int(take.sum())
        scale = 1e5 / GOOD[a]
        owed = rng.random(m) < 0.3
        parts.append(
            pl.DataFrame(
                {
                    "account_id": ids[take],
                    "asset": [a] * m,
                    "free": np.round(rng.random(m) * scale, 6),
                    "locked": np.where(rng.random(m) < 0.2, np.round(rng.random(m) * scale / 10, 6), 0.0),
                    "borrowed": np.where(owed, np.round(rng.random(m) * scale / 2, 6), 0.0),
                    "interest": np.where(owed, np.round(rng.random(m) * scale / 1000, 6), 0.0),
                },
                schema=INPUT_SCHEMAS["balances"],
            )
        )
    balances = pl.concat(parts).sort("account_id", "asset")
    # open orders on BTC/USDT and ETH/BTC for ~20% of accounts
    has = rng.random(n) < 0.2
    m = int(has.sum())
    pair = rng.random(m) < 0.7
    orders = _columns(
        "open_orders",
        {
            "account_id": ids[has],
            "order_id": np.arange(m, dtype=np.int64) + 1,
            "base_asset": np.where(pair, "BTC", "ETH"),
            "quote_asset": np.where(pair, "USDT", "BTC"),
            "side": np.where(rng.random(m) < 0.5, "BUY", "SELL"),
            "price": np.where(pair, 90_000.0 + rng.integers(0, 20_000, m), 0.04),
            "remaining_qty": np.round(rng.random(m), 4) + 0.001,
        },
    )
    sw = rng.random(n) < 0.1
    k = int(sw.sum())
    switches = _columns(
        "mode_switches",
        {
            "account_id": ids[sw],
            "switched_at": np.datetime64(NEW.replace(tzinfo=None), "us")
            - rng.integers(0, 30 * 3600, k).astype("timedelta64[s]"),
        },
    )
    return {
        "accounts": accounts,
        "balances": balances,
        "open_orders": orders,
        "mode_switches": switches,
        **reference_tables(broken=False),
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
    found = result.account_risk.filter(pl.col("account_id") == account_id).to_dicts()
    issues = result.data_issues.filter(pl.col("account_id") == account_id).to_dicts()
    assert len(found) == 1, f"account {account_id}: {len(found)} account_risk rows; data_issues={issues}"
    return found[0]


def actions_of(result: Any, account_id: int) -> list[tuple[str, str | None, float | None]]:
    """The actions rows of one account as sorted (action, reason, amount_usdt) tuples."""
    found = result.actions.filter(pl.col("account_id") == account_id).to_dicts()
    return sorted(
        ((str(r["action"]), r["reason"], r["amount_usdt"]) for r in found), key=lambda x: (x[0], str(x[1]))
    )


# --------------------------------------------------------------------------------- hypothesis building blocks
MODES = st.sampled_from(["classic", "pro"])
LEVERAGES = st.sampled_from([3, 5])  # the shipped Classic leverages
SIDES = st.sampled_from(["BUY", "SELL"])
# thresholds a policy may set; the shipped ones first, so that a failing example shrinks to them
THRESHOLDS = [1.3, 1.1, 1.15, 1.5, 1.0, 1.05, 1.25, 2.0]


def amounts(scale: float) -> st.SearchStrategy[float]:
    """0, or a float in [0, scale] (no NaN, no subnormal)."""
    return st.one_of(st.just(0.0), st.floats(0.0, scale, allow_nan=False, allow_subnormal=False))


@contextmanager
def written_policy(text: str) -> Iterator[Path]:
    """A `--policy` file holding `text` (threshold_policies draws them), for the `with` block."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.toml"
        path.write_text(text)
        yield path


@st.composite
def threshold_policies(draw: st.DrawFn, *, with_irr_and_activation: bool = False) -> str:
    """A `--policy` file (threshold_policy) setting the margin-call and liquidation thresholds of
    Classic 3x, 5x and Pro, each drawn on its own: a margin call below, at or above its liquidation
    threshold; `with_irr_and_activation`: the IRRs and the activation values drawn too."""
    pair = st.tuples(st.sampled_from(THRESHOLDS), st.sampled_from(THRESHOLDS))
    activation = irr = None
    if with_irr_and_activation:
        activation = {
            "new_min_pro_margin_level": draw(st.sampled_from([2.0, 1.5, 3.0])),
            "new_min_net_equity_usdt": draw(st.sampled_from([5000.0, 100.0, 20_000.0])),
            "old_min_classic_collateral_margin_level": draw(st.sampled_from([1.25, 1.5, 1.1])),
        }
        irr = {3: draw(st.sampled_from([1.5, 2.0, 1.2])), 5: draw(st.sampled_from([1.25, 1.1, 1.5]))}
    return threshold_policy(
        classic={3: draw(pair), 5: draw(pair)}, pro=draw(pair), initial_risk_ratio=irr, activation=activation
    )
