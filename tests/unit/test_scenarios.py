"""Named stress scenarios (docs/rules.md §8.1, §8.3), scored by the engine.

A scenario of multipliers all 1 reproduces account_risk to the bit; moved prices are those of the
scenario (named assets, stable assets, the default); chunks of bounded size; the shipped set and bad
scenario files. Literal frames price every asset one hour before as_of. `run --scenarios` end to end is
tests/e2e/test_scenarios.py.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crossmargin import scenario_set
from crossmargin.engine import scenarios, score
from crossmargin.io.inputs import load_inputs
from crossmargin.policy import resolve
from crossmargin.scenario_set import Scenario, ScenarioSet
from support import SAMPLE
from support import reference as ref
from support.inputs import (
    NEW,
    account,
    balance,
    brackets,
    frame,
    fresh_prices,
    one_bracket,
    one_slice,
    order,
    run,
    tables,
    tiers,
    ts,
)


def sample_tables() -> dict[str, pl.LazyFrame]:
    return {name: frame for name, (frame, _) in load_inputs(SAMPLE).items()}


def scenario_frame(t, as_of: dt.datetime, scenario_set: ScenarioSet) -> tuple[pl.DataFrame, pl.DataFrame]:
    scores = score(t, resolve(as_of), scenario_set)
    return scores.account_risk, pl.concat(list(scores.scenario_risk))


# ----------------------------------------------------------------------------- all-1 reproduces account_risk


@pytest.mark.parametrize("as_of", [NEW, ts("2025-01-21T09:59:59Z")])
def test_multipliers_all_one_reproduce_account_risk_exactly(as_of: dt.datetime) -> None:
    """On the sample book (both formulas): every quantity, level, flag and amount equal, bit for bit."""
    flat = ScenarioSet(
        (
            Scenario("flat", 1.0),
            Scenario("flat, every asset named", 1.0, 1.0, {"BTC": 1.0, "USDT": 1.0, "USDC": 1.0}),
        ),
        "test",
    )
    risk, sr = scenario_frame(sample_tables(), as_of, flat)
    assert sr.height == 2 * risk.height
    shared = [c for c in sr.columns if c in risk.columns]
    assert len(shared) >= 28
    for name in flat.names:
        got = sr.filter(pl.col("scenario") == name).select(shared)
        assert_frame_equal(got, risk.select(shared), check_exact=True)


def test_rows_are_account_then_scenario_order() -> None:
    risk, sr = scenario_frame(sample_tables(), NEW, scenario_set.load_scenarios("default"))
    names = scenario_set.load_scenarios("default").names
    assert sr["account_id"].to_list() == [a for a in risk["account_id"].to_list() for _ in names]
    assert sr["scenario"].cast(pl.String).to_list() == names * risk.height
    assert sr.schema == pl.Schema(scenarios.scenario_schema(scenario_set.load_scenarios("default")))


# ----------------------------------------------------------------------------- moved prices, hand-worked


def _book() -> dict[str, pl.DataFrame]:
    """Account 1 (Classic 3x): 1 BTC at 100, 50 USDC at 1, owes 60 USDT. Account 2 (Pro): 2 ETH at 10
    (tiers 1.0 up to 15 USDT, 0.5 above), 100 USDT, owes 0.5 BTC at 100 (brackets 10 % up to 40 USDT,
    20 % above), a BUY of 1 ETH at 12 USDT open."""
    return tables(
        accounts=[account(1, "classic", 3), account(2, "pro")],
        balances=[
            balance(1, "BTC", free=1.0),
            balance(1, "USDC", free=50.0),
            balance(1, "USDT", borrowed=60.0),
            balance(2, "ETH", free=2.0),
            balance(2, "USDT", free=100.0),
            balance(2, "BTC", borrowed=0.5),
        ],
        open_orders=[order(2, 1, "ETH", "USDT", "BUY", 12.0, 1.0)],
        prices=fresh_prices(NEW, USDC=1.0, BTC=100.0, ETH=10.0),
        collateral_tiers=[
            one_slice("BTC", 0.9),
            one_slice("USDC", 1.0),
            tiers("ETH", [(0, 15, 1.0), (15, None, 0.5)]),
        ],
        liability_brackets=[brackets("BTC", [(0, 40, 0.1, 0.2), (40, None, 0.2, 0.4)]), one_bracket("USDC")],
    )


def test_hand_worked_scenarios() -> None:
    """BTC −30 % alone, a uniform −50 %, and a depeg of every stable asset but USDT (× 0.97).

    Account 1, BTC × 0.7: A = 70 + 50 = 120, L = 60, level 2; uniform × 0.5: A = 50 + 50 = 100
    (USDC is stable), level 100/60; depeg: A = 100 + 48.5 = 148.5.
    Account 2, uniform × 0.5: ETH 5 -> holding 10 (collateral 10, first tier), USDT 100, debt
    0.5 BTC at 50 = 25 (MM 2.5, first bracket); the BUY gives 12 USDT × 1 and receives 1 ETH at 5
    × 1.0: loss 7. Level new = (110 − 25 − 7)/2.5 = 31.2. At r = 0: collateral 15 + 0.5·5 + 100 =
    117.5, debt 50 (MM 4 + 2 = 6), loss 12 − 10 = 2: (117.5 − 50 − 2)/6.
    """
    s = ScenarioSet(
        (
            Scenario("BTC -30%", 1.0, 1.0, {"BTC": 0.7}),
            Scenario("uniform -50%", 0.5),
            Scenario("depeg", 1.0, 0.97, {"USDT": 1.0}),
        ),
        "test",
    )
    risk, sr = scenario_frame(_book(), NEW, s)

    def at(aid: int, name: str) -> dict:
        return sr.filter(pl.col("account_id") == aid, pl.col("scenario") == name).to_dicts()[0]

    assert at(1, "BTC -30%")["total_asset_usdt"] == pytest.approx(120.0)
    assert at(1, "BTC -30%")["classic_margin_level"] == pytest.approx(2.0)
    assert at(1, "uniform -50%")["classic_margin_level"] == pytest.approx(100 / 60)
    assert at(1, "uniform -50%")["total_liability_usdt"] == 60.0
    assert at(1, "depeg")["total_asset_usdt"] == pytest.approx(148.5)
    two = at(2, "uniform -50%")
    assert two["collateral_usdt"] == pytest.approx(110.0)
    assert two["maintenance_margin_usdt"] == pytest.approx(2.5)
    assert two["open_order_loss_usdt"] == pytest.approx(7.0)
    assert two["pro_margin_level"] == pytest.approx(31.2)
    base = risk.filter(pl.col("account_id") == 2).to_dicts()[0]
    assert base["pro_margin_level"] == pytest.approx(65.5 / 6)
    assert at(2, "BTC -30%")["open_order_loss_usdt"] == base["open_order_loss_usdt"]  # no BTC leg


def test_scenario_agrees_with_the_reference_at_moved_prices() -> None:
    """Every quantity and level of scenario_risk equals the scalar reference valued at the same
    multipliers (within 1e-9 relative), for each shipped scenario."""
    t = _book()
    default = scenario_set.load_scenarios("default")
    policy = resolve(NEW)
    _, sr = scenario_frame(t, NEW, default)
    lists = {name: frame.to_dicts() for name, frame in t.items()}
    for s in default.scenarios:
        moved = ref.moved(lists, dict(s.assets or {}), s.default, tuple(policy.stable_assets), s.stable)
        want = ref.compute(moved, policy, hypothetical=True).account_risk
        for aid, row in want.items():
            got = sr.filter(pl.col("account_id") == aid, pl.col("scenario") == s.name).to_dicts()[0]
            for c in [*scenarios.SCENARIO_QUANTITIES, "bad_debt_usdt", "partial_repayment_usdt"]:
                assert got[c] == pytest.approx(row[c], rel=1e-9, abs=1e-9), (s.name, aid, c)
            for c in (
                "margin_call",
                "liquidation",
                "borrow_blocked",
                "eligible_for_pro",
                "can_switch_to_classic",
            ):
                assert got[c] is row[c], (s.name, aid, c)


def test_a_uniform_scenario_at_the_reported_distance_is_at_the_threshold() -> None:
    """liquidation_drop of the Classic account read back as a scenario: liquidated there, not before."""
    risk = run(_book(), NEW).account_risk
    d = risk.filter(pl.col("account_id") == 1)["liquidation_drop"][0]
    assert 0 < d < 1
    s = ScenarioSet((Scenario("at", 1 - d), Scenario("before", 1 - d * (1 - 1e-6))), "test")
    _, sr = scenario_frame(_book(), NEW, s)
    one = sr.filter(pl.col("account_id") == 1)
    assert one.filter(pl.col("scenario") == "at")["margin_level"][0] == pytest.approx(1.1, rel=1e-9)
    assert one.filter(pl.col("scenario") == "before")["liquidation"][0] is False


def test_chunks_of_bounded_size_give_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forced into chunks of a few accounts: the same frame as one chunk."""
    default = scenario_set.load_scenarios("default")
    _, whole = scenario_frame(sample_tables(), NEW, default)
    monkeypatch.setattr(scenarios, "ROWS_PER_CHUNK", 200)
    scores = score(sample_tables(), resolve(NEW), default)
    chunks = list(scores.scenario_risk)
    assert len(chunks) > 10
    assert_frame_equal(pl.concat(chunks), whole, check_exact=True)


@pytest.mark.parametrize("rows_per_chunk", [200, 12_000_000], ids=["chunks of a few accounts", "one chunk"])
def test_rows_of_accounts_with_a_data_issue_are_left_out(
    monkeypatch: pytest.MonkeyPatch, rows_per_chunk: int
) -> None:
    """The scenarios value the rows the row pass read, every account's: accounts that leave the
    outputs with a data issue (a negative quantity; ids 2 and 4, between the valid 1, 3 and 5, where 5
    has no balance rows) are left out of scenario_risk, and their rows change no other account's:
    the same rows as without them."""
    monkeypatch.setattr(scenarios, "ROWS_PER_CHUNK", rows_per_chunk)
    default = scenario_set.load_scenarios("default")
    book = _book()
    renumber = pl.col("account_id").replace(2, 3)
    clean = {
        name: frame.with_columns(renumber) if "account_id" in frame.columns else frame
        for name, frame in book.items()
    }
    clean["accounts"] = pl.concat(
        [clean["accounts"], clean["accounts"].head(1).with_columns(account_id=pl.lit(5, pl.Int64))]
    )
    bad_rows = frame(
        "balances",
        [balance(i, "BTC", free=-1.0) for i in (2, 4)] + [balance(i, "USDT", borrowed=5.0) for i in (2, 4)],
    )
    faulty = dict(clean)
    faulty["accounts"] = pl.concat(
        [clean["accounts"], clean["accounts"].head(2).with_columns(account_id=pl.Series([2, 4]))]
    )
    faulty["balances"] = pl.concat([clean["balances"], bad_rows.cast(clean["balances"].schema)])
    risk, got = scenario_frame(faulty, NEW, default)
    assert risk["account_id"].to_list() == [1, 3, 5]
    _, want = scenario_frame(clean, NEW, default)
    assert_frame_equal(got, want, check_exact=True)


# ----------------------------------------------------------------------------- scenario files


def test_the_shipped_set() -> None:
    s = scenario_set.load_scenarios("default")
    assert s.names == [
        "uniform -10%",
        "uniform -20%",
        "uniform -30%",
        "uniform -50%",
        "uniform +20%",
        "uniform +50%",
        "uniform +100%",
        "BTC -30%",
        "stablecoin depeg",
    ]
    policy = resolve(NEW)
    depeg = s.scenarios[-1]
    assert depeg.multiplier("USDT", True) == 1.0
    assert all(depeg.multiplier(a, True) == 0.97 for a in policy.stable_assets if a != "USDT")
    assert depeg.multiplier("BTC", False) == 1.0
    assert s.scenarios[7].multiplier("BTC", False) == 0.7
    assert s.scenarios[7].multiplier("ETH", False) == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenario = 3", "no [[scenario]]"),
        ("[[scenario]]\ndefault = 0.9", "needs a non-empty `name`"),
        ("[[scenario]]\nname = 'a'", "needs `default`"),
        ("[[scenario]]\nname = 'a'\ndefault = -1", ">= 0"),
        ("[[scenario]]\nname = 'a'\ndefault = nan", ">= 0"),
        ("[[scenario]]\nname = 'a'\ndefault = 1\n[[scenario]]\nname = 'a'\ndefault = 2", "appears twice"),
        ("[[scenario]]\nname = 'a'\ndefault = 1\nassets = { BTC = 'x' }", "assets.BTC"),
        ("[[scenario]]\nname = 'a'\ndefault = 1\nshock = 2", "unknown key"),
        ("[[scenario", "not valid TOML"),
    ],
)
def test_bad_scenario_files(text: str, message: str) -> None:
    with pytest.raises(scenario_set.UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        scenario_set.parse_scenarios(text, "f.toml")
