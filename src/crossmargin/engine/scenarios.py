"""scenario_risk (docs/rules.md §8.3): every valid account valued under each named scenario's prices.

The balance rows and orders the row pass kept × scenarios, in chunks of whole accounts of bounded size
(a chunk is a row group of the file, or an equal part of one): the one valuation (kernels/valuation.py)
values each account at every scenario's moved prices in one pass (one price vector per scenario), then
the levels and decisions of rules/levels.py and rules/decisions.py run over the (account, scenario)
rows. A scenario whose multipliers are all 1 reproduces account_risk to the bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import polars as pl

from crossmargin.engine import rows as rows_
from crossmargin.engine.rows import RowPass, Rows
from crossmargin.io.schemas import ACCOUNT_RISK, LEVEL_COLUMNS, QUANTITY_COLUMNS, MarginMode
from crossmargin.kernels.valuation import Market
from crossmargin.market import AssetTerms
from crossmargin.policy import Policy
from crossmargin.rules import decisions, levels, quantities
from crossmargin.scenario_set import ScenarioSet

# scenario_risk: the per-account rows of the scenario computation, per chunk of at most about this
# many (row, scenario) pairs (memory: ~ 150 bytes each at peak). A chunk is one row group of the file
# (`group` accounts, chosen by the writer), or an equal part of one when a row group's accounts hold
# more pairs.
ROWS_PER_CHUNK = 6_000_000
IDX = pl.get_index_type()  # gathers by polars' own index type: no conversion of the indices


def moved_prices(terms: AssetTerms, market: Market, scenarios: ScenarioSet) -> np.ndarray:
    """(scenarios, assets): the price in effect × each scenario's multiplier of each asset."""
    assets = terms.frame["asset"].to_list()
    multipliers = np.array(
        [
            [s.multiplier(a, not moves) for a, moves in zip(assets, market.moving, strict=True)]
            for s in scenarios.scenarios
        ]
    )
    return np.ascontiguousarray(market.prices[0] * multipliers)


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


def _placed(table: Rows, out: np.ndarray, ids: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Per sum name: its values at every scenario, flat in (account of `ids`, scenario) order, 0 for an
    account without rows (`out[k, run, scenario]` of the table's runs)."""
    at = np.minimum(np.searchsorted(ids, table.runs.ids), ids.size - 1)
    found = ids[at] == table.runs.ids  # a run of an account left out (a data issue) is not placed
    placed = {}
    for k, name in enumerate(names):
        values = np.zeros((ids.size, out.shape[2]))
        values[at[found]] = out[k][found]
        placed[name] = values.reshape(-1)
    return placed


def _scenario_sums(
    balances: Rows, orders: Rows, market: Market, prices: np.ndarray, ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Every sum of the accounts `ids` (sorted) at each scenario's prices, flat in (account, scenario) order."""
    bal, _ = rows_.balance_sums_at(balances, market, prices)
    ords, _ = rows_.order_sums_at(orders, market, prices)
    return _placed(balances, bal, ids, quantities.BALANCE_SUMS) | _placed(
        orders, ords, ids, quantities.ORDER_SUMS
    )


def scenario_risk(
    passed: RowPass,
    terms: AssetTerms,
    market: Market,
    accounts: pl.DataFrame,
    policy: Policy,
    scenario_set: ScenarioSet,
    group: int,
) -> Iterator[pl.DataFrame]:
    """scenario_risk of `accounts` (scenario_accounts: valid, in account order), chunk after chunk of
    accounts, each chunk sorted by account_id then scenario in the set's order; at least one chunk.
    `group`: the accounts of a row group of the file (a chunk never spans two)."""
    n_s = len(scenario_set.scenarios)
    prices = moved_prices(terms, market, scenario_set)
    price_free = accounts.lazy()
    for stage in _stages(policy, price_free=True):
        price_free = price_free.with_columns(**stage)
    accounts = price_free.select([*ACCOUNT_INPUT, *sorted(PRICE_FREE)]).collect()
    schema = scenario_schema(scenario_set)
    names = pl.Series("scenario", scenario_set.names, dtype=schema["scenario"])
    ids = accounts["account_id"].to_numpy()
    if ids.size == 0:
        yield pl.DataFrame(schema=schema)
        return
    balances, orders = passed.balances.frame, passed.orders.frame
    bal_ids, ord_ids = balances["account_id"].to_numpy(), orders["account_id"].to_numpy()
    rows_per_account = (balances.height + orders.height) / accounts.height
    bounds = _chunks(len(ids), n_s, rows_per_account, group)
    # one text column for every chunk (a slice of it is a view): not built again per chunk
    longest = max(hi - lo for lo, hi in bounds)
    version = pl.repeat(policy.version, longest * n_s, eager=True).alias("policy_version")
    for lo, hi in bounds:  # chunks of accounts (bounded memory), never one per scenario
        chunk_ids = ids[lo:hi]
        first, last = chunk_ids[0], chunk_ids[-1]
        b0, b1 = np.searchsorted(bal_ids, first, "left"), np.searchsorted(bal_ids, last, "right")
        o0, o1 = np.searchsorted(ord_ids, first, "left"), np.searchsorted(ord_ids, last, "right")
        sums = _scenario_sums(Rows.of(balances[b0:b1]), Rows.of(orders[o0:o1]), market, prices, chunk_ids)
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


def _chunks(n_accounts: int, n_s: int, rows_per_account: float, group: int) -> list[tuple[int, int]]:
    """[lo, hi) of each chunk of accounts: a row group's accounts, or the fewest equal parts of them
    that keep a chunk within ROWS_PER_CHUNK (row, scenario) pairs; never across a row group's end."""
    parts = max(1, math.ceil(group * n_s * max(rows_per_account, 1.0) / ROWS_PER_CHUNK))
    step = math.ceil(group / parts)
    return [
        (lo, min(lo + step, first + group, n_accounts))
        for first in range(0, n_accounts, group)
        for lo in range(first, min(first + group, n_accounts), step)
    ]
