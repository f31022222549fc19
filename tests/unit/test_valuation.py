"""The one valuation (kernels/valuation.py) and the runs it is applied over (kernels/runs.py).

The streaming engine hands the rows over in chunks whose boundaries depend on its morsels; the kernels
value them chunk by chunk (runs crossing a boundary are gathered) on several threads. Each account's
sums must be its rows' values added left to right in input order, the same bits however the rows are
split and whatever the thread count. Worked by hand here (and a deposit, a move, an order's loss);
random rows and chunks in tests/property/test_valuation.py.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crossmargin.engine import rows as rows_
from crossmargin.engine.rows import Rows
from crossmargin.kernels import runs as runs_module
from crossmargin.kernels.runs import Runs
from crossmargin.kernels.valuation import NO_ASSET, Market, value_balances
from support.kernels import N_KEYS, USDT, chunked, market, rows_frame, sums

# ------------------------------------------------------------------ runs


def test_runs_of_hand_worked() -> None:
    """Chunks [1 1 2] [2 2 3] [3] [5]: run 1 is rows 0-1, run 2 rows 2-4 (across the first boundary),
    run 3 rows 5-6 (across the second), run 5 row 7."""
    column = pl.concat([pl.Series("account_id", c) for c in ([1, 1, 2], [2, 2, 3], [3], [5])], rechunk=False)
    runs = Runs.of(column)
    assert (runs.starts.tolist(), runs.ends.tolist(), runs.ids.tolist()) == (
        [0, 2, 5, 7],
        [2, 5, 7, 8],
        [1, 2, 3, 5],
    )


# ------------------------------------------------------------------ the sums


def test_hand_worked_account_across_chunks() -> None:
    """Account 2 holds asset 0 (price 2) in five rows across three chunks: 1+2+3+4+5 = 15 units, 30 USDT,
    all in the first collateral slice (rate 1); account 1 owes 60 USDT (30 at price 2): MM 0.1·50 +
    0.2·10 = 7, IM 0.2·50 + 0.5·10 = 15; account 3 holds 200 USDT: collateral 100 + 0.5·100 = 150."""
    f = rows_frame([(1, 0, 0.0, 30.0), (2, 0, 1.0, 0.0), (2, 0, 2.0, 0.0), (2, 0, 3.0, 0.0), (2, 0, 4.0, 0.0),
               (2, 0, 5.0, 0.0), (3, USDT, 200.0, 0.0)])  # fmt: skip
    for cuts in ([], [2], [3, 5], [1, 2, 3, 4, 5, 6]):
        got = sums(chunked(f, cuts))
        assert got["account_id"].to_list() == [1, 2, 3]
        assert got["a"].to_list() == [0.0, 30.0, 200.0]
        assert got["l"].to_list() == [60.0, 0.0, 0.0]
        assert got["c"].to_list() == [0.0, 30.0, 150.0]
        assert got["mm"].to_list() == [7.0, 0.0, 0.0]
        assert got["im"].to_list() == [15.0, 0.0, 0.0]
        assert got["n"].to_list() == [1, 5, 1]
        assert got["maybe_repeat"].to_list() == [False, True, False]  # asset 0 five times


def test_unsorted_rows_and_null_account_ids() -> None:
    f = rows_frame([(2, 0, 1.0, 0.0), (1, 0, 2.0, 0.0), (2, 0, 3.0, 0.0), (1, 0, 4.0, 0.0)]).vstack(
        rows_frame([(0, 0, 100.0, 0.0)]).with_columns(pl.lit(None, pl.Int64).alias("account_id"))
    )
    got = sums(f)
    assert got.select("account_id", "a", "n").to_dict(as_series=False) == {
        "account_id": [1, 2],
        "a": [12.0, 8.0],
        "n": [2, 2],
    }


def test_no_rows() -> None:
    got = sums(rows_frame([]))
    assert got.height == 0
    assert got.schema["a"] == pl.Float64 and got.schema["n"] == pl.Int64


def test_sums_do_not_depend_on_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(3000), rng.integers(1, 30, 3000))
    assets, held, owed = (
        rng.integers(0, N_KEYS, ids.size),
        rng.random(ids.size) * 1e5,
        rng.random(ids.size) * 1e3,
    )
    rows = list(zip(ids.tolist(), assets.tolist(), held.tolist(), owed.tolist(), strict=True))
    f = chunked(rows_frame(rows), [1000, 20_000])
    got = []
    for n in (1, 2, 5):
        monkeypatch.setattr(runs_module, "threads", lambda n=n: n)
        got.append(sums(f).select("a", "c", "mm").to_numpy().tobytes())
    assert got[0] == got[1] == got[2]


# ------------------------------------------------------------------ a deposit and a move


def _value(rows: list[tuple[int, int, float, float]], m: float = 1.0, deposit: float = 0.0, usdt: int = USDT):
    mk = market(usdt=usdt)
    f = rows_frame(rows)
    return value_balances(f["asset_idx"].to_numpy(), f["holding"].to_numpy(), f["debt"].to_numpy(), 0, f.height,
                          mk.prices[0], mk.moving, m, deposit, usdt, mk.coll, mk.liab, 3)  # fmt: skip


def test_a_deposit_adds_to_the_usdt_holding_through_its_tiers() -> None:
    """80 USDT held, 50 deposited: 130 of value, collateral 100 + 0.5·30 = 115 (the deposit crosses the
    first tier bound); debts unchanged. Without a USDT row, the deposit is a holding of its own."""
    assert _value([(1, USDT, 80.0, 0.0), (1, 0, 10.0, 5.0)], deposit=50.0) == (150.0, 10.0, 135.0, 1.0, 2.0)
    assert _value([(1, 0, 10.0, 5.0)], deposit=50.0) == (70.0, 10.0, 70.0, 1.0, 2.0)
    assert _value([(1, 0, 10.0, 5.0)]) == (20.0, 10.0, 20.0, 1.0, 2.0)


def test_a_move_scales_the_non_stable_prices_only() -> None:
    """Asset 0 (price 2) × 1.5, USDT stays: 10 of asset 0 worth 30, 40 USDT worth 40."""
    got = _value([(1, 0, 10.0, 0.0), (1, USDT, 40.0, 0.0)], m=1.5)
    assert got[0] == 70.0 and got[2] == 70.0
    assert _value([(1, 0, 10.0, 0.0)], m=1.0) == _value([(1, 0, 10.0, 0.0)])


def test_no_usdt_in_the_market_is_no_asset() -> None:
    assert NO_ASSET < 0
    assert _value([(1, 0, 10.0, 0.0)], usdt=NO_ASSET)[0] == 20.0


def test_order_loss_hand_worked() -> None:
    """BUY 2 @ 30 of asset 0 (index 60, ratio 0.5) for asset 1 (price 1, ratio 1): gives the quote leg
    2·30·1·1 = 60, receives the base leg 2·60·0.5 = 60 -> loss 0; SELL gives 60, receives 60 -> 0; at
    a base price of 40: BUY gives 60, receives 40 -> 20; SELL gives 40 < 60 -> 0. An order on an asset
    no price names adds 0."""
    orders = pl.DataFrame(
        {
            "account_id": [1, 1, 2],
            "order_id": [10, 11, 12],
            "asset_idx_base": pl.Series([0, 0, 2], dtype=pl.UInt32),
            "asset_idx_quote": pl.Series([1, 1, 1], dtype=pl.UInt32),
            "is_buy": [True, False, True],
            "remaining_qty": [2.0, 2.0, 5.0],
            "price": [30.0, 30.0, 1.0],
        }
    )
    m = Market(np.array([[60.0, 1.0]]), np.array([True, False]), np.array([0.5, 1.0]), (), (), NO_ASSET)
    prices = np.array([[60.0, 1.0], [40.0, 1.0]])
    out, key_bits = rows_.order_sums_at(Rows.of(orders), m, prices)
    assert out[0, :, 0].tolist() == [0.0, 0.0]
    assert out[0, :, 1].tolist() == [20.0, 0.0]
    assert key_bits.tolist() == [(1 << 10) | (1 << 11), 1 << 12]
