"""The engine: input tables, policy and as_of in, the output frames out. No files, no clock.

`score(tables, policy)` is a pure function of the seven input tables (typed: inputs.py) and the
Policy resolved at as_of. It runs five named phases:

1. `reference_phase` — market and reference data in effect at as_of, one row per asset (a few
   hundred rows, eager): prices, tiers and brackets with their problems (validation/).
2. `row_pass` — every input row read once (polars' streaming engine, which also flags each row
   that breaks a data-quality rule: validation/rows.py), then valued and summed per account by
   the compiled kernels of account_sums.py (the per-row quantities of quantities.py, each account's
   rows added in a fixed order), so the bits never depend on threads or chunking; while it holds
   the rows, the Pro accounts' rows are walked for their distances (distances.walk). With scenarios,
   the rows the kernels read are kept for scenario_risk.
3. `account_pass` — per account: the sums beside the account's columns, then levels (levels.py)
   and decisions (decisions.py), for every account with an id.
4. `distance_phase` — the four distances to liquidation and margin call (distances.py): Classic
   accounts in closed form from their sums, Pro accounts from the row pass's walk.
5. `issues_phase` — the row issues, the group checks (validation/groups.py) and the results that
   are not finite; every account with an issue leaves account_risk and actions.

The job (job.py) calls `score` once per account-id bucket; a bucket is just the account tables
filtered to an id range, with the same reference tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from crossmargin import account_sums, decisions, distances, levels, quantities, scenarios
from crossmargin.actions import actions as actions_frame
from crossmargin.policy import Policy
from crossmargin.reference_data import BASE, QUOTE, AssetTerms, asset_terms
from crossmargin.schemas import ACCOUNT_RISK, DATA_ISSUES, ISSUE_COLUMNS, PRICE_PROBLEMS, MarginMode
from crossmargin.validation import groups, rows
from crossmargin.validation.rules import Rule, empty_issues, issue_rows

Tables = dict[str, pl.DataFrame | pl.LazyFrame]
PRICE_CODES = ["missing_price", "ambiguous_price", "stale_price"]


@dataclass(frozen=True)
class Scores:
    """The engine's result for one as_of (one bucket of accounts)."""

    account_risk: pl.DataFrame
    actions: pl.DataFrame
    data_issues: pl.DataFrame
    # per asset with a price problem: how many accounts it took out of the outputs
    price_problems: pl.DataFrame
    # with scenarios: scenario_risk in account chunks, computed as the chunks are read (bounded memory)
    scenario_risk: Iterator[pl.DataFrame] | None = None


def _lazy(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


# ------------------------------------------------------------------ 1. reference data


def reference_phase(tables: dict[str, pl.LazyFrame], policy: Policy) -> AssetTerms:
    """Prices, collateral tiers and liability brackets in effect at as_of, checked, by asset."""
    return asset_terms(
        tables["prices"].collect(),
        tables["collateral_tiers"].collect(),
        tables["liability_brackets"].collect(),
        policy.as_of,
        policy.max_price_age,
    )


# ------------------------------------------------------------------ 2. the row pass
# Each table's stage gives (rows, values): `rows` is the input with its asset terms gathered by asset
# index (no join, input order kept, never materialised); `values` is the narrow per-row input of the
# compiled kernels of account_sums.py — account_id, the asset indices and the numbers each row is
# valued from — and `_breaks`, true if the row breaks a data-quality rule (then a second pass lists
# the issues with their details).


def _balance_stage(balances: pl.LazyFrame, terms: AssetTerms) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Balances with their asset's terms, and the columns the balance kernel values them from."""
    with_terms = terms.gather(balances, "asset")
    values = with_terms.select(
        *account_sums.balance_inputs(terms), rows.balance_breaks(terms).alias("_breaks")
    )
    return with_terms, values


def _order_stage(orders: pl.LazyFrame, terms: AssetTerms) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Orders with their base and quote assets' terms, and the columns the order kernel values them from."""
    with_terms = terms.gather(terms.gather(orders, "base_asset", BASE), "quote_asset", QUOTE)
    values = with_terms.select(*account_sums.order_inputs(terms), rows.order_breaks(terms).alias("_breaks"))
    return with_terms, values


def _switch_stage(switches: pl.LazyFrame, policy: Policy) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(row issues, per-account count of switches in [start of as_of's UTC day, as_of])."""
    day_start = policy.as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    today = pl.col("switched_at").is_between(day_start, policy.as_of, closed="both")
    counts = switches.filter(pl.col("account_id").is_not_null()).with_columns(today.alias("switches_today"))
    counts = counts.group_by("account_id").agg(
        pl.col("switches_today").sum().cast(pl.Int64), pl.len().alias("switch_rows")
    )
    return issue_rows(switches, rows.switch_rules()), counts


def _row_issues(with_terms: pl.LazyFrame, values: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """Issue rows with details: a second pass over the input, only when some row broke a rule."""
    if not values["_breaks"].any():
        return empty_issues().collect()
    return issue_rows(with_terms, rules).collect(engine="streaming")


@dataclass(frozen=True)
class RowPass:
    """What the row pass leaves: per-account frames sorted by account_id, and the row issues."""

    accounts: pl.LazyFrame
    balance_sums: pl.LazyFrame
    order_sums: pl.LazyFrame
    switch_counts: pl.LazyFrame
    issues: list[pl.LazyFrame]
    pro_walk: pl.DataFrame  # the distances of every Pro account, walked from its rows (distances.walk)
    # with scenarios: the balance and order rows as the kernels read them, kept for scenario_risk
    rows: tuple[pl.DataFrame, pl.DataFrame] | None = None


def _pro_ids(accounts: pl.DataFrame) -> pl.Series:
    """The ids of the accounts in Pro mode (which of them the distances keep: distances.pro_candidate)."""
    return (
        accounts.lazy()
        .filter(quantities.is_pro(), pl.col("account_id").is_not_null())
        .collect()["account_id"]
    )


def row_pass(
    tables: dict[str, pl.LazyFrame], terms: AssetTerms, policy: Policy, keep_rows: bool = False
) -> RowPass:
    """Every input row read once (the accounts first, whose ids the duplicate check needs, then the
    other tables in one streaming `collect_all`), reduced to per-account sums, the Pro accounts'
    distances and row issues."""
    accounts = tables["accounts"].collect(engine="streaming")
    bal_rows, bal_values = _balance_stage(tables["balances"], terms)
    ord_rows, ord_values = _order_stage(tables["open_orders"], terms)
    sw_issues, sw_counts = _switch_stage(tables["mode_switches"], policy)
    acct_issues = issue_rows(accounts.lazy(), rows.account_rules(policy, account_sums.repeated(accounts)))
    # in chunks of up to a million rows (the engine's default is ~100k): the kernels of account_sums
    # are called once per chunk, so fewer calls, each spread over the cores
    with pl.Config(streaming_chunk_size=account_sums.CHUNK_ROWS):
        bal_values, ord_values, sw_issues, sw_counts, acct_issues = pl.collect_all(
            [bal_values, ord_values, sw_issues, sw_counts, acct_issues], engine="streaming"
        )
    bal_issues = _row_issues(bal_rows, bal_values, rows.balance_rules())
    ord_issues = _row_issues(ord_rows, ord_values, rows.order_rules())
    prices = account_sums.prices_matrix(terms)
    stable = scenarios.stable_mask(terms, policy)
    bal_values = account_sums.in_account_order(bal_values)
    ord_values = account_sums.in_account_order(ord_values)
    bal_runs = account_sums.Runs.of(bal_values["account_id"]) if bal_values.height else None
    # the walk first: its buffers are freed before the sums' arrays are made (a lower peak)
    pro_walk = distances.walk(bal_values, ord_values, _pro_ids(accounts), terms, policy, runs=bal_runs)
    bal_sums = account_sums.account_frame(
        *account_sums.balance_sums(bal_values, terms, stable, prices, bal_runs),
        list(quantities.BALANCE_SUMS.values()),
        "balance_rows",
    )
    ord_sums = account_sums.account_frame(
        *account_sums.order_sums(ord_values, terms, prices),
        list(quantities.ORDER_SUMS.values()),
        "order_rows",
    )
    kept = None
    if keep_rows:
        kept = (
            bal_values.select(account_sums.BALANCE_COLUMNS),
            ord_values.select(account_sums.ORDER_COLUMNS),
        )
    del bal_values, ord_values
    repeats = [
        groups.repeated_keys(tables["balances"], bal_sums, "asset", "balances"),
        groups.repeated_keys(tables["open_orders"], ord_sums, "order_id", "open_orders"),
    ]
    # sorted by account_id and flagged so: the joins of the account pass are merge joins and
    # account_risk comes out in account order without another sort
    accounts, sw_counts, bal_sums, ord_sums = (
        account_sums.sorted_by_account(f) for f in (accounts, sw_counts, bal_sums, ord_sums)
    )
    unknown = [
        groups.unknown_accounts(bal_sums, accounts, "balances", "balance_rows"),
        groups.unknown_accounts(ord_sums, accounts, "open_orders", "order_rows"),
        groups.unknown_accounts(sw_counts, accounts, "mode_switches", "switch_rows"),
    ]
    row_issues = [f.lazy() for f in (acct_issues, bal_issues, ord_issues, sw_issues)]
    issues = [*row_issues, *repeats, *unknown]
    return RowPass(accounts, bal_sums, ord_sums, sw_counts, issues, pro_walk, kept)


# ------------------------------------------------------------------ 3. the account pass

ACCOUNT_SUMS = [*quantities.BALANCE_SUMS.values(), *quantities.ORDER_SUMS.values()]


def account_pass(passed: RowPass, policy: Policy) -> pl.DataFrame:
    """Every account with an id: its sums (0 without rows), levels and decisions.

    Duplicated account ids flow through and are left out by the issues phase, with their issue.
    """
    known = passed.accounts.filter(pl.col("account_id").is_not_null()).collect()
    # the per-account frames have one row per account_id, so each left join keeps `known`'s rows
    # one to one and in order: join on the ids alone, then put the account columns beside them
    # (joining all of `accounts` copies its columns three times: 1.5 s instead of 0.55 s at 10M)
    sums = (
        known.lazy()
        .select("account_id")
        .join(
            passed.balance_sums.select("account_id", *quantities.BALANCE_SUMS.values()),
            on="account_id",
            how="left",
            maintain_order="left",
        )
        .join(
            passed.order_sums.select("account_id", *quantities.ORDER_SUMS.values()),
            on="account_id",
            how="left",
            maintain_order="left",
        )
        .join(
            passed.switch_counts.select("account_id", "switches_today"),
            on="account_id",
            how="left",
            maintain_order="left",
        )
        .drop("account_id")
        .collect()
    )
    if sums.height != known.height:  # pragma: no cover - guards the one-row-per-account construction
        raise AssertionError("per-account sums must have one row per account_id")
    computed = (
        pl.concat([known, sums], how="horizontal")
        .lazy()
        .with_columns(
            pl.col(*ACCOUNT_SUMS).fill_null(0.0),  # no rows: the sums are 0
            pl.col("switches_today").fill_null(0),
        )
    )
    for stage in [*levels.all_levels(policy), *decisions.all_decisions(policy)]:
        computed = computed.with_columns(**stage)
    return computed.collect()


# ------------------------------------------------------------------ 3b. distances to thresholds


def distance_phase(passed: RowPass, computed: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """`computed` with the four distances of docs/rules.md §8 (distances.py: Classic accounts from
    their sums, Pro accounts from the walk of their rows made in the row pass)."""
    return distances.distances(computed, passed.pro_walk, policy)


# ------------------------------------------------------------------ 4. issues and outputs


def issues_phase(passed: RowPass, computed: pl.DataFrame) -> pl.DataFrame:
    """Every issue row (ISSUE_COLUMNS), sorted; results that are not finite only for accounts
    without another issue (their inputs are all good, so the cause is the arithmetic)."""
    issues = pl.concat(passed.issues, how="vertical_relaxed").collect()
    clean = computed.lazy().filter(~pl.col("account_id").is_in(issues["account_id"].implode()))
    return (
        pl.concat([issues.lazy(), groups.non_finite_results(clean)], how="vertical_relaxed")
        .unique()
        .sort("account_id", "table", "code", "detail", "asset", nulls_last=True)
        .select([pl.col(c).cast(d) for c, d in ISSUE_COLUMNS.items()])
        .collect()
    )


def price_problems(issues: pl.DataFrame) -> pl.DataFrame:
    """Per asset and price problem: the detail and how many accounts it took out (sorted by asset)."""
    return (
        issues.lazy()
        .filter(pl.col("code").cast(pl.String).is_in(PRICE_CODES), pl.col("asset").is_not_null())
        .group_by("asset", "code")
        .agg(pl.col("detail").min(), pl.col("account_id").n_unique().cast(pl.Int64).alias("accounts"))
        .sort("asset", "code")
        .select([pl.col(c).cast(d) for c, d in PRICE_PROBLEMS.items()])
        .collect()
    )


def account_risk(computed: pl.DataFrame, issues: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """The accounts without an issue, in account order, with the output columns and types."""
    # a filter keeps the account order of `computed` (sorted accounts, order-keeping joins)
    risk = (
        computed.lazy()
        .filter(~pl.col("account_id").is_in(issues["account_id"].unique().implode()))
        .with_columns(
            decisions.pro_ineligible_reasons(policy),
            pl.col("margin_mode").cast(MarginMode, strict=False),
            pl.lit(policy.as_of).dt.cast_time_unit("us").alias("as_of"),
            pl.lit(policy.version).alias("policy_version"),
        )
        .select([pl.col(c).cast(d) for c, d in ACCOUNT_RISK.items()])
        .collect()
    )
    if not risk["account_id"].is_sorted():  # pragma: no cover - guards the construction above
        risk = risk.sort("account_id")
    return risk


def score(tables: Tables, policy: Policy, scenario_set: scenarios.ScenarioSet | None = None) -> Scores:
    """account_risk, actions, data_issues (and the price problems by asset) for one as_of; with a
    scenario set, scenario_risk too (an iterator of account chunks, docs/rules.md §8)."""
    lazy = {name: _lazy(frame) for name, frame in tables.items()}
    terms = reference_phase(lazy, policy)
    passed = row_pass(lazy, terms, policy, keep_rows=scenario_set is not None)
    computed = account_pass(passed, policy)
    computed = distance_phase(passed, computed, policy)
    issues = issues_phase(passed, computed)
    risk = account_risk(computed, issues, policy)
    version = pl.lit(policy.version).alias("policy_version")
    chunks = None
    if scenario_set is not None:
        accounts = scenarios.scenario_accounts(computed, risk["account_id"])
        chunks = scenarios.scenario_risk(passed.rows, terms, accounts, policy, scenario_set)
    return Scores(
        account_risk=risk,
        actions=actions_frame(risk.lazy(), policy).collect(),
        data_issues=issues.with_columns(version).select(list(DATA_ISSUES)),
        price_problems=price_problems(issues),
        scenario_risk=chunks,
    )
