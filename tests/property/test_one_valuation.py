"""One valuation: the account pass, the path search (distances) and the scenarios value an account
alike, on random books under random thresholds (a `--policy` file).

- a scenario of multipliers all 1 is the account pass, bit for bit (every shared column);
- a uniform move m of every non-stable price gives the margin level the independent scalar reference
  computes at that move (relative 1e-12);
- a scenario at a reported distance (liquidation_drop d: multiplier 1 − d) has the margin level at
  the threshold (relative 1e-9), or crosses it there: the search and the scenarios agree.
"""

from __future__ import annotations

import math
import os

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from crossmargin.engine import score
from crossmargin.policy import resolve
from crossmargin.scenario_set import Scenario, ScenarioSet
from property.test_distances import books, threshold
from support import reference as ref
from support.inputs import threshold_policies, written_policy


def scenario_rows(t, policy, scenarios: list[Scenario]) -> tuple[pl.DataFrame, pl.DataFrame]:
    scores = score(dict(t), policy, ScenarioSet(tuple(scenarios), "test"))
    return scores.account_risk, pl.concat(list(scores.scenario_risk))


@settings(
    max_examples=int(os.environ.get("CROSSMARGIN_PROPERTY_EXAMPLES", "150")) // 3 or 1,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(books(), threshold_policies(), st.floats(0.0, 3.0))
def test_the_account_pass_the_search_and_the_scenarios_value_alike(book, policy_text: str, m: float) -> None:
    as_of, t = book
    with written_policy(policy_text) as policy_file:
        policy = resolve(as_of, policy_file)
    r = m - 1.0  # the reference takes a move r; the scenario its multiplier, the same float 1 + r
    risk, rows = scenario_rows(t, policy, [Scenario("same", 1.0), Scenario("moved", 1.0 + r)])
    shared = [c for c in rows.columns if c in risk.columns]
    same = rows.filter(pl.col("scenario") == "same").select(shared)
    assert_frame_equal(same, risk.select(shared), check_exact=True)

    lists = {name: frame.to_dicts() for name, frame in t.items()}
    expected = ref.level_at_move(lists, policy, r)
    for row in rows.filter(pl.col("scenario") == "moved").to_dicts():
        assert math.isclose(row["margin_level"], expected[row["account_id"]], rel_tol=1e-12), (row, expected)

    drops = risk.filter(pl.col("liquidation_drop") > 0).select("account_id", "liquidation_drop").rows()
    if not drops:
        return
    at = [Scenario(f"at {aid}", 1.0 - d) for aid, d in drops]
    just_past = [Scenario(f"past {aid}", 1.0 - min(d + 1e-9, 1.0)) for aid, d in drops]
    _, moved = scenario_rows(t, policy, at + just_past)
    by_account = {row["account_id"]: row for row in risk.to_dicts()}
    for aid, _ in drops:
        limit = threshold(policy, by_account[aid], "liquidation_drop")
        mine = moved.filter(pl.col("account_id") == aid)
        level = mine.filter(pl.col("scenario") == f"at {aid}")["margin_level"][0]
        past = mine.filter(pl.col("scenario") == f"past {aid}")["liquidation"][0]
        assert math.isclose(level, limit, rel_tol=1e-9) or past, (aid, level, limit)
