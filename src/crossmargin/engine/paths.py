"""Moving accounts along paths (kernels/search.py): the distances to thresholds (rules/distances.py)
and what it would take to lift each block (rules/remediation.py), in one compiled pass over the rows
the row pass kept.

Each account's conditions come from the account pass (their measure and threshold per account, as
the decisions judge them) with its sums; the kernel values the account only where a condition does
not hold yet.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from crossmargin.engine.rows import BALANCE_COLUMNS, ORDER_COLUMNS, RowPass
from crossmargin.kernels.compiled import spread
from crossmargin.kernels.runs import Runs, positions, read_only
from crossmargin.kernels.search import ORDERS, PATHS, search_kernel
from crossmargin.kernels.valuation import COLLATERAL, MARGINS, Market
from crossmargin.rules import levels, quantities
from crossmargin.rules.thresholds import Slot

ACCOUNT = "account_id"


@cache
def measure_needs() -> np.ndarray:
    """Per measure of levels.MEASURES: the sums it reads, as kernel bits (COLLATERAL, MARGINS, ORDERS)."""
    bits = {"collateral_usdt": COLLATERAL, "maintenance_margin_usdt": MARGINS, "initial_margin_usdt": MARGINS,
            "open_order_loss_usdt": ORDERS}  # fmt: skip
    return np.array(
        [sum({bits[s] for s in levels.reads(m) if s in bits}) for m in levels.MEASURES], dtype=np.int64
    )


# a condition's measure and threshold depend on the account's class only: its mode and leverage
CLASS_COLUMNS = ["margin_mode", "classic_leverage"]


def conditions_by_class(
    computed: pl.DataFrame, slots: list[Slot]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the class of each account of `computed`, and per slot and class the measure's index (-1: not
    followed) and the threshold): each slot's expressions evaluated once per class, not per account."""
    exprs = [e for s in slots for e in (s.measure(), s.threshold())]
    reads = {name for e in exprs for name in e.meta.root_names()}
    if not reads <= set(CLASS_COLUMNS):  # pragma: no cover - guards the class key
        raise AssertionError(
            f"a condition reads {sorted(reads - set(CLASS_COLUMNS))}: add it to CLASS_COLUMNS"
        )
    keys = pl.DataFrame([computed[c] for c in CLASS_COLUMNS])  # the columns as they are: no copy
    # every combination of the values each column holds (a few; a combination no account holds is
    # harmless), then each account's by one comparison per class: cheaper than a unique and a join
    classes = pl.DataFrame()
    for c in CLASS_COLUMNS:
        values = keys[c].unique().sort(nulls_last=True).to_frame()
        classes = values if classes.width == 0 else classes.join(values, how="cross")
    index = pl.lit(0, pl.Int64)
    for i, row in enumerate(classes.iter_rows(named=True)):
        same = pl.all_horizontal([pl.col(c).eq_missing(v) for c, v in row.items()])
        index = pl.when(same).then(i).otherwise(index)
    klass = keys.select(index).to_series()
    table = classes.select(exprs)
    measure = np.stack([table[f"{s.name}_measure"].to_numpy() for s in slots])
    threshold = np.stack([table[f"{s.name}_threshold"].to_numpy() for s in slots])
    return klass.to_numpy(), np.ascontiguousarray(measure), np.ascontiguousarray(threshold)


def follow(computed: pl.DataFrame, passed: RowPass, market: Market, slots: list[Slot]) -> pl.DataFrame:
    """One column per slot, row for row beside `computed` (sorted by account_id): the least point of
    the slot's path at which its condition holds; NaN where it holds nowhere (or is not followed)."""
    n = computed.height
    ids = computed[ACCOUNT].to_numpy()
    klass, measure, threshold = conditions_by_class(computed, slots)
    above = np.array([s.condition.above for s in slots], dtype=np.bool_)
    path = np.array([PATHS[s.path] for s in slots], dtype=np.int8)
    sums = [computed[c].to_numpy() for c in quantities.SUMS]  # zero-copy
    orders = passed.orders
    o_lo, o_hi = _spans(orders.runs, ids)
    order_arrays = [orders.frame[c].to_numpy() for c in [*ORDER_COLUMNS[2:], "order_id"]]
    params = read_only(
        (o_lo, o_hi, *order_arrays, *sums, klass, measure, threshold, above, path, measure_needs(),
         market.prices[0], market.moving, market.ratio, market.usdt, market.coll, market.liab)
    )  # fmt: skip
    out = np.empty((len(slots), n))  # by slot: each a column of the result; every account is written
    balances = passed.balances
    runs = balances.runs
    place = positions(runs.ids, ids)  # each run's account among `computed`'s, or -1
    if runs.starts.size:
        runs.apply(search_kernel, balances.frame, BALANCE_COLUMNS[1:], params, (out,), place=place)
    has_rows = np.zeros(n, dtype=np.bool_)
    has_rows[place[place >= 0]] = True
    without_rows = np.flatnonzero(~has_rows)
    none_i, none_f = read_only(np.zeros(0, dtype=np.uint32)), read_only(np.zeros(0))

    def rest(lo: int, hi: int) -> None:  # accounts without balance rows: runs of no rows
        g = read_only(without_rows[lo:hi])
        search_kernel(read_only(np.zeros(g.size, dtype=np.int64)), 0, none_i, none_f, none_f, *params, out, g)

    spread(rest, without_rows.size)
    return pl.DataFrame({s.name: out[j] for j, s in enumerate(slots)})


def _spans(runs: Runs, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per account of `ids` (sorted): the first and one past the last of its rows among the rows whose
    runs are `runs` (0, 0 without rows)."""
    if runs.starts.size == 0:
        return np.zeros(ids.size, dtype=np.int64), np.zeros(ids.size, dtype=np.int64)
    at = positions(ids, runs.ids)
    has = at >= 0
    return np.where(has, runs.starts[at], 0), np.where(has, runs.ends[at], 0)
