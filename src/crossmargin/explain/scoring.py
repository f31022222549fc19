"""The engine run an explanation reads: the engine's own phases on the rows of the accounts asked about.

Only those accounts' rows are read (a filter on account_id that polars pushes into the parquet scan:
inputs sorted by account_id skip every row group whose statistics exclude the ids) plus the
reference tables in full. An account's results never depend on the other accounts of a run (its sums
add its own rows in input order; its levels, decisions, distances and top-ups read its own sums), so
they are the bits the full run wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from crossmargin.engine import phases
from crossmargin.engine.rows import RowPass
from crossmargin.explain.source import Source
from crossmargin.job import ACCOUNT_TABLES
from crossmargin.kernels.runs import ACCOUNT, in_account_order
from crossmargin.kernels.valuation import Market
from crossmargin.market import AssetTerms
from crossmargin.policy import Policy


@dataclass(frozen=True)
class Scored:
    """One engine run over the rows of some accounts, with those rows as read."""

    policy: Policy
    terms: AssetTerms
    market: Market
    passed: RowPass
    computed: pl.DataFrame  # every account with an id, before the accounts with issues leave
    issues: pl.DataFrame  # with the `asset` an issue is about
    account_risk: pl.DataFrame
    actions: pl.DataFrame
    rows: dict[str, pl.DataFrame]  # the accounts' rows of each account table, in account order


def account_filter(ids: list[int]) -> pl.Expr:
    """Rows of these accounts: an equality for one (parquet statistics skip the other row groups)."""
    column = pl.col(ACCOUNT)
    return column == ids[0] if len(ids) == 1 else column.is_in(ids)


def read_rows(tables: dict[str, pl.LazyFrame], ids: list[int]) -> dict[str, pl.DataFrame]:
    """The rows of the accounts `ids` in each account table, read once, in account order."""
    wanted = account_filter(ids)
    frames = pl.collect_all([tables[name].filter(wanted) for name in ACCOUNT_TABLES])
    return {name: in_account_order(frame) for name, frame in zip(ACCOUNT_TABLES, frames, strict=True)}


def score_accounts(source: Source, ids: list[int]) -> Scored:
    """The engine's phases (`engine.phases`, as `engine.score` runs them) over the accounts `ids` only."""
    rows = read_rows(source.tables, ids)
    tables = {name: rows[name].lazy() if name in rows else frame for name, frame in source.tables.items()}
    done = phases(tables, source.policy)
    return Scored(source.policy, done.terms, done.market, done.passed, done.computed, done.issues,
                  done.account_risk, done.actions, rows)  # fmt: skip
