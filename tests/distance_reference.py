"""The previous computation of the Pro distances (polars, vectorized), kept as the reference the
compiled walk of src/crossmargin/distances.py is checked against, bit for bit (tests/test_distances.py).

`pro_lines` builds per row the line coefficients of N(m) = Na + Nb·m and M(m) = Ma + Mb·m just off
m = 1 and sums them per account (numpy reduceat), `_tier_events` / `_order_lines` the breakpoints;
`first_crossing` sorts every account's pieces outward from m = 1 (a stable sort, ties in the order
of the concatenated events), adds the changes up (left to right) and keeps the root nearest m = 1.

Polars' cross join (rows × slices) lists a (row, slice) grid slice-major when there are fewer than
eight moving rows per slice in the whole frame, row-major otherwise: the kernel always lists them
row-major (the order of any real book), so tests with tied breakpoints of different slices need
enough rows.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from crossmargin import account_sums, quantities
from crossmargin.distances import MAX_DROP, MAX_RISE, THRESHOLDS, TINY, thresholds
from crossmargin.policy import Policy
from crossmargin.reference_data import BASE, QUOTE, AssetTerms
from crossmargin.scenarios import stable_mask
from crossmargin.tiers import Slices


def reduce_runs(runs: account_sums.Runs, ufunc: np.ufunc, column: pl.Series) -> np.ndarray:
    """`ufunc.reduceat` of `column` over each run, chunk by chunk (the previous engine's reduction)."""
    chunks = column.get_chunks()
    layout = runs.layout(tuple(len(c) for c in chunks))
    out = np.empty(runs.starts.size, dtype=chunks[0].to_numpy().dtype)
    for i, first, last, local, stop in layout.inside:
        ufunc.reduceat(chunks[i].to_numpy()[:stop], local, out=out[first:last])
    if layout.crossing.size:
        out[layout.crossing] = ufunc.reduceat(column.gather(layout.gather).to_numpy(), layout.gather_starts)
    return out


# ------------------------------------------------------------------ the previous engine's per-row expressions
# (polars; the engine now values rows with the compiled functions of quantities.py)


def asset_value_usdt() -> pl.Expr:
    return quantities.holding() * pl.col("price_usdt")


def debt_value_usdt() -> pl.Expr:
    return quantities.debt() * pl.col("price_usdt")


def stable_part(value: str, stable: pl.Series) -> pl.Expr:
    """The row's USDT value when its asset is a stable asset (`stable`: per asset_idx), else 0: the part
    of the account total that a uniform price move leaves alone (docs/rules.md §8)."""
    return pl.when(pl.lit(stable).gather(pl.col("asset_idx"))).then(pl.col(value)).otherwise(pl.lit(0.0))


def slice_index(x: pl.Expr, asset_idx: pl.Expr, s: Slices) -> pl.Expr:
    """asset_idx·K + k for the slice k holding x (lower_k <= x < lower_{k+1}); null without an asset."""
    base = asset_idx.cast(pl.Int64) * s.k_max
    k = pl.lit(0, pl.Int64)
    for j in range(1, s.k_max):
        k = k + (x >= pl.lit(s.lower).gather(base + j)).cast(pl.Int64)
    return base + k


def tiered(x: pl.Expr, at: pl.Expr, s: Slices, rate: str) -> pl.Expr:
    """below_k + rate_k · (x − lower_k) at `at` = slice_index(x, ...): the progressive sum of x."""
    return pl.lit(s.below[rate]).gather(at) + pl.lit(s.rate[rate]).gather(at) * (
        x - pl.lit(s.lower).gather(at)
    )


def collateral_value_usdt(slices: Slices) -> pl.Expr:
    """tiered(holding·price, collateral_tiers[asset]): the haircut value of one holding."""
    return tiered(pl.col("asset_value_usdt"), pl.col("collateral_slice"), slices, "collateral_ratio")


def maintenance_margin_of_debt(slices: Slices) -> pl.Expr:
    """tiered(debt·price, liability_brackets[asset], maintenance_margin_rate); exactly 0 without debt."""
    return tiered(pl.col("debt_value_usdt"), pl.col("debt_slice"), slices, "maintenance_margin_rate")


def initial_margin_of_debt(slices: Slices) -> pl.Expr:
    """Same as maintenance_margin_of_debt with initial_margin_rate."""
    return tiered(pl.col("debt_value_usdt"), pl.col("debt_slice"), slices, "initial_margin_rate")


def order_quote_leg_usdt() -> pl.Expr:
    """qty·price·P_quote·r_quote: the quote side of an order at its limit price, haircut."""
    r_quote = pl.col("first_collateral_ratio_quote")
    return pl.col("remaining_qty") * pl.col("price") * pl.col("price_usdt_quote") * r_quote


def order_base_leg_usdt() -> pl.Expr:
    """qty·P_base·r_base: the base side of an order at index price, haircut."""
    return pl.col("remaining_qty") * pl.col("price_usdt_base") * pl.col("first_collateral_ratio_base")


def order_given_usdt() -> pl.Expr:
    """BUY gives the quote leg, SELL the base leg (docs/rules.md §1 [convention])."""
    return pl.when(quantities.is_buy()).then(order_quote_leg_usdt()).otherwise(order_base_leg_usdt())


def order_received_usdt() -> pl.Expr:
    """BUY receives the base leg, SELL the quote leg."""
    return pl.when(quantities.is_buy()).then(order_base_leg_usdt()).otherwise(order_quote_leg_usdt())


def order_loss_usdt() -> pl.Expr:
    """max(0, given − received) for one order (orders are not netted)."""
    return pl.max_horizontal(order_given_usdt() - order_received_usdt(), pl.lit(0.0))


def balance_values(collateral: Slices, liability: Slices, stable: pl.Series) -> list[dict[str, pl.Expr]]:
    """Per balance row, the values the account totals add up, in steps: the USDT values, then the
    slice each falls in (and their stable-asset parts; `stable`: per asset_idx), then the tiered
    values (each step reads the last)."""
    return [
        {"asset_value_usdt": asset_value_usdt(), "debt_value_usdt": debt_value_usdt()},
        {
            "collateral_slice": slice_index(pl.col("asset_value_usdt"), pl.col("asset_idx"), collateral),
            "debt_slice": slice_index(pl.col("debt_value_usdt"), pl.col("asset_idx"), liability),
            "asset_value_stable_usdt": stable_part("asset_value_usdt", stable),
            "debt_value_stable_usdt": stable_part("debt_value_usdt", stable),
        },
        {
            "collateral_value_usdt": collateral_value_usdt(collateral),
            "debt_maintenance_margin_usdt": maintenance_margin_of_debt(liability),
            "debt_initial_margin_usdt": initial_margin_of_debt(liability),
        },
    ]


LINE = ["Na", "Nb", "Ma", "Mb"]
DELTA = ["dNa", "dNb", "dMa", "dMb"]


def _slice_terms(terms: AssetTerms, table: str, rate: str, value: pl.Expr, at: pl.Expr) -> dict[str, pl.Expr]:
    """intercept and slope in m of `below_k + rate_k·(value·m − lower_k)` at flat slice `at`."""
    s = terms.collateral if table == "collateral" else terms.liability
    lower, r, below = (
        pl.lit(s.lower).gather(at),
        pl.lit(s.rate[rate]).gather(at),
        pl.lit(s.below[rate]).gather(at),
    )
    return {"a": below - r * lower, "b": r * value}


def _tier_events(
    rows: pl.LazyFrame,
    terms: AssetTerms,
    table: str,
    rate: str,
    value: str,
    slice_col: str,
    target: str,
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Breakpoints of a tiered value of the moving rows: (drop events, rise events) into N or M (`target`)."""
    s = terms.collateral if table == "collateral" else terms.liability
    k_max = s.k_max
    if k_max < 2:
        empty = pl.LazyFrame(
            schema={"account_id": pl.Int64, "m": pl.Float64, **{d: pl.Float64 for d in DELTA}}
        )
        return empty, empty
    v = pl.col(value)
    base = pl.col("asset_idx").cast(pl.Int64) * k_max
    ks = pl.LazyFrame({"k": list(range(1, k_max))}, schema={"k": pl.Int64})
    # only rows with a breakpoint in reach: above their asset's first slice (drop), or with the next
    # slice's lower bound within the largest rise
    k_now = pl.col(slice_col).cast(pl.Int64) - base
    next_lower = pl.lit(s.lower).gather(
        (pl.col(slice_col).cast(pl.Int64) + 1).clip(upper_bound=s.lower.len() - 1)
    )
    in_reach = (k_now > 0) | ((k_now < k_max - 1) & (next_lower <= (1.0 + MAX_RISE) * v))
    moving = rows.filter(~pl.col("stable"), v > 0, in_reach).select(
        "account_id", value, "asset_idx", slice_col
    )
    ev = moving.join(ks, how="cross").with_columns(at=base + pl.col("k"))
    lower = pl.lit(s.lower).gather(pl.col("at"))
    hi = _slice_terms(terms, table, rate, v, pl.col("at"))
    lo = _slice_terms(terms, table, rate, v, pl.col("at") - 1)
    ev = ev.filter(lower.is_finite()).with_columns(m=lower / v, da=hi["a"] - lo["a"], db=hi["b"] - lo["b"])
    ev = ev.collect().lazy()  # once for both sides
    a_col, b_col = ("dNa", "dNb") if target == "N" else ("dMa", "dMb")
    zero = [pl.lit(0.0).alias(c) for c in DELTA if c not in (a_col, b_col)]
    below_now = pl.col("at") <= pl.col(slice_col)  # slice k at or below the row's slice at m = 1
    drop = ev.filter(below_now).select(
        "account_id",
        pl.col("m").clip(upper_bound=1.0),
        (-pl.col("da")).alias(a_col),
        (-pl.col("db")).alias(b_col),
        *zero,
    )
    rise = ev.filter(~below_now, pl.col("m") <= 1.0 + MAX_RISE).select(
        "account_id",
        pl.col("m").clip(lower_bound=1.0),
        pl.col("da").alias(a_col),
        pl.col("db").alias(b_col),
        *zero,
    )
    return drop.select("account_id", "m", *DELTA), rise.select("account_id", "m", *DELTA)


def pro_lines(
    balances: pl.LazyFrame, orders: pl.LazyFrame, terms: AssetTerms, policy: Policy, kind: str | None = None
) -> dict[str, tuple[pl.LazyFrame, pl.LazyFrame]]:
    """Per side ("drop", "rise"): (lines, events) of the level `kind` from the accounts' rows.

    kind: "new" (net_collateral − open_order_loss) / maintenance_margin, "old" net_equity /
    maintenance_margin, "classic" total_asset / total_liability; default: the Pro formula in force.
    """
    kind = kind or ("new" if policy.new_formula else "old")
    stable = stable_mask(terms, policy)
    rows = terms.gather(balances, "asset")
    for step in balance_values(terms.collateral, terms.liability, stable)[:2]:
        rows = rows.with_columns(**step)
    rows = rows.select(
        "account_id",
        "asset_idx",
        "collateral_slice",
        "debt_slice",
        pl.lit(stable).gather(pl.col("asset_idx")).fill_null(True).alias("stable"),
        pl.col("asset_value_usdt", "debt_value_usdt").fill_null(0.0).fill_nan(0.0),
    )
    rows = rows.collect(engine="streaming").lazy()  # the accounts' rows are read once
    orders = orders.collect(engine="streaming").lazy()
    moving, still = ~pl.col("stable"), pl.col("stable")
    v, dv = pl.col("asset_value_usdt"), pl.col("debt_value_usdt")
    zero = pl.lit(0.0)

    def split(value: pl.Expr, at_slice: dict[str, pl.Expr] | None = None) -> tuple[pl.Expr, pl.Expr]:
        """(intercept, slope) of one row's term: constant for a stable row, linear (or a slice) else."""
        if at_slice is None:
            return pl.when(still).then(value).otherwise(zero), pl.when(moving).then(value).otherwise(zero)
        return (
            pl.when(still).then(value).otherwise(at_slice["a"]),
            pl.when(moving).then(at_slice["b"]).otherwise(zero),
        )

    if kind == "classic":
        na, nb = split(v)
        ma, mb = split(dv)
    else:
        if kind == "new":
            coll_value = collateral_value_usdt(terms.collateral)
            coll = _slice_terms(terms, "collateral", "collateral_ratio", v, pl.col("collateral_slice"))
            ca, cb = split(coll_value, coll)
        else:
            ca, cb = split(v)
        la, lb = split(dv)
        na, nb = ca - la, cb - lb
        mm_value = maintenance_margin_of_debt(terms.liability)
        ma, mb = split(
            mm_value, _slice_terms(terms, "liability", "maintenance_margin_rate", dv, pl.col("debt_slice"))
        )
    per_row = rows.select(
        "account_id",
        *[e.fill_null(0.0).fill_nan(0.0).alias(c) for e, c in zip((na, nb, ma, mb), LINE, strict=True)],
    )
    events: dict[str, list[pl.LazyFrame]] = {"drop": [], "rise": []}
    if kind != "classic":
        if kind == "new":
            d, r = _tier_events(
                rows,
                terms,
                "collateral",
                "collateral_ratio",
                "asset_value_usdt",
                "collateral_slice",
                "N",
            )
            events["drop"].append(d)
            events["rise"].append(r)
        d, r = _tier_events(
            rows, terms, "liability", "maintenance_margin_rate", "debt_value_usdt", "debt_slice", "M"
        )
        events["drop"].append(d)
        events["rise"].append(r)
    per_account = _account_sums(per_row.collect())  # the balance rows' part: the same on both sides
    out = {}
    for side in ("drop", "rise"):
        summed = per_account
        if kind == "new":
            o_lines, o_events = _order_lines(orders, terms, stable, side)
            events[side].append(o_events)
            o_sums = _account_sums(o_lines.collect())
            summed = (
                per_account.join(o_sums, on="account_id", how="full", coalesce=True, suffix="_o")
                .select(
                    "account_id", *[pl.col(c).fill_null(0.0) + pl.col(f"{c}_o").fill_null(0.0) for c in LINE]
                )
                .sort("account_id")
            )
        out[side] = (summed.lazy(), pl.concat(events[side]) if events[side] else None)
    return out


def _account_sums(rows: pl.DataFrame) -> pl.DataFrame:
    """Per account_id the sums of the LINE columns, rows added in input order (the same bits on every
    run, whatever the buckets: account_sums)."""
    rows = rows.filter(pl.col("account_id").is_not_null())
    if not rows["account_id"].is_sorted():
        rows = rows.sort("account_id", maintain_order=True)
    if rows.height == 0:
        return pl.DataFrame(schema={"account_id": pl.Int64, **{c: pl.Float64 for c in LINE}})
    runs = account_sums.Runs.of(rows["account_id"])
    return pl.DataFrame({"account_id": runs.ids, **{c: reduce_runs(runs, np.add, rows[c]) for c in LINE}})


def _order_lines(
    orders: pl.LazyFrame, terms: AssetTerms, stable: pl.Series, side: str
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Open-order loss max(0, d0 + d1·m) into N (with a minus): its line just off m = 1 and its breakpoint."""
    rows = terms.gather(terms.gather(orders, "base_asset", BASE), "quote_asset", QUOTE)
    q_moves = ~pl.lit(stable).gather(pl.col(f"asset_idx{QUOTE}")).fill_null(True)
    b_moves = ~pl.lit(stable).gather(pl.col(f"asset_idx{BASE}")).fill_null(True)
    buy = pl.col("side") == "BUY"
    q = order_quote_leg_usdt()
    b = order_base_leg_usdt()
    gq = pl.when(buy).then(q).otherwise(-q)  # the quote leg's part of given − received
    gb = pl.when(buy).then(-b).otherwise(b)
    zero = pl.lit(0.0)
    rows = rows.select(
        "account_id",
        (pl.when(q_moves).then(zero).otherwise(gq) + pl.when(b_moves).then(zero).otherwise(gb))
        .fill_null(0.0)
        .fill_nan(0.0)
        .alias("d0"),
        (pl.when(q_moves).then(gq).otherwise(zero) + pl.when(b_moves).then(gb).otherwise(zero))
        .fill_null(0.0)
        .fill_nan(0.0)
        .alias("d1"),
    ).with_columns(m0=pl.when(pl.col("d1") != 0).then(-pl.col("d0") / pl.col("d1")))
    d0, d1, m0 = pl.col("d0"), pl.col("d1"), pl.col("m0")
    on_below = pl.when(d1 == 0).then(d0 > 0).otherwise(d1 < 0)  # loss active for m < m0
    on_above = pl.when(d1 == 0).then(d0 > 0).otherwise(d1 > 0)  # for m > m0
    if side == "drop":  # just below m = 1
        start = pl.when(m0.is_not_null() & (m0 >= 1.0)).then(on_below).otherwise(on_above)
        crossed = m0.is_not_null() & (m0 > 0.0) & (m0 < 1.0)
        before, after = on_above, on_below
    else:  # just above m = 1
        start = pl.when(m0.is_not_null() & (m0 <= 1.0)).then(on_above).otherwise(on_below)
        crossed = m0.is_not_null() & (m0 > 1.0) & (m0 <= 1.0 + MAX_RISE)
        before, after = on_below, on_above

    def contribution(active: pl.Expr, c: pl.Expr) -> pl.Expr:
        return pl.when(active).then(-c).otherwise(pl.lit(0.0))

    lines = rows.select(
        "account_id",
        contribution(start, d0).alias("Na"),
        contribution(start, d1).alias("Nb"),
        zero.alias("Ma"),
        zero.alias("Mb"),
    )
    events = (
        rows.filter(crossed)
        .select(
            "account_id",
            "m0",
            (contribution(after, d0) - contribution(before, d0)).alias("dNa"),
            (contribution(after, d1) - contribution(before, d1)).alias("dNb"),
            zero.alias("dMa"),
            zero.alias("dMb"),
        )
        .rename({"m0": "m"})
    )
    return lines, events


def first_crossing(lines: pl.LazyFrame, events: pl.LazyFrame | None, side: str) -> pl.LazyFrame:
    """For each threshold column of `lines` (account_id, Na, Nb, Ma, Mb, liquidation, margin_call):
    the move away from m = 1 (d = 1 − m for "drop", u = m − 1 for "rise") of the first m where
    N(m) − T·M(m) ≤ 0 with M(m) > 0; null when none in range.

    Without events each line is one piece and the result is row by row, in the order of `lines`.
    With events, per account_id: its pieces are its line then one piece after each event, sorted
    outward from m = 1; a piece's coefficients are the line plus the changes of the events before
    it, and within a piece [m_start, m_end] the crossing is the root of a linear function.
    """
    drop = side == "drop"
    boundary = 1.0 - MAX_DROP if drop else 1.0 + MAX_RISE
    start = lines.select("account_id", *LINE, *THRESHOLDS).with_columns(m=pl.lit(1.0))
    if events is None:
        pieces = start.with_columns(m_end=pl.lit(boundary))
    else:
        start = start.with_columns(order=pl.lit(0, pl.UInt8)).collect()
        ev = events.join(start.lazy().select("account_id"), on="account_id", how="semi").select(
            "account_id",
            *[pl.col(d).alias(c) for d, c in zip(DELTA, LINE, strict=True)],
            *[pl.lit(None, pl.Float64).alias(n) for n in THRESHOLDS],
            "m",
            pl.lit(1, pl.UInt8).alias("order"),
        )
        pieces = (
            pl.concat([start.lazy(), ev], how="vertical_relaxed")
            .sort("account_id", "order", "m", descending=[False, False, drop], maintain_order=True)
            .collect()
        )
        same_next = pl.col("account_id").shift(-1) == pl.col("account_id")
        pieces = pieces.with_columns(
            *_segment_cum_sums(pieces, LINE),
            pl.col(THRESHOLDS).forward_fill(),
            m_end=pl.when(same_next).then(pl.col("m").shift(-1)).otherwise(pl.lit(boundary)),
        ).lazy()
    m0, m1 = pl.col("m"), pl.col("m_end")
    lo, hi = pl.min_horizontal(m0, m1), pl.max_horizontal(m0, m1)
    found = []
    for name in THRESHOLDS:
        t = pl.col(name)
        alpha = pl.col("Na") - t * pl.col("Ma")
        beta = pl.col("Nb") - t * pl.col("Mb")
        root = -alpha / beta
        at = (
            pl.when(alpha + beta * m0 <= 0)
            .then(m0)
            .when((beta != 0) & (root >= lo) & (root <= hi))
            .then(root)
        )
        found.append(pl.when(pl.col("Ma") + pl.col("Mb") * at > 0).then(at).alias(name))
    if events is None:
        best = pieces.select("account_id", *found)
    else:
        # the pieces are sorted by account: the root nearest to m = 1 is a reduction over each run
        roots = pieces.select("account_id", *[e.fill_null(float("nan")) for e in found]).collect()
        if roots.height == 0:
            best = roots.lazy()
        else:
            runs = account_sums.Runs.of(roots["account_id"])
            nearest = np.fmax if drop else np.fmin  # NaN (no root in a piece) loses to any number
            reduced = {n: reduce_runs(runs, nearest, roots[n]) for n in THRESHOLDS}
            best = pl.DataFrame({"account_id": runs.ids, **reduced}).lazy()
        best = best.with_columns(pl.col(THRESHOLDS).fill_nan(None))
    move = [
        ((1.0 - pl.col(n)) if drop else (pl.col(n) - 1.0)).clip(TINY, MAX_DROP if drop else MAX_RISE)
        for n in THRESHOLDS
    ]
    return best.select("account_id", *[m.alias(f"{n}_{side}") for m, n in zip(move, THRESHOLDS, strict=True)])


def _segment_cum_sums(frame: pl.DataFrame, columns: list[str]) -> list[pl.Series]:
    """Per run of equal account_id (frame sorted by it): the running sums of `columns`, each run added
    left to right on its own (a loop over the position within a run, not over accounts)."""
    ids = frame["account_id"].to_numpy()
    n = ids.size
    if n == 0:
        return [frame[c] for c in columns]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lengths = np.diff(np.r_[starts, n])
    position = np.arange(n) - np.repeat(starts, lengths)
    by_position = np.argsort(position, kind="stable")
    cut = np.searchsorted(position[by_position], np.arange(1, int(lengths.max()) + 1))
    out = []
    for c in columns:
        x = frame[c].to_numpy().copy()
        for lo, hi in itertools.pairwise(cut):  # rows at position d: add the sum up to d − 1
            at = by_position[lo:hi]
            x[at] += x[at - 1]
        out.append(pl.Series(c, x))
    return out


def pro_distances(
    balances: pl.LazyFrame, orders: pl.LazyFrame, terms: AssetTerms, policy: Policy, kind: str | None = None
) -> pl.DataFrame:
    """account_id and the four distance columns of every account with rows, Pro thresholds (as the
    engine computed them for the Pro candidates)."""
    lines = pro_lines(balances, orders, terms, policy, kind)
    pro = [
        first_crossing(ls.with_columns(**thresholds(policy, pro=True)), ev, side)
        for side, (ls, ev) in lines.items()
    ]
    out = pro[0].join(pro[1], on="account_id", how="full", coalesce=True).collect()
    return out.select(
        "account_id", "liquidation_drop", "liquidation_rise", "margin_call_drop", "margin_call_rise"
    )
