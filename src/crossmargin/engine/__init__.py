"""The engine: input tables, policy and as_of in, the output frames out. No files, no clock.

`score(tables, policy)` is a pure function of the seven input tables (typed: io/inputs.py) and the
Policy resolved at as_of. It runs named phases, each in its module:

1. reference — market and reference data in effect at as_of, one row per asset (market.py: prices,
   tiers and brackets with their problems), and the same as kernel arrays (kernels/valuation.Market);
2. `rows.row_pass` — every input row read once, the rows that break a data-quality rule listed, the
   rest valued and summed per account by the one valuation (kernels/valuation.py);
3. `accounts.account_pass` — per account: levels (rules/levels.py) and decisions (rules/decisions.py);
4. `paths.follow` — the distances to thresholds and what it would take to lift each block: the
   conditions of the decisions followed along a price move, a deposit, a cancellation
   (kernels/search.py, on the rows the row pass kept);
5. `issues.issues_phase` — every account with an issue leaves account_risk and actions;
6. with scenarios, `scenarios.scenario_risk` — every account valued under each scenario's prices.

The job (job.py) calls `score` once per account-id bucket; a bucket is just the account tables
filtered to an id range, with the same reference tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from crossmargin.engine import accounts, issues, paths, rows, scenarios
from crossmargin.io.schemas import DATA_ISSUES
from crossmargin.kernels.valuation import Market
from crossmargin.market import AssetTerms, asset_terms
from crossmargin.policy import Policy
from crossmargin.rules import distances, remediation
from crossmargin.rules.actions import actions as actions_frame
from crossmargin.scenario_set import ScenarioSet

Tables = dict[str, pl.DataFrame | pl.LazyFrame]


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


def reference(tables: dict[str, pl.LazyFrame], policy: Policy) -> AssetTerms:
    """Prices, collateral tiers and liability brackets in effect at as_of, checked, by asset."""
    return asset_terms(
        tables["prices"].collect(),
        tables["collateral_tiers"].collect(),
        tables["liability_brackets"].collect(),
        policy.as_of,
        policy.max_price_age,
    )


def computed_accounts(
    tables: Tables, policy: Policy
) -> tuple[AssetTerms, Market, rows.RowPass, pl.DataFrame]:
    """Phases 1 to 4: the reference data, the row pass, and every account with an id with its sums,
    levels, decisions, distances and remediation columns (before the issues phase)."""
    lazy = {name: _lazy(frame) for name, frame in tables.items()}
    terms = reference(lazy, policy)
    market = Market.of(terms, policy.stable_assets)
    passed = rows.row_pass(lazy, terms, market, policy)
    computed = accounts.account_pass(passed, policy)
    followed = paths.follow(computed, passed, market, [*distances.slots(policy), *remediation.slots(policy)])
    computed = computed.with_columns(
        followed.select(*distances.columns(policy), *remediation.columns(policy)).get_columns()
    )
    return terms, market, passed, computed


@dataclass(frozen=True)
class Phases:
    """What the phases leave for one as_of (one bucket): the reference data, the row pass, every
    account with an id (`computed`, before the accounts with an issue leave), the issues, the outputs."""

    terms: AssetTerms
    market: Market
    passed: rows.RowPass
    computed: pl.DataFrame
    issues: pl.DataFrame  # ISSUE_COLUMNS: with the asset an issue is about
    account_risk: pl.DataFrame
    actions: pl.DataFrame


def phases(tables: Tables, policy: Policy) -> Phases:
    """Phases 1 to 5 (module docstring)."""
    terms, market, passed, computed = computed_accounts(tables, policy)
    found = issues.issues_phase(passed, computed)
    risk = issues.account_risk(computed, found, policy)
    return Phases(terms, market, passed, computed, found, risk, actions_frame(risk.lazy(), policy).collect())


def score(
    tables: Tables, policy: Policy, scenario_set: ScenarioSet | None = None, scenario_group: int = 100_000
) -> Scores:
    """account_risk, actions, data_issues (and the price problems by asset) for one as_of; with a
    scenario set, scenario_risk too (an iterator of account chunks, docs/rules.md §8.3: `scenario_group`
    accounts per row group of the file the chunks are written to; a chunk never spans two)."""
    done = phases(tables, policy)
    version = pl.lit(policy.version).alias("policy_version")
    chunks = None
    if scenario_set is not None:
        valid = scenarios.scenario_accounts(done.computed, done.account_risk["account_id"])
        chunks = scenarios.scenario_risk(
            done.passed, done.terms, done.market, valid, policy, scenario_set, scenario_group
        )
    return Scores(
        account_risk=done.account_risk,
        actions=done.actions,
        data_issues=done.issues.with_columns(version).select(list(DATA_ISSUES)),
        price_problems=issues.price_problems(done.issues),
        scenario_risk=chunks,
    )
