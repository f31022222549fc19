"""Policy: every threshold, date and list of docs/rules.md §3, as date-effective data.

The shipped `policy.toml` is the default; `--policy FILE` merges a user's file over it. The policy
in force at `as_of` is resolved once per run into a frozen `Policy`; the engine never holds a
threshold literal of its own.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from crossmargin.errors import CrossmarginError


class PolicyError(CrossmarginError):
    """The policy file is unreadable or misses a key the engine needs."""


@dataclass(frozen=True)
class ClassicTier:
    """Thresholds of one Classic leverage (3x or 5x)."""

    initial_risk_ratio: float
    margin_call: float
    liquidation: float


@dataclass(frozen=True)
class Policy:
    """The policy in force at one `as_of` (docs/rules.md §3)."""

    version: str
    as_of: dt.datetime
    pro_new_formula_from: dt.datetime
    compliance_required_from: dt.datetime
    noncompliant_borrow_disabled_from: dt.datetime
    noncompliant_switched_to_classic_from: dt.datetime
    classic: dict[int, ClassicTier]
    transfer_out_min_collateral_margin_level: float
    pro_liquidation: float
    pro_margin_call: float
    pro_max_leverage_old: int
    pro_max_leverage_new: int
    new_min_pro_margin_level: float
    new_min_net_equity_usdt: float
    old_min_classic_collateral_margin_level: float
    restricted_jurisdictions: tuple[str, ...]
    max_switches_per_utc_day: int
    max_price_age: dt.timedelta
    stable_assets: tuple[str, ...]
    # per input table: the least share of the baseline's rows it may have (tables not listed: exempt)
    min_row_ratio: dict[str, float]
    source_sha256: str = ""

    # --- the date switches of docs/rules.md §4, evaluated once at as_of -------------------------------
    @property
    def new_formula(self) -> bool:
        """New Pro formula in force: as_of >= 2025-01-21T10:00Z (by default)."""
        return self.as_of >= self.pro_new_formula_from

    @property
    def compliance_required(self) -> bool:
        return self.as_of >= self.compliance_required_from

    @property
    def noncompliant_borrow_disabled(self) -> bool:
        return self.as_of >= self.noncompliant_borrow_disabled_from

    @property
    def noncompliant_switched(self) -> bool:
        return self.as_of >= self.noncompliant_switched_to_classic_from

    @property
    def leverages(self) -> list[int]:
        return sorted(self.classic)

    def as_record(self) -> dict[str, Any]:
        """The resolved values, JSON-ready (for manifest.json)."""
        record = asdict(self)
        record["classic"] = {str(lev): asdict(t) for lev, t in self.classic.items()}
        record["max_price_age_hours"] = self.max_price_age.total_seconds() / 3600
        del record["max_price_age"]
        return {
            k: v.isoformat().replace("+00:00", "Z") if isinstance(v, dt.datetime) else v
            for k, v in record.items()
        }

    def classic_column(self, field: str) -> dict[int, float]:
        """{leverage: value} of one Classic threshold, for a per-row lookup expression."""
        return {lev: float(getattr(tier, field)) for lev, tier in self.classic.items()}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _utc(value: Any, where: str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise PolicyError(f"policy: {where} must be a UTC timestamp with offset, got {value!r}")
    return value.astimezone(dt.UTC)


def _hours(value: Any, where: str) -> dt.timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise PolicyError(f"policy: {where} must be a positive number of hours, got {value!r}")
    return dt.timedelta(hours=value)


def _ratios(value: Any, where: str) -> dict[str, float]:
    from crossmargin.io.schemas import INPUT_SCHEMAS  # light: the table names

    if not isinstance(value, dict):
        raise PolicyError(f"policy: {where} must be a table of input table = share, got {value!r}")
    for table, ratio in value.items():
        if table not in INPUT_SCHEMAS:
            raise PolicyError(f"policy: {where}.{table}: no input table is called {table!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise PolicyError(f"policy: {where}.{table} must be a share in [0, 1], got {ratio!r}")
    return {table: float(ratio) for table, ratio in sorted(value.items())}


def _versions(text: str, origin: str) -> list[dict[str, Any]]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy {origin}: not valid TOML: {exc}") from exc
    versions = doc.get("version")
    if not isinstance(versions, list) or not versions:
        raise PolicyError(f"policy {origin}: expected at least one [[version]] table")
    for v in versions:
        if "name" not in v or "effective_from" not in v:
            raise PolicyError(f"policy {origin}: every [[version]] needs name and effective_from")
        v["effective_from"] = _utc(v["effective_from"], f"{v['name']}.effective_from")
    return versions


def shipped_policy_text() -> str:
    return resources.files("crossmargin").joinpath("policy.toml").read_text(encoding="utf-8")


def resolve(as_of: dt.datetime, policy_file: Path | None = None) -> Policy:
    """The policy in force at `as_of`: shipped versions, then the user's, merged by effective_from."""
    as_of = _utc(as_of, "as_of")
    shipped = shipped_policy_text()
    texts = [(shipped, "shipped policy.toml")]
    if policy_file is not None:
        try:
            texts.append((Path(policy_file).read_text(encoding="utf-8"), str(policy_file)))
        except OSError as exc:
            raise PolicyError(f"policy file {policy_file}: {exc.strerror}") from exc
    versions: list[dict[str, Any]] = []
    for order, (text, origin) in enumerate(texts):
        versions += [(v["effective_from"], order, i, v) for i, v in enumerate(_versions(text, origin))]
    versions.sort(key=lambda t: t[:3])
    in_force = [v for eff, _, _, v in versions if eff <= as_of]
    if not in_force:
        raise PolicyError(f"policy: no version is in force at {as_of.isoformat()}")
    merged: dict[str, Any] = {}
    for v in in_force:
        merged = _deep_merge(merged, v)
    digest = hashlib.sha256("\n".join(t for t, _ in texts).encode()).hexdigest()
    return _build(merged, as_of, digest)


def _build(d: dict[str, Any], as_of: dt.datetime, digest: str) -> Policy:
    try:
        dates, classic, pro = d["dates"], d["classic"], d["pro"]
        act, sw, market, feed = d["activation"], d["switching"], d["market"], d["feed"]
        tiers = {
            int(lev): ClassicTier(
                initial_risk_ratio=float(t["initial_risk_ratio"]),
                margin_call=float(t["margin_call"]),
                liquidation=float(t["liquidation"]),
            )
            for lev, t in classic["leverage"].items()
        }
        return Policy(
            version=str(d["name"]),
            as_of=as_of,
            pro_new_formula_from=_utc(dates["pro_new_formula_from"], "dates.pro_new_formula_from"),
            compliance_required_from=_utc(
                dates["compliance_required_from"], "dates.compliance_required_from"
            ),
            noncompliant_borrow_disabled_from=_utc(
                dates["noncompliant_borrow_disabled_from"], "dates.noncompliant_borrow_disabled_from"
            ),
            noncompliant_switched_to_classic_from=_utc(
                dates["noncompliant_switched_to_classic_from"], "dates.noncompliant_switched_to_classic_from"
            ),
            classic=tiers,
            transfer_out_min_collateral_margin_level=float(
                classic["transfer_out_min_collateral_margin_level"]
            ),
            pro_liquidation=float(pro["liquidation"]),
            pro_margin_call=float(pro["margin_call"]),
            pro_max_leverage_old=int(pro["max_leverage_old"]),
            pro_max_leverage_new=int(pro["max_leverage_new"]),
            new_min_pro_margin_level=float(act["new_min_pro_margin_level"]),
            new_min_net_equity_usdt=float(act["new_min_net_equity_usdt"]),
            old_min_classic_collateral_margin_level=float(act["old_min_classic_collateral_margin_level"]),
            restricted_jurisdictions=tuple(str(c) for c in act["restricted_jurisdictions"]),
            max_switches_per_utc_day=int(sw["max_switches_per_utc_day"]),
            max_price_age=_hours(market["max_price_age_hours"], "market.max_price_age_hours"),
            stable_assets=tuple(str(a) for a in market["stable_assets"]),
            min_row_ratio=_ratios(feed["min_row_ratio"], "feed.min_row_ratio"),
            source_sha256=digest,
        )
    except KeyError as exc:
        raise PolicyError(f"policy: missing key {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"policy: bad value: {exc}") from exc
