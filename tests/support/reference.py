"""Independent scalar reference of docs/rules.md §1–§7, written from the text of the rules only.

Plain Python, one account at a time, deliberately naive: it exists to be obviously correct, not
fast, and it is what the property tests compare the vectorized polars engine against. It imports
nothing from the engine except the resolved `Policy` (thresholds and dates as data).

Input: the seven tables of docs/rules.md §6 as lists of dicts (column names of schemas.INPUT_SCHEMAS,
timestamps as tz-aware `datetime`, missing values as `None`), plus a `Policy` from
`crossmargin.policy.resolve(as_of)`. Output: a `ReferenceResult` with one dict per valid account
(keys = the names of schemas.ACCOUNT_RISK), the data issues, and the long-form actions.

Conventions of this reference where the rules leave room (every one is a literal reading of the text):
- an asset is *held* when `free + locked > 0`, *owed* when `borrowed + interest > 0`; a balance row
  needs a price unless all four of its numbers are 0; a held asset needs collateral tiers, an owed
  asset liability brackets; both assets of every open order need a price and collateral tiers;
- the tier/bracket version used for an asset is the set of its rows with the latest
  `effective_from <= as_of`; it is checked only when an account needs it. It is bad when it is not
  a contiguous cover of [0, +inf) — first lower 0, each lower equal to the previous upper, every
  finite upper above its lower, only the last upper null — or when a rate is outside [0, 1];
- sums run in row order (balance rows and orders in input order; tier slices ascending);
- tiered(x) is evaluated only when x comes from a held (owed) asset; otherwise the term is 0;
- `PARTIAL_REPAYMENT` is an action only when partial_repayment_usdt > 0;
- closed sets (`bad_value`): margin_mode (else `unknown_mode`), classic_leverage in the policy's
  leverages, side BUY/SELL, the booleans not null, country an ISO 3166 alpha-2 code (two upper-case
  letters; null is not one), switched_at not null; a null quantity is a `non_finite_value`;
- a price the account needs is checked like a quantity: non-finite -> `non_finite_value`, negative ->
  `negative_quantity` (the latest price <= as_of only: superseded and future rows are never used).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pycountry

INF = math.inf
ISO_3166_ALPHA_2 = {c.alpha_2 for c in pycountry.countries}  # officially assigned codes

ACCOUNT_COLUMNS_FLOAT = [
    "total_asset_usdt",
    "total_liability_usdt",
    "collateral_usdt",
    "net_equity_usdt",
    "net_collateral_usdt",
    "maintenance_margin_usdt",
    "initial_margin_usdt",
    "open_order_loss_usdt",
    "classic_margin_level",
    "classic_collateral_margin_level",
    "pro_margin_level_old",
    "pro_margin_level_new",
    "pro_margin_level",
    "margin_level",
    "pro_available_margin_usdt",
    "partial_repayment_usdt",
    "bad_debt_usdt",
]

NEW_CONDITIONS = [
    "cross_margin_activated",
    "pro_quiz_passed",
    "terms_agreed",
    "pro_margin_level_after_switch",
    "net_equity",
    "country_not_restricted",
    "switches_left_today",
]
# docs/rules.md §9: the least deposit (USDT) or the fewest orders to cancel that lifts a block
REMEDIATION_COLUMNS = [
    "margin_call_topup_usdt",
    "pro_topup_usdt",
    "classic_switch_topup_usdt",
    "pro_orders_to_cancel",
]

OLD_CONDITIONS = [
    "cross_margin_activated",
    "pro_quiz_passed",
    "country_not_restricted",
    "classic_collateral_margin_level",
    "switches_left_today",
]


@dataclass
class ReferenceResult:
    account_risk: dict[int, dict[str, Any]] = field(default_factory=dict)
    # (account_id, table, code, detail)
    issues: list[tuple[int, str, str, str]] = field(default_factory=list)
    # (account_id, action, reason, amount_usdt)
    actions: list[tuple[int, str, str | None, float | None]] = field(default_factory=list)

    @property
    def issue_accounts(self) -> set[int]:
        return {i[0] for i in self.issues}


# ------------------------------------------------------------------------------------ helpers
def level(numerator: float, denominator: float) -> float:
    """docs/rules.md §1: a level whose denominator is 0 is +inf, whatever its numerator."""
    if denominator == 0:
        return INF
    return numerator / denominator


def clip(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def tiered(x: float, slices: list[dict[str, Any]], rate_key: str) -> float:
    """Σ_k rate_k · clip(x − lower_k, 0, upper_k − lower_k), ascending slices, upper None = +inf."""
    total = 0.0
    for s in sorted(slices, key=lambda s: s["lower_usdt"]):
        lower = s["lower_usdt"]
        width = INF if s["upper_usdt"] is None else s["upper_usdt"] - lower
        total += s[rate_key] * clip(x - lower, 0.0, width)
    return total


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(v)


def table_problem(slices: list[dict[str, Any]], rate_keys: list[str]) -> str | None:
    """Why one asset's tier table (one effective_from version) is bad, or None if it is good."""
    for s in slices:
        if not _finite(s["lower_usdt"]):
            return "non-finite lower_usdt"
        if s["upper_usdt"] is not None and not _finite(s["upper_usdt"]):
            return "non-finite upper_usdt"
        for k in rate_keys:
            if not _finite(s[k]):
                return f"non-finite {k}"
            if s[k] < 0 or s[k] > 1:
                return f"{k} {s[k]} outside [0, 1]"
    ordered = sorted(slices, key=lambda s: s["lower_usdt"])
    if ordered[0]["lower_usdt"] != 0:
        return "does not start at 0"
    for s in ordered:
        if s["upper_usdt"] is not None and not s["upper_usdt"] > s["lower_usdt"]:
            return "upper not above lower"
    for prev, cur in itertools.pairwise(ordered):
        if prev["upper_usdt"] is None:
            return "unbounded slice is not the last"
        if prev["upper_usdt"] != cur["lower_usdt"]:
            return "gap" if prev["upper_usdt"] < cur["lower_usdt"] else "overlap"
    if ordered[-1]["upper_usdt"] is not None:
        return "last slice is bounded"
    return None


def in_effect(rows: list[dict[str, Any]], as_of: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """Per asset, the rows with the latest effective_from <= as_of."""
    latest: dict[str, dt.datetime] = {}
    for r in rows:
        if r["effective_from"] <= as_of and (
            r["asset"] not in latest or r["effective_from"] > latest[r["asset"]]
        ):
            latest[r["asset"]] = r["effective_from"]
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["asset"] in latest and r["effective_from"] == latest[r["asset"]]:
            out[r["asset"]].append(r)
    return dict(out)


def prices_at(
    rows: list[dict[str, Any]], as_of: dt.datetime, max_age: dt.timedelta
) -> tuple[dict[str, float], dict[str, str]]:
    """({asset: price in effect}, {asset: why there is none}) from the rows priced at or before as_of.

    Per asset, the rows at the latest priced_at <= as_of: two or more distinct values (None counts as
    one value; equal floats, 0.0 and -0.0, two NaNs are one value) -> "ambiguous_price"; one None ->
    "missing_price"; older than max_age -> "stale_price". An asset with no such row is in neither dict.
    """
    latest: dict[str, dt.datetime] = {}
    for r in rows:
        at = r["priced_at"]
        if r["asset"] is not None and at is not None and at <= as_of:
            latest[r["asset"]] = max(latest.get(r["asset"], at), at)
    values: dict[str, list[float | None]] = defaultdict(list)
    for r in rows:
        if r["asset"] in latest and r["priced_at"] == latest[r["asset"]]:
            values[r["asset"]].append(r["price_usdt"])
    price: dict[str, float] = {}
    problem: dict[str, str] = {}
    for asset, vs in values.items():
        distinct: list[float | None] = []
        for v in vs:
            same = any(
                (v is None and d is None)
                or (v is not None and d is not None and (v == d or (math.isnan(v) and math.isnan(d))))
                for d in distinct
            )
            if not same:
                distinct.append(v)
        if len(distinct) > 1:
            problem[asset] = "ambiguous_price"
        elif distinct[0] is None:
            problem[asset] = "missing_price"
        elif as_of - latest[asset] > max_age:
            problem[asset] = "stale_price"
        else:
            price[asset] = distinct[0] + 0.0
    return price, problem


def first_slice_ratio(slices: list[dict[str, Any]]) -> float:
    return next(s["collateral_ratio"] for s in slices if s["lower_usdt"] == 0)


def order_loss(o: dict[str, Any], price: dict[str, float], ctiers: dict[str, list[dict[str, Any]]]) -> float:
    """max(0, given − received) of one open order (docs/rules.md §1.3)."""
    qty, px = o["remaining_qty"], o["price"]
    p_base, p_quote = price[o["base_asset"]], price[o["quote_asset"]]
    r_base = first_slice_ratio(ctiers[o["base_asset"]])
    r_quote = first_slice_ratio(ctiers[o["quote_asset"]])
    if o["side"] == "BUY":
        given = qty * px * p_quote * r_quote
        received = qty * p_base * r_base
    else:
        given = qty * p_base * r_base
        received = qty * px * p_quote * r_quote
    return max(0.0, given - received)


# ------------------------------------------------------------------------------------ the reference
def compute(
    tables: dict[str, list[dict[str, Any]]], policy: Any, hypothetical: bool = False
) -> ReferenceResult:
    """Every account of the tables. `hypothetical`: the tables are a state that is not the book (moved
    prices, a deposit, cancelled orders): a sum or level that overflows there stays in the account's row
    (as under a scenario, docs/rules.md §8.3), and the four columns of §9 are left null (they score
    the account again after a deposit or a cancellation, with this very function)."""
    as_of: dt.datetime = policy.as_of
    res = ReferenceResult()
    issue = res.issues.append

    accounts = tables["accounts"]
    balances = tables["balances"]
    orders = tables["open_orders"]
    switches = tables["mode_switches"]
    price, price_problem = prices_at(tables["prices"], as_of, policy.max_price_age)
    ctiers = in_effect(tables["collateral_tiers"], as_of)
    lbrackets = in_effect(tables["liability_brackets"], as_of)
    ctier_problem = {a: table_problem(s, ["collateral_ratio"]) for a, s in ctiers.items()}
    lbracket_problem = {
        a: table_problem(s, ["maintenance_margin_rate", "initial_margin_rate"]) for a, s in lbrackets.items()
    }

    def first(aid: Any, checks: list[tuple[bool, str, str, str]]) -> None:
        """One issue per bad row: the first (broken, table, code, detail) that holds."""
        for broken, table, code, detail in checks:
            if broken:
                issue((aid, table, code, detail))
                return

    def price_checks(asset: str) -> list[tuple[bool, str, str, str]]:
        """The price in effect of a needed asset: exists, unambiguous, not null, fresh, finite, >= 0."""
        p = price.get(asset)
        return [
            (asset in price_problem, "prices", price_problem.get(asset, ""), f"price of {asset}"),
            (asset not in price, "prices", "missing_price", f"no price for {asset}"),
            (p is not None and not _finite(p), "prices", "non_finite_value", f"price of {asset} {p!r}"),
            (
                p is not None and _finite(p) and p < 0,
                "prices",
                "negative_quantity",
                f"price of {asset} {p!r}",
            ),
        ]

    def collateral_checks(asset: str) -> list[tuple[bool, str, str, str]]:
        return [
            (asset not in ctiers, "collateral_tiers", "missing_collateral_tiers", f"asset {asset}"),
            (bool(ctier_problem.get(asset)), "collateral_tiers", "bad_tier_table", f"{asset}"),
        ]

    def liability_checks(asset: str) -> list[tuple[bool, str, str, str]]:
        return [
            (asset not in lbrackets, "liability_brackets", "missing_liability_brackets", f"asset {asset}"),
            (bool(lbracket_problem.get(asset)), "liability_brackets", "bad_tier_table", f"{asset}"),
        ]

    # ---- accounts table: one issue per row, the first rule it breaks
    id_count = Counter(a["account_id"] for a in accounts)
    known = {a["account_id"] for a in accounts if a["account_id"] is not None}
    acct: dict[int, dict[str, Any]] = {}
    for a in accounts:
        aid = a["account_id"]
        first(
            aid,
            [
                (aid is None, "accounts", "bad_value", "account_id is null"),
                (
                    id_count[aid] > 1,
                    "accounts",
                    "duplicate_row",
                    f"account {aid} appears {id_count[aid]} times",
                ),
                (
                    a["margin_mode"] not in ("classic", "pro"),
                    "accounts",
                    "unknown_mode",
                    f"{a['margin_mode']!r}",
                ),
                (a["classic_leverage"] not in policy.classic, "accounts", "bad_value", "classic_leverage"),
                (
                    a["cross_margin_activated"] is None or a["pro_quiz_passed"] is None,
                    "accounts",
                    "bad_value",
                    "bool",
                ),
                (a["country"] not in ISO_3166_ALPHA_2, "accounts", "bad_value", f"country {a['country']!r}"),
            ],
        )
        if aid is not None and id_count[aid] == 1:
            acct[aid] = a

    def unknown(table: str, ids: list[Any]) -> None:
        for aid in sorted(set(i for i in ids if i is not None and i not in known)):
            issue((aid, table, "unknown_account", f"account {aid} not in accounts"))

    # ---- balances
    quantities = ["free", "locked", "borrowed", "interest"]
    bal_count = Counter((b["account_id"], b["asset"]) for b in balances)
    bal_by: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for b in balances:
        aid, asset = b["account_id"], b["asset"]
        if aid is not None:
            bal_by[aid].append(b)
            if bal_count[(aid, asset)] > 1:
                issue((aid, "balances", "duplicate_row", f"asset {asset} twice"))
        nums = [b[q] for q in quantities]
        present = all(v is not None for v in nums)
        finite = present and all(_finite(v) for v in nums)
        holds = finite and b["free"] + b["locked"] > 0
        owes = finite and b["borrowed"] + b["interest"] > 0
        first(
            aid,
            [
                (aid is None, "balances", "bad_value", "account_id is null"),
                (asset is None, "balances", "bad_value", "asset is null"),
                (not present, "balances", "bad_value", "null quantity"),
                (not finite, "balances", "non_finite_value", f"asset {asset}"),
                (finite and any(v < 0 for v in nums), "balances", "negative_quantity", f"asset {asset}"),
                *(price_checks(asset) if holds or owes else []),
                *(collateral_checks(asset) if holds else []),
                *(liability_checks(asset) if owes else []),
            ],
        )
    unknown("balances", [b["account_id"] for b in balances])

    # ---- open orders
    fields = ["order_id", "base_asset", "quote_asset", "side", "price", "remaining_qty"]
    ord_count = Counter((o["account_id"], o["order_id"]) for o in orders)
    ord_by: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for o in orders:
        aid = o["account_id"]
        if aid is not None:
            ord_by[aid].append(o)
            if ord_count[(aid, o["order_id"])] > 1:
                issue((aid, "open_orders", "duplicate_row", f"order {o['order_id']} twice"))
        present = all(o[f] is not None for f in fields)
        finite = present and _finite(o["price"]) and _finite(o["remaining_qty"])
        first(
            aid,
            [
                (aid is None, "open_orders", "bad_value", "account_id is null"),
                (not present, "open_orders", "bad_value", "null field"),
                (o["side"] not in ("BUY", "SELL"), "open_orders", "bad_value", f"side {o['side']!r}"),
                (not finite, "open_orders", "non_finite_value", f"order {o['order_id']}"),
                (o["price"] < 0 or o["remaining_qty"] < 0, "open_orders", "negative_quantity", "order")
                if finite
                else (False, "", "", ""),
                *price_checks(o["base_asset"]),
                *collateral_checks(o["base_asset"]),
                *price_checks(o["quote_asset"]),
                *collateral_checks(o["quote_asset"]),
            ],
        )
    unknown("open_orders", [o["account_id"] for o in orders])

    # ---- mode switches
    sw_by: dict[int, list[dt.datetime]] = defaultdict(list)
    for s in switches:
        aid = s["account_id"]
        first(
            aid,
            [
                (aid is None, "mode_switches", "bad_value", "account_id is null"),
                (s["switched_at"] is None, "mode_switches", "bad_value", "switched_at is null"),
            ],
        )
        if aid is not None and s["switched_at"] is not None:
            sw_by[aid].append(s["switched_at"])
    unknown("mode_switches", [s["account_id"] for s in switches])

    bad = res.issue_accounts
    day_start = as_of.replace(hour=0, minute=0, second=0, microsecond=0)

    for aid in sorted(acct):
        if aid in bad:
            continue
        a = acct[aid]
        mode = a["margin_mode"]
        lev = a["classic_leverage"]
        ct = policy.classic[lev]

        # ---- §1 quantities
        total_asset = 0.0
        total_liab = 0.0
        collateral = 0.0
        mm = 0.0
        im = 0.0
        for b in bal_by.get(aid, []):
            holding = b["free"] + b["locked"]
            debt = b["borrowed"] + b["interest"]
            if not (holding > 0 or debt > 0):
                continue  # an all-zero row needs nothing (docs/rules.md §6) and adds 0, whatever its price
            p = price[b["asset"]]
            hv = holding * p
            dv = debt * p
            total_asset += hv
            total_liab += dv
            if holding > 0:
                collateral += tiered(hv, ctiers[b["asset"]], "collateral_ratio")
            if debt > 0:
                mm += tiered(dv, lbrackets[b["asset"]], "maintenance_margin_rate")
                im += tiered(dv, lbrackets[b["asset"]], "initial_margin_rate")
        ool = 0.0
        for o in ord_by.get(aid, []):
            ool += order_loss(o, price, ctiers)
        net_equity = total_asset - total_liab
        net_collateral = collateral - total_liab

        # ---- levels
        classic_ml = level(total_asset, total_liab)
        classic_cml = level(collateral, total_liab)
        pro_old = level(net_equity, mm)
        pro_new = level(net_collateral - ool, mm)
        new_policy = as_of >= policy.pro_new_formula_from
        pro_ml = pro_new if new_policy else pro_old
        margin_level = classic_ml if mode == "classic" else pro_ml
        avail = max(net_collateral - ool - im, 0.0) if new_policy else max(net_collateral - im, 0.0)

        # ---- §3 decisions
        q, t = a["questionnaire_completed_at"], a["terms_agreed_at"]
        compliant = (
            q is not None
            and t is not None
            and q >= policy.compliance_required_from
            and q <= as_of
            and t >= policy.compliance_required_from
            and t <= as_of
        )
        if mode == "classic":
            liquidation = margin_level <= ct.liquidation
            margin_call = margin_level <= ct.margin_call or liquidation
        else:
            liquidation = margin_level <= policy.pro_liquidation
            margin_call = margin_level <= policy.pro_margin_call or liquidation

        reason = None
        if mode == "classic":
            if classic_cml <= ct.initial_risk_ratio:
                reason = "collateral_below_initial_risk_ratio"
        elif (not compliant) and as_of >= policy.noncompliant_borrow_disabled_from:
            reason = "pro_not_compliant"
        elif avail <= 0:
            reason = "no_available_margin"

        due = mode == "pro" and not compliant and as_of >= policy.compliance_required_from
        migrate_now = due and as_of >= policy.noncompliant_switched_to_classic_from

        repay = 0.0
        if due and classic_ml < ct.margin_call:
            T = ct.initial_risk_ratio
            x = (T * total_liab - total_asset) / (T - 1)
            repay = clip(x, 0.0, min(total_asset, total_liab))

        bad_debt = max(total_liab - total_asset, 0.0)

        n_sw = sum(1 for s in sw_by.get(aid, []) if day_start <= s <= as_of)
        switches_left = max(policy.max_switches_per_utc_day - n_sw, 0)

        if mode == "classic":
            restricted = a["country"] in policy.restricted_jurisdictions
            if new_policy:
                ok = {
                    "cross_margin_activated": a["cross_margin_activated"],
                    "pro_quiz_passed": a["pro_quiz_passed"],
                    "terms_agreed": t is not None and t <= as_of,
                    "pro_margin_level_after_switch": pro_new > policy.new_min_pro_margin_level,
                    "net_equity": net_equity > policy.new_min_net_equity_usdt,
                    "country_not_restricted": not restricted,
                    "switches_left_today": switches_left > 0,
                }
                names = NEW_CONDITIONS
            else:
                ok = {
                    "cross_margin_activated": a["cross_margin_activated"],
                    "pro_quiz_passed": a["pro_quiz_passed"],
                    "country_not_restricted": not restricted,
                    "classic_collateral_margin_level": classic_cml
                    > policy.old_min_classic_collateral_margin_level,
                    "switches_left_today": switches_left > 0,
                }
                names = OLD_CONDITIONS
            failed = [n for n in names if not ok[n]]
            eligible = not failed
            can_switch = False
        else:
            failed = ["already_pro"]
            eligible = False
            if new_policy:
                can_switch = classic_cml > ct.initial_risk_ratio and switches_left > 0
            else:
                can_switch = classic_ml > ct.initial_risk_ratio and switches_left > 0

        # ---- results that are not finite numbers (every input was good: the arithmetic overflowed)
        sums = [total_asset, total_liab, collateral, net_equity, net_collateral, mm, im, ool]
        levels = [(classic_ml, total_liab), (classic_cml, total_liab), (pro_old, mm), (pro_new, mm)]
        if not hypothetical and (
            not all(math.isfinite(v) for v in [*sums, avail, repay, bad_debt])
            or any(not math.isfinite(lv) and den != 0 for lv, den in levels)
        ):
            issue((aid, "balances", "non_finite_value", "a sum or level is not a finite number"))
            continue

        res.account_risk[aid] = {
            "account_id": aid,
            "margin_mode": mode,
            "classic_leverage": lev,
            "country": a["country"],
            "total_asset_usdt": total_asset,
            "total_liability_usdt": total_liab,
            "collateral_usdt": collateral,
            "net_equity_usdt": net_equity,
            "net_collateral_usdt": net_collateral,
            "maintenance_margin_usdt": mm,
            "initial_margin_usdt": im,
            "open_order_loss_usdt": ool,
            "classic_margin_level": classic_ml,
            "classic_collateral_margin_level": classic_cml,
            "pro_margin_level_old": pro_old,
            "pro_margin_level_new": pro_new,
            "pro_margin_level": pro_ml,
            "margin_level": margin_level,
            "pro_available_margin_usdt": avail,
            "pro_compliant": compliant,
            "margin_call": margin_call,
            "liquidation": liquidation,
            "borrow_blocked": reason is not None,
            "borrow_blocked_reason": reason,
            "due_for_migration": due,
            "migrate_now": migrate_now,
            "partial_repayment_usdt": repay,
            "bad_debt_usdt": bad_debt,
            "switches_left_today": switches_left,
            "eligible_for_pro": eligible,
            "pro_ineligible_reasons": failed,
            "can_switch_to_classic": can_switch,
            "as_of": as_of,
            "policy_version": policy.version,
        }
        row = res.account_risk[aid]
        row.update(dict.fromkeys(REMEDIATION_COLUMNS) if hypothetical else what_it_takes(tables, policy, row))

        # ---- §5 actions (long form)
        mode_reason = f"classic_{lev}x" if mode == "classic" else "pro"
        if liquidation:
            res.actions.append((aid, "LIQUIDATION", mode_reason, None))
        elif margin_call:
            res.actions.append((aid, "MARGIN_CALL", mode_reason, row["margin_call_topup_usdt"]))
        if reason is not None:
            res.actions.append((aid, "BORROW_BLOCKED", reason, None))
        if due:
            res.actions.append((aid, "MIGRATE_TO_CLASSIC", "due" if migrate_now else "pending", None))
        if repay > 0:
            res.actions.append((aid, "PARTIAL_REPAYMENT", None, repay))
        if eligible:
            res.actions.append((aid, "ELIGIBLE_FOR_PRO", None, None))
    return res


# ------------------------------------------------------------------------------------ what it would take
# docs/rules.md §9, literally: deposit d USDT (or cancel k orders), score the account again with
# `compute`, and search for the least d (k) after which the condition holds.
DOUBLINGS = 1000  # a deposit of 2**1000 USDT (~1e301) is beyond any book: no deposit is enough
BISECTION_REL = 1e-12


def own_tables(tables: dict[str, list[dict[str, Any]]], aid: int) -> dict[str, list[dict[str, Any]]]:
    """The rows of account aid alone, beside every row of the reference tables (prices, tiers,
    brackets): an account's results depend on nothing else."""
    own = {"accounts", "balances", "open_orders", "mode_switches"}
    return {name: [r for r in rows if r["account_id"] == aid] if name in own else rows
            for name, rows in tables.items()}  # fmt: skip


def rescored(tables: dict[str, list[dict[str, Any]]], policy: Any, aid: int) -> dict[str, Any] | None:
    """The account's row once scored again (None: it is a data issue now)."""
    return compute(tables, policy, hypothetical=True).account_risk.get(aid)


def with_deposit(tables: dict[str, list[dict[str, Any]]], policy: Any, aid: int, d: float):
    """The tables after a deposit of d USDT: d / P_USDT added to the account's USDT `free` (a USDT row
    of zeros first, if it has none). None when USDT has no price in effect, or a price of 0 (then no
    amount of USDT is worth d)."""
    price, _ = prices_at(tables["prices"], policy.as_of, policy.max_price_age)
    p = price.get("USDT")
    if p is None or p == 0:
        return None
    balances = [dict(b) for b in tables["balances"]]
    mine = [b for b in balances if b["account_id"] == aid and b["asset"] == "USDT"]
    if not mine:
        mine = [
            {"account_id": aid, "asset": "USDT", "free": 0.0, "locked": 0.0, "borrowed": 0.0, "interest": 0.0}
        ]
        balances.append(mine[0])
    mine[0]["free"] = mine[0]["free"] + d / p
    return {**tables, "balances": balances}


def least_deposit(holds: Any, scale: float) -> float | None:
    """inf { d >= 0 : holds(d) } for a condition that only turns true as d grows: 0 when it holds at 0;
    else bracketed by doubling, then bisected to a relative 1e-12 (or 1e-12 of `scale`, the account's
    size, near 0); None when no deposit up to ~1e301 is enough."""
    if holds(0.0):
        return 0.0
    hi = 1.0
    for _ in range(DOUBLINGS):
        if holds(hi):
            break
        hi *= 2.0
    else:
        return None
    lo = 0.0
    while hi - lo > BISECTION_REL * max(hi, scale):
        mid = (lo + hi) / 2.0
        if holds(mid):
            hi = mid
        else:
            lo = mid
    return hi


def cancelling_order(tables, policy: Any, aid: int) -> list[dict[str, Any]]:
    """The account's open orders in the order they are cancelled: the largest loss first, ties by the
    smaller order_id."""
    price, _ = prices_at(tables["prices"], policy.as_of, policy.max_price_age)
    ctiers = in_effect(tables["collateral_tiers"], policy.as_of)
    mine = [o for o in tables["open_orders"] if o["account_id"] == aid]
    return sorted(mine, key=lambda o: (-order_loss(o, price, ctiers), o["order_id"]))


def fewest_orders(tables, policy: Any, aid: int, holds: Any) -> int | None:
    """The least k such that the condition holds once the account's k first orders (cancelling_order)
    are cancelled; None when cancelling all of them is not enough."""
    ranked = cancelling_order(tables, policy, aid)
    for k in range(len(ranked) + 1):
        gone = {id(o) for o in ranked[:k]}
        kept = [o for o in tables["open_orders"] if id(o) not in gone]
        after = rescored({**tables, "open_orders": kept}, policy, aid)
        if after is not None and holds(after):
            return k
    return None


def what_it_takes(
    tables: dict[str, list[dict[str, Any]]], policy: Any, row: dict[str, Any]
) -> dict[str, Any]:
    """The four columns of §9 for one scored account (`row`)."""
    aid, classic = row["account_id"], row["margin_mode"] == "classic"
    new_policy = policy.as_of >= policy.pro_new_formula_from
    irr = policy.classic[row["classic_leverage"]].initial_risk_ratio
    own = own_tables(tables, aid)
    scale = max(1.0, row["total_asset_usdt"], row["total_liability_usdt"])

    def topup(condition: Any) -> float | None:
        def holds(d: float) -> bool:
            if d == 0:  # no deposit: the account as it is
                return condition(row)
            after = with_deposit(own, policy, aid, d)
            scored = None if after is None else rescored(after, policy, aid)
            return scored is not None and condition(scored)

        return least_deposit(holds, scale)

    def not_failing(*names: str) -> Any:
        return lambda r: not set(names) & set(r["pro_ineligible_reasons"])

    pro_level = "pro_margin_level_after_switch"
    pro_needs = (
        not_failing(pro_level, "net_equity") if new_policy else not_failing("classic_collateral_margin_level")
    )
    switch_level = "classic_collateral_margin_level" if new_policy else "classic_margin_level"
    return {
        "margin_call_topup_usdt": topup(lambda r: not r["margin_call"]),
        "pro_topup_usdt": topup(pro_needs) if classic else None,
        "classic_switch_topup_usdt": None if classic else topup(lambda r: r[switch_level] > irr),
        "pro_orders_to_cancel": fewest_orders(own, policy, aid, not_failing(pro_level))
        if classic and new_policy
        else None,
    }


# ------------------------------------------------------------------------------------ moved prices
def moved(
    tables: dict[str, list[dict[str, Any]]],
    multipliers: dict[str, float],
    default: float = 1.0,
    stable: tuple[str, ...] = (),
    stable_multiplier: float = 1.0,
) -> dict[str, list[dict[str, Any]]]:
    """The same tables with every price row multiplied: by `multipliers[asset]` when named, else by
    `stable_multiplier` for an asset in `stable`, else by `default` (docs/rules.md §8: a uniform move r
    is default = 1 + r with the policy's stable assets kept at 1)."""

    def factor(asset: str) -> float:
        if asset in multipliers:
            return multipliers[asset]
        return stable_multiplier if asset in stable else default

    prices = [
        {**p, "price_usdt": None if p["price_usdt"] is None else p["price_usdt"] * factor(p["asset"])}
        for p in tables["prices"]
    ]
    return {**tables, "prices": prices}


def level_at_move(tables: dict[str, list[dict[str, Any]]], policy: Any, r: float) -> dict[int, float]:
    """Per valid account: its margin_level when every non-stable price is multiplied by 1 + r."""
    result = compute(moved(tables, {}, 1.0 + r, tuple(policy.stable_assets)), policy, hypothetical=True)
    return {aid: row["margin_level"] for aid, row in result.account_risk.items()}
