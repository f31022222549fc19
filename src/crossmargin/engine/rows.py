"""The row pass: every input row read once, reduced to per-account sums and row issues.

The accounts are read first (the duplicate check needs their ids); then balances, open orders and
mode switches in one streaming `collect_all`. Per table, two outputs share one scan (polars keeps the
scanned rows in a cache node both read):
- the *values*: the narrow rows the kernels value (kernels/valuation.py: account, asset indices and
  the numbers), in account order;
- the *issues*: the rows that break a data-quality rule, with their details (validation/rows.py).
  Which rows break a rule is told cheaply (the rules on an asset's reference data are judged once per
  asset); only those rows get their assets' terms and the rule list, so a bad price costs the rows
  that need it, never a second read of the inputs.
The values are then reduced per account by the compiled valuation, at the prices in effect. The rows
stay in memory for the phases that move accounts along paths (engine/paths.py) and for the scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from crossmargin.kernels import runs as runs_
from crossmargin.kernels.runs import ACCOUNT, Runs
from crossmargin.kernels.valuation import Market, balance_sums_kernel, order_sums_kernel
from crossmargin.market import BASE, QUOTE, AssetTerms
from crossmargin.policy import Policy
from crossmargin.rules import quantities
from crossmargin.validation import groups, rows
from crossmargin.validation.rules import issue_rows

# a balance row as the kernels read it: holding = free + locked and debt = borrowed + interest are
# added once as the rows are read, so each row carries two numbers, not four
BALANCE_COLUMNS = ["account_id", "asset_idx", "holding", "debt"]
ORDER_COLUMNS = [
    "account_id",
    "order_id",
    f"asset_idx{BASE}",
    f"asset_idx{QUOTE}",
    "is_buy",
    "remaining_qty",
    "price",
]
CHUNK_ROWS = 1_000_000  # rows per chunk the streaming engine is asked for: few kernel calls, each threaded


@dataclass(frozen=True)
class Rows:
    """An input table's rows as the kernels read them, in account order, with their runs of accounts."""

    frame: pl.DataFrame
    runs: Runs

    @classmethod
    def of(cls, frame: pl.DataFrame) -> Rows:
        frame = runs_.in_account_order(frame)
        return cls(frame, Runs.of(frame[ACCOUNT]))


@dataclass(frozen=True)
class RowPass:
    """What the row pass leaves: per-account frames sorted by account_id, the row issues, the rows."""

    accounts: pl.LazyFrame
    balance_sums: pl.LazyFrame
    order_sums: pl.LazyFrame
    switch_counts: pl.LazyFrame
    issues: list[pl.LazyFrame]
    balances: Rows
    orders: Rows


def _balance_stage(balances: pl.LazyFrame, terms: AssetTerms) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(values, issues) of the balance rows."""
    indexed = terms.indexed(balances, "asset")
    values = indexed.select(
        pl.col(ACCOUNT),
        pl.col("asset_idx").fill_null(terms.frame.height),  # an asset nothing names: one past the last
        quantities.holding().alias("holding"),
        quantities.debt().alias("debt"),
    )
    broken = terms.terms_of(indexed.filter(rows.balance_breaks(terms)))
    return values, issue_rows(broken, rows.balance_rules())


def _order_stage(orders: pl.LazyFrame, terms: AssetTerms) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(values, issues) of the open orders."""
    indexed = terms.indexed(terms.indexed(orders, "base_asset", BASE), "quote_asset", QUOTE)
    n = terms.frame.height
    values = indexed.select(
        pl.col(ACCOUNT),
        pl.col("order_id").fill_null(0),
        pl.col(f"asset_idx{BASE}", f"asset_idx{QUOTE}").fill_null(n),
        quantities.is_buy().fill_null(False).alias("is_buy"),
        pl.col("remaining_qty", "price"),
    )
    broken = terms.terms_of(terms.terms_of(indexed.filter(rows.order_breaks(terms)), BASE), QUOTE)
    return values, issue_rows(broken, rows.order_rules())


def _switch_stage(switches: pl.LazyFrame, policy: Policy) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(row issues, per-account count of switches in [start of as_of's UTC day, as_of])."""
    day_start = policy.as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    today = pl.col("switched_at").is_between(day_start, policy.as_of, closed="both")
    counts = (
        switches.filter(pl.col(ACCOUNT).is_not_null())
        .group_by(ACCOUNT)
        .agg(today.sum().cast(pl.Int64).alias("switches_today"), pl.len().alias("switch_rows"))
    )
    return issue_rows(switches, rows.switch_rules()), counts


def sums_at(
    table: Rows, kernel, columns: list[str], params: tuple, n_sums: int, n_prices: int
) -> tuple[np.ndarray, np.ndarray]:
    """(out, bits) of a sums kernel over every run: out[k, run, p] the k-th sum at price vector p."""
    n_runs = table.runs.starts.size
    out = np.zeros((n_sums, n_runs, n_prices))
    bits = np.zeros(n_runs, dtype=np.uint64)
    if n_runs:
        table.runs.apply(kernel, table.frame, columns, params, (out, bits))
    return out, bits


def balance_sums_at(balances: Rows, market: Market, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """value_balances of every account of `balances` at each price vector of `prices` (sums_at)."""
    params = (prices, market.moving, market.usdt, market.coll, market.liab)
    n = len(quantities.BALANCE_SUMS)
    return sums_at(balances, balance_sums_kernel, BALANCE_COLUMNS[1:], params, n, prices.shape[0])


def order_sums_at(orders: Rows, market: Market, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """value_orders of every account of `orders` at each price vector of `prices` (sums_at)."""
    params = (prices, market.moving, market.ratio, np.zeros(0, dtype=np.bool_))
    return sums_at(
        orders, order_sums_kernel, ORDER_COLUMNS[1:], params, len(quantities.ORDER_SUMS), prices.shape[0]
    )


def per_account(
    table: Rows, out: np.ndarray, bits: np.ndarray, names: list[str], count_name: str
) -> pl.DataFrame:
    """The per-account frame of one table: account_id, its sums at the prices in effect, `count_name`
    rows, and `maybe_repeat` (fewer key bits than rows: a candidate repeated key)."""
    counts = table.runs.ends - table.runs.starts
    return pl.DataFrame(
        {
            ACCOUNT: table.runs.ids,
            **{name: out[k, :, 0] for k, name in enumerate(names)},
            count_name: counts,
            "maybe_repeat": np.bitwise_count(bits) < counts,
        },
        schema={
            ACCOUNT: pl.Int64,
            **dict.fromkeys(names, pl.Float64),
            count_name: pl.Int64,
            "maybe_repeat": pl.Boolean,
        },
    )


def row_pass(tables: dict[str, pl.LazyFrame], terms: AssetTerms, market: Market, policy: Policy) -> RowPass:
    """Every input row read once, reduced to per-account sums; the row issues; the rows kept."""
    accounts = tables["accounts"].collect(engine="streaming")
    bal_values, bal_issues = _balance_stage(tables["balances"], terms)
    ord_values, ord_issues = _order_stage(tables["open_orders"], terms)
    sw_issues, sw_counts = _switch_stage(tables["mode_switches"], policy)
    acct_issues = issue_rows(accounts.lazy(), rows.account_rules(policy, runs_.repeated(accounts)))
    with pl.Config(streaming_chunk_size=CHUNK_ROWS):
        bal_values, bal_issues, ord_values, ord_issues, sw_issues, sw_counts, acct_issues = pl.collect_all(
            [bal_values, bal_issues, ord_values, ord_issues, sw_issues, sw_counts, acct_issues],
            engine="streaming",
        )
    balances, orders = Rows.of(bal_values), Rows.of(ord_values)
    del bal_values, ord_values
    bal_sums = per_account(
        balances, *balance_sums_at(balances, market, market.prices), quantities.BALANCE_SUMS, "balance_rows"
    )
    ord_sums = per_account(
        orders, *order_sums_at(orders, market, market.prices), quantities.ORDER_SUMS, "order_rows"
    )
    repeats = [
        groups.repeated_keys(tables["balances"], bal_sums, "asset", "balances"),
        groups.repeated_keys(tables["open_orders"], ord_sums, "order_id", "open_orders"),
    ]
    # sorted by account_id and flagged so: the joins of the account pass are merge joins and
    # account_risk comes out in account order without another sort
    accounts, sw_counts, bal_sums, ord_sums = (
        runs_.sorted_by_account(f) for f in (accounts, sw_counts, bal_sums, ord_sums)
    )
    unknown = [
        groups.unknown_accounts(bal_sums, accounts, "balances", "balance_rows"),
        groups.unknown_accounts(ord_sums, accounts, "open_orders", "order_rows"),
        groups.unknown_accounts(sw_counts, accounts, "mode_switches", "switch_rows"),
    ]
    issues = [f.lazy() for f in (acct_issues, bal_issues, ord_issues, sw_issues)] + repeats + unknown
    return RowPass(accounts, bal_sums, ord_sums, sw_counts, issues, balances, orders)
