"""Stress scenarios (docs/rules.md §8).

Moved prices (`moved_prices`) and the scenarios themselves; the distances to thresholds under a
uniform move (four columns of account_risk) are distances.py.

* **Scenarios** (`scenario_risk`): named sets of price multipliers (`ScenarioSet`, TOML; the shipped
  set is `scenarios.toml`). The balance rows and orders the row pass kept × scenarios, in chunks of
  whole accounts of bounded size (a chunk is a row group of the file, or an equal part of one): the
  kernels of account_sums value each row at every scenario's moved prices (one price vector per
  scenario) and add each (account, scenario)'s values with the row pass's reduction, in the same
  order; then the levels and decisions of levels.py and decisions.py over the (account, scenario)
  rows. A scenario whose multipliers are all 1 reproduces account_risk to the bit.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crossmargin import account_sums, decisions, levels, outputs, quantities
from crossmargin.errors import UsageError
from crossmargin.policy import Policy
from crossmargin.reference_data import AssetTerms
from crossmargin.schemas import ACCOUNT_RISK, LEVEL_COLUMNS, QUANTITY_COLUMNS, MarginMode

SHIPPED = "default"  # `--scenarios default`: the scenario set shipped with the package
# scenario_risk: the per-account rows of the scenario computation, per chunk of at most about this
# many (row, scenario) pairs (memory: ~ 150 bytes each at peak). A chunk is one row group of the file
# (outputs.scenario_accounts_per_row_group), or an equal part of one when a row group's accounts
# hold more pairs. Smaller chunks reuse memory the allocator already holds: at 10M accounts, 4M
# pairs gave 17.7 s of system time against 22.2 s for 12M.
ROWS_PER_CHUNK = 6_000_000
IDX = pl.get_index_type()  # gathers by polars' own index type: no conversion of the indices


# ------------------------------------------------------------------ moved prices


def stable_mask(terms: AssetTerms, policy: Policy) -> pl.Series:
    """Per asset_idx: True for a stable asset (its price stays put in a uniform move)."""
    return terms.frame["asset"].is_in(list(policy.stable_assets)).alias("stable")


def moved_prices(terms: AssetTerms, policy: Policy, scenarios: ScenarioSet) -> pl.Series:
    """The price in effect × each scenario's multiplier, flat: entry `scenario·n_assets + asset_idx`."""
    assets = terms.frame["asset"].to_list()
    stable = stable_mask(terms, policy).to_list()
    multipliers = [
        s.multiplier(a, is_stable)
        for s in scenarios.scenarios
        for a, is_stable in zip(assets, stable, strict=True)
    ]
    prices = pl.concat([terms.frame["price_usdt"]] * len(scenarios.scenarios))
    return (prices * pl.Series(multipliers, dtype=pl.Float64)).alias("price_usdt")


# ------------------------------------------------------------------ named scenarios


@dataclass(frozen=True)
class Scenario:
    """A named set of price multipliers: `assets` by name, else `stable` for a stable asset and
    `default` for every other asset."""

    name: str
    default: float
    stable: float = 1.0
    assets: dict[str, float] | None = None

    def multiplier(self, asset: str, is_stable: bool) -> float:
        named = self.assets or {}
        return named.get(asset, self.stable if is_stable else self.default)


@dataclass(frozen=True)
class ScenarioSet:
    scenarios: tuple[Scenario, ...]
    source: str  # "default" (the shipped set) or the file's path

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def as_record(self) -> dict[str, Any]:
        """JSON-ready, for manifest.json."""
        return {
            "source": self.source,
            "scenarios": [
                {"name": s.name, "default": s.default, "stable": s.stable, "assets": dict(s.assets or {})}
                for s in self.scenarios
            ],
        }


def _multiplier(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)


def parse_scenarios(text: str, source: str) -> ScenarioSet:
    """A scenario set from TOML text: `[[scenario]]` tables with `name`, `default` and optionally
    `stable` (multiplier of the stable assets, 1 if absent) and `assets` (name -> multiplier)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--scenarios {source}: not valid TOML: {exc}") from None
    items = doc.get("scenario")
    if not isinstance(items, list) or not items:
        raise UsageError(f"--scenarios {source}: no [[scenario]] table")
    out, seen = [], set()
    for i, item in enumerate(items, 1):
        where = f"--scenarios {source}: scenario {i}"
        if not isinstance(item, dict):
            raise UsageError(f"{where} is not a table")
        unknown = set(item) - {"name", "default", "stable", "assets"}
        if unknown:
            raise UsageError(f"{where} has unknown key {sorted(unknown)[0]!r}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError(f"{where} needs a non-empty `name`")
        if name in seen:
            raise UsageError(f"--scenarios {source}: scenario name {name!r} appears twice")
        seen.add(name)
        if "default" not in item:
            raise UsageError(f"{where} ({name}) needs `default`, the multiplier of the non-stable assets")
        assets = item.get("assets", {})
        if not isinstance(assets, dict):
            raise UsageError(f"{where} ({name}): `assets` must be a table of asset = multiplier")
        out.append(
            Scenario(
                name,
                _multiplier(item["default"], f"{where} ({name}) default"),
                _multiplier(item.get("stable", 1.0), f"{where} ({name}) stable"),
                {str(a): _multiplier(m, f"{where} ({name}) assets.{a}") for a, m in assets.items()},
            )
        )
    return ScenarioSet(tuple(out), source)


def load_scenarios(spec: str | Path) -> ScenarioSet:
    """`default`: the set shipped with the package (scenarios.toml); else a TOML file's path."""
    if str(spec) == SHIPPED:
        text = resources.files("crossmargin").joinpath("scenarios.toml").read_text(encoding="utf-8")
        return parse_scenarios(text, SHIPPED)
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--scenarios {spec}: cannot read the file ({exc.__class__.__name__})") from None
    return parse_scenarios(text, str(path))


# ------------------------------------------------------------------ scenario_risk

# every quantity and level, and Pro available margin, under the moved prices
SCENARIO_QUANTITIES = [*QUANTITY_COLUMNS, *LEVEL_COLUMNS, "pro_available_margin_usdt"]
SCENARIO_DECISIONS = [
    "margin_call",
    "liquidation",
    "borrow_blocked",
    "borrow_blocked_reason",
    "due_for_migration",
    "migrate_now",
    "partial_repayment_usdt",
    "bad_debt_usdt",
    "switches_left_today",
    "eligible_for_pro",
    "can_switch_to_classic",
]


def scenario_schema(scenario_set: ScenarioSet) -> dict[str, pl.DataType]:
    """Columns of scenario_risk: as account_risk where the name is the same."""
    return {
        "account_id": pl.Int64(),
        "scenario": pl.Enum(scenario_set.names),
        "margin_mode": MarginMode,
        **{c: ACCOUNT_RISK[c] for c in [*SCENARIO_QUANTITIES, *SCENARIO_DECISIONS]},
        "policy_version": pl.String(),
    }


ACCOUNT_INPUT = [
    "account_id",
    "margin_mode",
    "classic_leverage",
    "cross_margin_activated",
    "pro_quiz_passed",
    "questionnaire_completed_at",
    "terms_agreed_at",
    "country",
    "switches_today",
]


# decisions that do not depend on prices: worked out once per account, then repeated per scenario
PRICE_FREE = {"pro_compliant", "switches_left_today", "due_for_migration", "migrate_now"}


def _stages(policy: Policy, price_free: bool) -> list[dict[str, pl.Expr]]:
    """The decision stages restricted to (or without) the price-free decisions, in order."""
    return [
        {k: e for k, e in stage.items() if (k in PRICE_FREE) == price_free}
        for stage in decisions.all_decisions(policy)
    ]


def scenario_accounts(computed: pl.DataFrame, valid: pl.Series) -> pl.DataFrame:
    """The columns of the valid accounts that scenario_risk reads (their inputs and switches_today).
    The two text columns as categories (margin_mode as the output's enum): each account's row is
    repeated once per scenario, and a category is a number to repeat and compare."""
    return (
        computed.lazy()
        .filter(pl.col("account_id").is_in(valid.implode()))
        .select(ACCOUNT_INPUT)
        .with_columns(
            pl.col("margin_mode").cast(MarginMode, strict=False), pl.col("country").cast(pl.Categorical)
        )
        .collect()
    )


def scenario_risk(
    rows: tuple[pl.DataFrame, pl.DataFrame],
    terms: AssetTerms,
    accounts: pl.DataFrame,
    policy: Policy,
    scenario_set: ScenarioSet,
) -> Iterator[pl.DataFrame]:
    """scenario_risk of `accounts` (scenario_accounts: valid, in account order), chunk after chunk of
    accounts, each chunk sorted by account_id then scenario in the set's order; at least one chunk.
    `rows`: every balance row and open order as the kernels read them (account_sums.BALANCE_COLUMNS,
    ORDER_COLUMNS), in account order — the row pass keeps them when scenarios are asked for (at 10M
    accounts 1.7 GB, against reading the input files a second time)."""
    n_s = len(scenario_set.scenarios)
    stable = stable_mask(terms, policy)
    prices = moved_prices(terms, policy, scenario_set).to_numpy().reshape(n_s, terms.frame.height)
    price_free = accounts.lazy()
    for stage in _stages(policy, price_free=True):
        price_free = price_free.with_columns(**stage)
    accounts = price_free.select([*ACCOUNT_INPUT, *sorted(PRICE_FREE)]).collect()
    # the scenario sums: every account total but the stable parts (only the distances read those)
    balance_names = list(quantities.BALANCE_SUMS.values())
    balance_sums = [n for n in balance_names if not n.startswith("stable_")]
    if balance_names[: len(balance_sums)] != balance_sums:  # pragma: no cover - the kernel's order
        raise AssertionError("the stable parts must come last in BALANCE_SUMS")
    balances, orders = rows
    schema = scenario_schema(scenario_set)
    names = pl.Series("scenario", scenario_set.names, dtype=schema["scenario"])
    ids = accounts["account_id"].to_numpy()
    if ids.size == 0:
        yield pl.DataFrame(schema=schema)
        return
    bal_ids, ord_ids = balances["account_id"].to_numpy(), orders["account_id"].to_numpy()
    bounds = _chunks(len(ids), n_s, (balances.height + orders.height) / accounts.height)
    # one text column for every chunk (a slice of it is a view): not built again per chunk
    longest = max(hi - lo for lo, hi in bounds)
    version = pl.repeat(policy.version, longest * n_s, eager=True).alias("policy_version")
    for lo, hi in bounds:  # chunks of accounts (bounded memory), never one per scenario
        chunk_ids = ids[lo:hi]
        first, last = chunk_ids[0], chunk_ids[-1]
        b0, b1 = np.searchsorted(bal_ids, first, "left"), np.searchsorted(bal_ids, last, "right")
        o0, o1 = np.searchsorted(ord_ids, first, "left"), np.searchsorted(ord_ids, last, "right")
        # sums[k, account, scenario]: out[k] is already in (account, scenario) order
        _, bal_out, _ = account_sums.balance_sums(
            balances[b0:b1], terms, stable, prices, n_sums=len(balance_sums), accounts=chunk_ids
        )
        _, ord_out, _ = account_sums.order_sums(orders[o0:o1], terms, prices, accounts=chunk_ids)
        sums = {name: bal_out[k].reshape(-1) for k, name in enumerate(balance_sums)}
        sums |= {name: ord_out[k].reshape(-1) for k, name in enumerate(quantities.ORDER_SUMS.values())}
        acc = accounts[lo:hi]
        # each account's row once per scenario, in the plan: only the columns the stages read are repeated
        repeat = pl.Series(np.repeat(np.arange(acc.height), n_s), dtype=IDX)
        frame = acc.lazy().select(pl.all().gather(pl.lit(repeat)))
        frame = frame.with_columns(
            pl.Series("scenario_idx", np.tile(np.arange(n_s), acc.height), dtype=IDX),
            *[pl.Series(name, values, dtype=pl.Float64) for name, values in sums.items()],
        )
        for stage in [*levels.all_levels(policy), *_stages(policy, price_free=False)]:
            frame = frame.with_columns(**stage)
        yield (
            frame.with_columns(
                pl.lit(names).gather(pl.col("scenario_idx")).alias("scenario"),
                pl.col("margin_mode").cast(MarginMode, strict=False),
            )
            .select([pl.col(c).cast(d) for c, d in schema.items() if c != "policy_version"])
            .collect()
            .with_columns(version.slice(0, acc.height * n_s))
        )


def _chunks(n_accounts: int, n_s: int, rows_per_account: float) -> list[tuple[int, int]]:
    """[lo, hi) of each chunk of accounts: a row group's accounts, or the fewest equal parts of them
    that keep a chunk within ROWS_PER_CHUNK (row, scenario) pairs; never across a row group's end."""
    group = outputs.scenario_accounts_per_row_group(n_s)
    parts = max(1, math.ceil(group * n_s * max(rows_per_account, 1.0) / ROWS_PER_CHUNK))
    step = math.ceil(group / parts)
    return [
        (lo, min(lo + step, first + group, n_accounts))
        for first in range(0, n_accounts, group)
        for lo in range(first, min(first + group, n_accounts), step)
    ]
