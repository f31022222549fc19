"""Glue between the scalar reference (support/reference.py) and the engine: run both on the same
lists of rows (support/inputs.py builds them; `frames` makes the engine's inputs of them), and compare
every output field.

Tolerances: floats equal within rel 1e-12 / abs 1e-9; +inf must equal +inf exactly; ints, bools,
strings and lists exactly. A top-up (the reference's is a bisection, the engine's a closed form) within
rel 1e-9 of the larger of the two and of the account's size (1, total asset, total liability: a top-up
of 0 against the reference's 1e-12 of the account near a threshold), and so is a MARGIN_CALL amount.
A boolean decided at a knife edge may be skipped ONLY when the engine's and the reference's level
are not bit-identical and the level lies within 1e-9 (relative) of the threshold it is compared
with; such skips are counted in the `Stats` the caller passes to `compare`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from crossmargin.io.schemas import ACCOUNT_RISK, ACTIONS_SCHEMA, DATA_ISSUES
from crossmargin.policy import Policy, resolve
from crossmargin.rules.distances import DISTANCE_COLUMNS
from support import reference as ref
from support.inputs import frames

REL, ABS = 1e-12, 1e-9
EDGE = 1e-9
TOPUP_REL = 1e-9
TOPUPS = [c for c in ref.REMEDIATION_COLUMNS if c.endswith("_usdt")]


@dataclass
class Stats:
    """What `compare` saw: accounts compared field by field, and those whose booleans were skipped at a
    knife edge (with the skipped outputs)."""

    accounts_compared: int = 0
    knife_edge_skips: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def run_both(
    tables: dict[str, list[dict[str, Any]]], as_of: dt.datetime, policy: Policy | None = None
) -> tuple[Any, ref.ReferenceResult, Policy]:
    """Engine and reference on the same tables, under resolve(as_of) or the given policy."""
    from crossmargin.engine import score as compute

    policy = resolve(as_of) if policy is None else policy
    engine = compute(frames(tables), policy)
    return engine, ref.compute(tables, policy), policy


def floats_equal(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return False
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


def topups_equal(a: float | None, b: float | None, row: dict[str, Any]) -> bool:
    """Two top-ups of one account agree (module docstring); null only with null."""
    if a is None or b is None:
        return a is b
    scale = max(abs(a), abs(b), 1.0, row["total_asset_usdt"], row["total_liability_usdt"])
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= TOPUP_REL * scale


def _near(x: float, threshold: float) -> bool:
    if math.isinf(x):
        return False
    return abs(x - threshold) <= EDGE * max(abs(threshold), 1.0)


def knife_edges(e: dict[str, Any], r: dict[str, Any], policy: Policy) -> list[str]:
    """Outputs whose boolean may legitimately differ: a level not bit-identical and within 1e-9 of a threshold."""
    lev = r["classic_leverage"]
    ct = policy.classic.get(lev)
    if ct is None:
        return []
    checks: list[tuple[str, float, list[str]]] = [
        ("margin_level", ct.margin_call, ["margin_call"]),
        ("margin_level", ct.liquidation, ["liquidation", "margin_call"]),
        ("margin_level", policy.pro_margin_call, ["margin_call"]),
        ("margin_level", policy.pro_liquidation, ["liquidation", "margin_call"]),
        (
            "classic_collateral_margin_level",
            ct.initial_risk_ratio,
            ["borrow_blocked", "can_switch_to_classic"],
        ),
        ("pro_available_margin_usdt", 0.0, ["borrow_blocked"]),
        ("classic_margin_level", ct.margin_call, ["partial_repayment_usdt"]),
        ("classic_margin_level", ct.initial_risk_ratio, ["can_switch_to_classic"]),
        ("pro_margin_level_new", policy.new_min_pro_margin_level, ["eligible_for_pro"]),
        ("net_equity_usdt", policy.new_min_net_equity_usdt, ["eligible_for_pro"]),
        (
            "classic_collateral_margin_level",
            policy.old_min_classic_collateral_margin_level,
            ["eligible_for_pro"],
        ),
    ]
    out: list[str] = []
    for col, thr, outputs in checks:
        ev, rv = e[col], r[col]
        if ev is None or rv is None or ev == rv:
            continue
        if _near(rv, thr) or _near(ev, thr):
            out += outputs
    if "borrow_blocked" in out:
        out.append("borrow_blocked_reason")
    if "eligible_for_pro" in out:
        out.append("pro_ineligible_reasons")
    return out


def compare(
    engine: Any,
    reference: ref.ReferenceResult,
    policy: Policy,
    input_ids: set[int],
    stats: Stats | None = None,
) -> list[str]:
    """Every disagreement between engine and reference, as readable strings (empty list = agree);
    counted into `stats` if given."""
    stats = Stats() if stats is None else stats
    errs: list[str] = []
    ar, acts, di = engine.account_risk, engine.actions, engine.data_issues

    # ---- shapes and dtypes of the three outputs
    for name, df, schema in (
        ("account_risk", ar, ACCOUNT_RISK),
        ("actions", acts, ACTIONS_SCHEMA),
        ("data_issues", di, DATA_ISSUES),
    ):
        if dict(df.schema) != schema:
            errs.append(f"{name} schema {dict(df.schema)} != {schema}")
    if ar["account_id"].to_list() != sorted(ar["account_id"].to_list()):
        errs.append("account_risk not sorted by account_id")
    if ar["account_id"].n_unique() != ar.height:
        errs.append("account_risk has duplicate account_id")

    # ---- partition of accounts
    valid_e = set(ar["account_id"].to_list())
    issue_e = set(di["account_id"].to_list())
    valid_r = set(reference.account_risk)
    issue_r = reference.issue_accounts
    if valid_e != valid_r:
        errs.append(
            f"valid accounts differ: engine-only {sorted(valid_e - valid_r)} "
            f"reference-only {sorted(valid_r - valid_e)}; "
            f"reference issues {[i for i in reference.issues if i[0] in valid_e ^ valid_r]}; "
            f"engine issues {di.filter(pl.col('account_id').is_in(sorted(valid_e ^ valid_r))).to_dicts()}"
        )
    if issue_e != issue_r:
        errs.append(
            f"data-issue accounts differ: engine {sorted(issue_e, key=str)} reference {sorted(issue_r, key=str)}"
        )
    # ---- each account's issue codes (and tables), not only which accounts have issues
    codes_e: dict[Any, set[tuple[str, str]]] = {}
    for aid, table, code in di.select("account_id", "table", pl.col("code").cast(pl.String)).iter_rows():
        codes_e.setdefault(aid, set()).add((table, code))
    codes_r: dict[Any, set[tuple[str, str]]] = {}
    for aid, table, code, _ in reference.issues:
        codes_r.setdefault(aid, set()).add((table, code))
    for aid in sorted(set(codes_e) | set(codes_r), key=str):
        if codes_e.get(aid, set()) != codes_r.get(aid, set()):
            errs.append(
                f"account {aid}: issue codes differ: engine {sorted(codes_e.get(aid, set()))} "
                f"reference {sorted(codes_r.get(aid, set()))}"
            )
    if valid_e & issue_e:
        errs.append(f"accounts both valid and with issues: {sorted(valid_e & issue_e)}")
    missing = input_ids - valid_e - issue_e
    if missing:
        errs.append(f"input accounts in neither output: {sorted(missing)}")

    # ---- per account
    rows = {row["account_id"]: row for row in ar.to_dicts()}
    skipped_accounts: dict[int, list[str]] = {}
    for aid in sorted(valid_e & valid_r):
        e, r = rows[aid], reference.account_risk[aid]
        stats.accounts_compared += 1
        skip = set(knife_edges(e, r, policy))
        if skip:
            skipped_accounts[aid] = sorted(skip)
        for col in ACCOUNT_RISK:
            if col in DISTANCE_COLUMNS:
                continue  # checked against moved-price valuations of this reference in tests/property/test_distances.py
            ev = e[col]
            rv = r[col]
            if col in skip:
                continue
            if col in TOPUPS:
                if not topups_equal(ev, rv, r):
                    errs.append(f"account {aid} {col}: engine {ev!r} reference {rv!r}")
                continue
            if col == "pro_compliant" and r["margin_mode"] != "pro":
                continue  # engine extra, defined only for Pro accounts
            if isinstance(rv, float):
                ok = isinstance(ev, float) and floats_equal(ev, rv)
            elif isinstance(rv, bool):
                ok = ev is rv
            elif isinstance(rv, list):
                ok = list(ev) == rv if ev is not None else False
            else:
                ok = ev == rv
            if not ok:
                errs.append(f"account {aid} {col}: engine {ev!r} reference {rv!r}")

    # ---- actions (long form)
    def norm(
        rows: list[tuple[int, str, str | None, float | None]],
    ) -> list[tuple[int, str, str | None, float | None]]:
        return sorted(rows, key=lambda t: (t[0], t[1]))

    eng_acts = norm(
        [(a["account_id"], str(a["action"]), a["reason"], a["amount_usdt"]) for a in acts.to_dicts()]
    )
    ref_acts = norm([a for a in reference.actions])
    e_keys = {(a, act) for a, act, _, _ in eng_acts if a not in skipped_accounts}
    r_keys = {(a, act) for a, act, _, _ in ref_acts if a not in skipped_accounts}
    if e_keys != r_keys:
        errs.append(
            f"action rows differ: engine-only {sorted(e_keys - r_keys)} reference-only {sorted(r_keys - e_keys)}"
        )
    if len(eng_acts) != len({(a, act) for a, act, _, _ in eng_acts}):
        errs.append("duplicate (account_id, action) rows in actions")
    eng_by = {(a, act): (rs, amt) for a, act, rs, amt in eng_acts}
    for a, act, rs, amt in ref_acts:
        if (a, act) in eng_by and a not in skipped_accounts:
            ers, eamt = eng_by[(a, act)]
            same = topups_equal if act == "MARGIN_CALL" else (lambda x, y, _: floats_equal(x, y))
            if ers != rs or not same(eamt, amt, reference.account_risk[a]):
                errs.append(f"action {a} {act}: engine ({ers!r}, {eamt!r}) reference ({rs!r}, {amt!r})")

    if skipped_accounts:
        stats.knife_edge_skips += len(skipped_accounts)
        stats.skipped += [(a, ",".join(c)) for a, c in skipped_accounts.items()]
    return errs


def consistency(engine: Any, input_ids: set[int], max_switches: int = 5) -> list[str]:
    """Properties of the engine's outputs alone (no reference): actions follow account_risk flags etc."""
    errs: list[str] = []
    ar, acts, di = engine.account_risk, engine.actions, engine.data_issues
    valid = set(ar["account_id"].to_list())
    issues = set(di["account_id"].to_list())
    for aid in input_ids:
        if (aid in valid) == (aid in issues):
            errs.append(f"account {aid}: in account_risk={aid in valid}, in data_issues={aid in issues}")
    extra = valid - input_ids
    if extra:
        errs.append(f"account_risk rows for accounts not in the input: {sorted(extra)}")
    by_acc: dict[int, dict[str, tuple[str | None, float | None]]] = {}
    for a in acts.to_dicts():
        by_acc.setdefault(a["account_id"], {})[str(a["action"])] = (a["reason"], a["amount_usdt"])
    stray = set(by_acc) - valid
    if stray:
        errs.append(f"actions for accounts not in account_risk: {sorted(stray)}")
    for row in ar.to_dicts():
        aid = row["account_id"]
        got = by_acc.get(aid, {})
        mode_reason = "pro" if row["margin_mode"] == "pro" else f"classic_{row['classic_leverage']}x"
        want: dict[str, tuple[str | None, float | None]] = {}
        if row["liquidation"]:
            want["LIQUIDATION"] = (mode_reason, None)
        elif row["margin_call"]:
            want["MARGIN_CALL"] = (mode_reason, row["margin_call_topup_usdt"])
        if row["borrow_blocked"]:
            want["BORROW_BLOCKED"] = (row["borrow_blocked_reason"], None)
        if row["due_for_migration"]:
            want["MIGRATE_TO_CLASSIC"] = ("due" if row["migrate_now"] else "pending", None)
        if row["partial_repayment_usdt"] > 0:
            want["PARTIAL_REPAYMENT"] = (None, row["partial_repayment_usdt"])
        if row["eligible_for_pro"]:
            want["ELIGIBLE_FOR_PRO"] = (None, None)
        if got != want:
            errs.append(f"account {aid}: actions {got} inconsistent with flags (expected {want})")
        # invariants of account_risk itself
        if row["liquidation"] and not row["margin_call"]:
            errs.append(f"account {aid}: liquidation without margin_call")
        if row["migrate_now"] and not row["due_for_migration"]:
            errs.append(f"account {aid}: migrate_now without due_for_migration")
        if (row["borrow_blocked_reason"] is None) == row["borrow_blocked"]:
            errs.append(
                f"account {aid}: borrow_blocked {row['borrow_blocked']} vs reason {row['borrow_blocked_reason']}"
            )
        if row["margin_mode"] == "pro" and (
            row["eligible_for_pro"] or row["pro_ineligible_reasons"] != ["already_pro"]
        ):
            errs.append(
                f"account {aid}: Pro account eligible_for_pro/reasons wrong: {row['pro_ineligible_reasons']}"
            )
        if row["margin_mode"] == "classic":
            if row["can_switch_to_classic"] or row["due_for_migration"]:
                errs.append(f"account {aid}: Classic account can_switch_to_classic/due_for_migration set")
            if row["eligible_for_pro"] != (row["pro_ineligible_reasons"] == []):
                errs.append(f"account {aid}: eligible_for_pro vs reasons {row['pro_ineligible_reasons']}")
        if not 0 <= row["switches_left_today"] <= max_switches:
            errs.append(f"account {aid}: switches_left_today {row['switches_left_today']}")
        assets, liabilities = row["total_asset_usdt"], row["total_liability_usdt"]
        if not 0 <= row["partial_repayment_usdt"] <= min(assets, liabilities):
            errs.append(
                f"account {aid}: partial_repayment_usdt {row['partial_repayment_usdt']} outside [0, min(A, L)]"
            )
        for col in ref.ACCOUNT_COLUMNS_FLOAT:
            v = row[col]
            if v is None or math.isnan(v) or v == -math.inf:
                errs.append(f"account {aid}: {col} is {v!r}")
    return errs
