"""Distance to thresholds (docs/rules.md §8.2): four columns of account_risk, `liquidation_drop`,
`liquidation_rise`, `margin_call_drop` and `margin_call_rise`.

Under a uniform move r every asset that is not a stable asset (policy `stable_assets`) has its
price multiplied by m = 1 + r. Every per-row value is then piecewise linear in m: a USDT value is
`value·m` (or constant for a stable asset), a tiered value is `below_k + rate_k·(value·m − lower_k)`
inside slice k, an order's loss `max(0, d0 + d1·m)`. So an account's level is N(m)/M(m) with
N = Na + Nb·m and M = Ma + Mb·m piecewise linear, the pieces bounded by *breakpoints* (where a row's
value crosses a slice boundary, or an order's loss turns on or off): an *event* changes the four
coefficients when the walk away from m = 1 crosses it. Within one piece `N − T·M` is linear and its
root is closed form (`_piece_root`). No grid, no iteration: exact up to float rounding.

* Classic accounts have no breakpoints: N = A_s + m·(A − A_s), M = L_s + m·(L − L_s) from the
  per-account sums and their stable parts (`classic_lines`), one root per side (`first_crossing`,
  vectorized over the accounts).
* Pro accounts (`walk`, called by the row pass on the rows it has read; the distance phase keeps
  the results of the `pro_candidate` accounts): one compiled kernel (numba, compiled.py) walks each
  Pro account's rows: per side (drop: m walks down from 1 to 0; rise: up from 1 to 11) it
  - sums each row's line coefficients just off m = 1 (`_balance_line`, `_order_line`) with
    account_sums.run_sum — numpy's reduceat order, bit for bit — the balance part and the order
    part apart, then added (bal + ord; the "old" formula has no order part);
  - lists the events in a fixed order: the collateral-tier events of the rows (row by row in input
    order, slice k ascending within a row), then the liability-bracket events the same way, then
    the orders' events in input order (`_tier_events`, `_order_event`);
  - sorts them outward from m = 1 with a *stable* sort (ties keep that order: `_stable_order`);
  - walks the pieces: the coefficients are the line plus the events' changes added left to right,
    and the root of each piece that lies inside it (with M > 0) is kept; the first crossing is the
    root nearest to m = 1.
  Every operation is the one the previous vectorized (polars) computation made, in the same order,
  so the results are the same to the bit (tests/test_distances.py checks the kernel against that
  computation, kept as tests/distance_reference.py).

  The kernel is called like the row pass's (account_sums.Runs): once per chunk of the balance rows
  the streaming engine returned, on zero-copy views, then once on the few accounts whose rows
  cross a chunk boundary; each call splits the accounts over the threads (an account is walked by
  one thread, in row order) and skips those not asked for (`slot` -1). A candidate has a liability,
  so it has balance rows: the balance rows drive the walk and each account's open orders are found
  by its id among all the orders (sorted by account, one contiguous array each).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crossmargin import account_sums, decisions, quantities
from crossmargin.account_sums import BLOCKS, Runs, block, nan_as_zero, run_end, run_sum
from crossmargin.compiled import njit, prange
from crossmargin.policy import Policy
from crossmargin.reference_data import BASE, QUOTE, AssetTerms
from crossmargin.scenarios import stable_mask
from crossmargin.tiers import slice_at, tiered_at

DISTANCE_COLUMNS = ["liquidation_drop", "liquidation_rise", "margin_call_drop", "margin_call_rise"]
MAX_DROP = 1.0  # d in (0, 1]: r = -1 is every moving price at 0
MAX_RISE = 10.0  # u in (0, 10]
# a crossing computed at m = 1 itself (the level is above the threshold at r = 0 by the flag, so only
# rounding puts it there) is reported as this smallest move instead of 0
TINY = 1e-15

LINE = ["Na", "Nb", "Ma", "Mb"]
THRESHOLDS = ["liquidation", "margin_call"]
# the level whose distances a walk computes: "new" (net_collateral − open_order_loss) /
# maintenance_margin, "old" net_equity / maintenance_margin, "classic" total_asset / total_liability
KINDS = {"new": 0, "old": 1, "classic": 2}
# the order columns the walk reads (account_sums.ORDER_COLUMNS), in _pro_kernel's order
ORDER_INPUT = [f"asset_idx{BASE}", f"asset_idx{QUOTE}", "is_buy", "remaining_qty", "price"]


# ------------------------------------------------------------------ Classic: the closed form


def classic_lines(computed: pl.LazyFrame) -> pl.LazyFrame:
    """Classic level total_asset/total_liability: A(m) = A_s + m·(A − A_s), L(m) the same (no breakpoints)."""
    a, a_s = pl.col("total_asset_usdt"), pl.col("stable_asset_value_usdt")
    liab, l_s = pl.col("total_liability_usdt"), pl.col("stable_debt_value_usdt")
    return computed.with_columns(Na=a_s, Nb=a - a_s, Ma=l_s, Mb=liab - l_s)


def first_crossing(lines: pl.LazyFrame, side: str) -> pl.LazyFrame:
    """For each threshold column of `lines` (Na, Nb, Ma, Mb, liquidation, margin_call), row by row:
    the move away from m = 1 (d = 1 − m for "drop", u = m − 1 for "rise") of the first m where
    N(m) − T·M(m) ≤ 0 with M(m) > 0 on the one piece [1, boundary]; null when none in range.
    (`_piece_root` is the same computation for one piece, compiled.)"""
    drop = side == "drop"
    m0, m1 = pl.lit(1.0), pl.lit(1.0 - MAX_DROP if drop else 1.0 + MAX_RISE)
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
        found.append(pl.when(pl.col("Ma") + pl.col("Mb") * at > 0).then(at))
    move = [
        ((1.0 - m) if drop else (m - 1.0)).clip(TINY, MAX_DROP if drop else MAX_RISE).alias(f"{n}_{side}")
        for m, n in zip(found, THRESHOLDS, strict=True)
    ]
    return lines.select(move)


def thresholds(policy: Policy, pro: bool) -> dict[str, pl.Expr]:
    """Liquidation and margin-call thresholds of the account's mode (margin call: at least the liquidation
    one, as the margin_call flag is also true of a liquidated account)."""
    if pro:
        liq, mc = pl.lit(policy.pro_liquidation), pl.lit(policy.pro_margin_call)
    else:
        liq = decisions.classic_threshold(policy, "liquidation")
        mc = decisions.classic_threshold(policy, "margin_call")
    return {"liquidation": liq, "margin_call": pl.max_horizontal(liq, mc)}


# ------------------------------------------------------------------ Pro: one row at a time, compiled


@njit(inline=True)
def _slice_of(x: float, asset_idx: int, lower: np.ndarray, k_max: int) -> int:
    """tiers.slice_at, with a NaN amount in the top slice: the slice polars gave it (in its comparisons
    NaN is above every number). Only a balance row of zeros at a NaN price has one."""
    if np.isnan(x):
        return asset_idx * k_max + k_max - 1
    return slice_at(x, asset_idx, lower, k_max)


@njit(inline=True)
def _balance_line(kind, still, v, dv, cs, ls, coll, liab, out, at):
    """out[:, at] = (Na, Nb, Ma, Mb) of one balance row just off m = 1 (NaN as 0): the row's USDT values
    v, dv (NaN as 0), its collateral slice cs and debt slice ls, `still` for a stable asset. A tiered
    value is `below + rate·(value − lower)` for a stable row, else `(below − rate·lower) + (rate·value)·m`."""
    c_lower, c_rate, c_below = coll
    l_lower, l_mm, l_below = liab
    if kind == 2:  # classic: total_asset / total_liability
        na, nb = (v, 0.0) if still else (0.0, v)
        ma, mb = (dv, 0.0) if still else (0.0, dv)
    else:
        if kind == 0:  # the collateral value
            if still:
                ca, cb = tiered_at(v, cs, c_lower, c_rate, c_below), 0.0
            else:
                ca, cb = c_below[cs] - c_rate[cs] * c_lower[cs], c_rate[cs] * v
        else:  # the asset value
            ca, cb = (v, 0.0) if still else (0.0, v)
        la, lb = (dv, 0.0) if still else (0.0, dv)
        na, nb = ca - la, cb - lb
        if still:
            ma, mb = tiered_at(dv, ls, l_lower, l_mm, l_below), 0.0
        else:
            ma, mb = l_below[ls] - l_mm[ls] * l_lower[ls], l_mm[ls] * dv
    out[0, at] = nan_as_zero(na)
    out[1, at] = nan_as_zero(nb)
    out[2, at] = nan_as_zero(ma)
    out[3, at] = nan_as_zero(mb)


@njit(inline=True)
def _add_event(ev_m, ev_d, n, m, d0, d1, d2, d3):
    ev_m[n] = m
    ev_d[0, n], ev_d[1, n], ev_d[2, n], ev_d[3, n] = d0, d1, d2, d3
    return n + 1


@njit(inline=True)
def _tier_events(v, cs, asset_idx, table, into_n, drop_m, drop_d, n_drop, rise_m, rise_d, n_rise):
    """The breakpoints of one moving row's tiered value (v > 0; cs its slice at m = 1): slice k's lower
    bound is crossed at m = lower_k / v, changing the row's (intercept, slope) from slice k − 1's to
    slice k's. Below the row's slice: a drop event (walking down leaves slice k: minus the change),
    above it within the largest rise: a rise event. Only rows with a breakpoint in reach (above their
    asset's first slice, or the next slice's lower bound within the largest rise) are looked at.
    Into N (`into_n`: collateral) or M (liability). Returns the new event counts."""
    k_max, lower, rate, below = table
    base = asset_idx * k_max
    k_now = cs - base
    in_reach = k_now > 0 or (k_now < k_max - 1 and lower[min(cs + 1, lower.size - 1)] <= (1.0 + MAX_RISE) * v)
    if not in_reach:
        return n_drop, n_rise
    for k in range(1, k_max):
        at = base + k
        if not np.isfinite(lower[at]):
            continue
        m = lower[at] / v
        da = (below[at] - rate[at] * lower[at]) - (below[at - 1] - rate[at - 1] * lower[at - 1])
        db = rate[at] * v - rate[at - 1] * v
        if at <= cs:
            a, b = -da, -db
            if into_n:
                n_drop = _add_event(drop_m, drop_d, n_drop, min(m, 1.0), a, b, 0.0, 0.0)
            else:
                n_drop = _add_event(drop_m, drop_d, n_drop, min(m, 1.0), 0.0, 0.0, a, b)
        elif m <= 1.0 + MAX_RISE:
            if into_n:
                n_rise = _add_event(rise_m, rise_d, n_rise, max(m, 1.0), da, db, 0.0, 0.0)
            else:
                n_rise = _add_event(rise_m, rise_d, n_rise, max(m, 1.0), 0.0, 0.0, da, db)
    return n_drop, n_rise


@njit(inline=True)
def _contribution(active: bool, c: float) -> float:
    return -c if active else 0.0


@njit(inline=True)
def _order_terms(is_buy, qty, limit, pb, rb, b_moves, pq, rq, q_moves):
    """(d0, d1) of one order: its given − received is d0 + d1·m (the legs of moving assets scale with
    m), NaN as 0 — the legs of quantities.order_loss_usdt."""
    q, b = quantities.order_legs_usdt(qty, limit, pb, rb, pq, rq)
    gq = q if is_buy else -q  # the quote leg's part of given − received
    gb = -b if is_buy else b
    d0 = (0.0 if q_moves else gq) + (0.0 if b_moves else gb)
    d1 = (gq if q_moves else 0.0) + (gb if b_moves else 0.0)
    return nan_as_zero(d0), nan_as_zero(d1)


@njit(inline=True)
def _order_line(d0, d1, drop):
    """The open-order loss max(0, d0 + d1·m) into N (with a minus), one side: (Na, Nb) just off
    m = 1, whether it has a breakpoint m0 = −d0/d1 on that side, m0 and the change (dNa, dNb) there."""
    has_m0 = d1 != 0
    m0 = -d0 / d1 if has_m0 else np.nan
    on_below = (d0 > 0) if d1 == 0 else (d1 < 0)  # loss active for m < m0
    on_above = (d0 > 0) if d1 == 0 else (d1 > 0)  # for m > m0
    if drop:  # just below m = 1
        start = on_below if (has_m0 and m0 >= 1.0) else on_above
        crossed = has_m0 and m0 > 0.0 and m0 < 1.0
        before, after = on_above, on_below
    else:  # just above m = 1
        start = on_above if (has_m0 and m0 <= 1.0) else on_below
        crossed = has_m0 and m0 > 1.0 and m0 <= 1.0 + MAX_RISE
        before, after = on_below, on_above
    na, nb = _contribution(start, d0), _contribution(start, d1)
    dna = _contribution(after, d0) - _contribution(before, d0)
    dnb = _contribution(after, d1) - _contribution(before, d1)
    return na, nb, crossed, m0, dna, dnb


@njit(inline=True)
def _stable_order(ev_m, n, descending, order):
    """order[:n] = the events 0..n−1 sorted by m (descending for the drop side), ties in list order."""
    if n <= 32:  # insertion sort: stable
        for i in range(n):
            order[i] = i
        for i in range(1, n):
            e = order[i]
            j = i - 1
            while j >= 0 and ((ev_m[order[j]] < ev_m[e]) if descending else (ev_m[order[j]] > ev_m[e])):
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = e
    else:  # merge sort: stable
        key = -ev_m[:n] if descending else ev_m[:n].copy()
        order[:n] = np.argsort(key, kind="mergesort")


@njit(inline=True)
def _piece_root(na, nb, ma, mb, t, m0, m1):
    """The first m of the piece [m0, m1] (walked from m0) where N − t·M ≤ 0 with M > 0, else NaN:
    m0 itself, or the root of the linear N − t·M inside the piece (first_crossing, one piece)."""
    lo, hi = min(m0, m1), max(m0, m1)
    alpha = na - t * ma
    beta = nb - t * mb
    root = -alpha / beta
    if alpha + beta * m0 <= 0:
        at = m0
    elif beta != 0 and root >= lo and root <= hi:
        at = root
    else:
        return np.nan
    return at if ma + mb * at > 0 else np.nan


@njit(inline=True)
def _walk(line, ev_m, ev_d, n, drop, liq, mc, order, out, r):
    """One side of one account: pieces sorted outward from m = 1, the coefficients the line plus the
    changes of the events so far (added left to right), the root nearest to m = 1 per threshold
    (NaN loses: fmax for drop, fmin for rise); out[.., r] = its move (d = 1 − m, u = m − 1) clipped
    to [TINY, MAX], NaN when none."""
    _stable_order(ev_m, n, drop, order)
    boundary = 1.0 - MAX_DROP if drop else 1.0 + MAX_RISE
    na, nb, ma, mb = line[0], line[1], line[2], line[3]
    m0 = 1.0
    best_l, best_m = np.nan, np.nan
    for p in range(n + 1):
        if p > 0:
            e = order[p - 1]
            na, nb, ma, mb = ev_d[0, e] + na, ev_d[1, e] + nb, ev_d[2, e] + ma, ev_d[3, e] + mb
            m0 = ev_m[e]
        m1 = ev_m[order[p]] if p < n else boundary
        at_l = _piece_root(na, nb, ma, mb, liq, m0, m1)
        at_m = _piece_root(na, nb, ma, mb, mc, m0, m1)
        best_l, best_m = _nearer(best_l, at_l, drop), _nearer(best_m, at_m, drop)
    side = 0 if drop else 1
    out[side, r] = _move(best_l, drop)
    out[2 + side, r] = _move(best_m, drop)


@njit(inline=True)
def _nearer(best: float, m: float, drop: bool) -> float:
    """The root nearer to m = 1 of two (the larger for drop, the smaller for rise); NaN (none) loses:
    numpy's fmax / fmin."""
    if np.isnan(m):
        return best
    if np.isnan(best):
        return m
    if drop:
        return m if m > best else best
    return m if m < best else best


@njit(inline=True)
def _move(m: float, drop: bool) -> float:
    """The move of the crossing m away from 1 (d = 1 − m, u = m − 1) clipped to [TINY, MAX]; NaN: none."""
    if np.isnan(m):
        return np.nan
    if drop:
        return min(max(1.0 - m, TINY), MAX_DROP)
    return min(max(m - 1.0, TINY), MAX_RISE)


@njit()
def _account(
    r, s, n, asset, holding, debt,  # run r: its balance rows s..s+n-1
    o0, o_hi, liq, mc,  # its orders o0..o_hi-1 and its two thresholds
    base, quote, is_buy, qty, limit,  # the open orders
    kind, price, price_null, stable, ratio, coll, liab,
    rows, values, slices, o_line, o_d, drop_m, drop_d, rise_m, rise_d, order, line, out,  # buffers; out
):  # fmt: skip
    """One account (run r): out[(0, 1, 2, 3), r] = liquidation_drop, liquidation_rise,
    margin_call_drop, margin_call_rise (NaN: none in range). `coll`/`liab`: (k_max, lower, rate,
    below) of the collateral tiers and the maintenance-margin brackets; the buffers hold at least
    the account's rows, orders and events."""
    n_assets = stable.size
    c_k, c_lower, c_rate, c_below = coll
    l_k, l_lower, l_rate, l_below = liab
    for i in range(n):
        a = asset[s + i]
        if a >= n_assets or price_null[a]:  # no price: every value null, so 0; no breakpoint
            slices[0, i], slices[1, i] = -1, -1
            values[0, i], values[1, i] = 0.0, 0.0
            for k in range(4):
                rows[k, i] = 0.0
            continue
        v_raw = quantities.asset_value_usdt(holding[s + i], price[a])
        dv_raw = quantities.debt_value_usdt(debt[s + i], price[a])
        cs, ls = _slice_of(v_raw, a, c_lower, c_k), _slice_of(dv_raw, a, l_lower, l_k)
        v, dv = nan_as_zero(v_raw), nan_as_zero(dv_raw)
        slices[0, i], slices[1, i], values[0, i], values[1, i] = cs, ls, v, dv
        _balance_line(
            kind,
            stable[a],
            v,
            dv,
            cs,
            ls,
            (c_lower, c_rate, c_below),
            (l_lower, l_rate, l_below),
            rows,
            i,
        )
    for k in range(4):
        line[k] = run_sum(rows[k], n)
    # events: collateral tiers, then liability brackets (row by row, k ascending), then orders
    n_drop, n_rise, n_o = 0, 0, 0
    if kind != 2:
        for t in range(2):
            if (c_k if t == 0 else l_k) < 2 or (t == 0 and kind != 0):  # none, or not N's
                continue
            for i in range(n):
                a = asset[s + i]
                if slices[t, i] < 0 or stable[a] or not values[t, i] > 0:
                    continue
                n_drop, n_rise = _tier_events(
                    values[t, i],
                    slices[t, i],
                    a,
                    (c_k, c_lower, c_rate, c_below) if t == 0 else (l_k, l_lower, l_rate, l_below),
                    t == 0,
                    drop_m,
                    drop_d,
                    n_drop,
                    rise_m,
                    rise_d,
                    n_rise,
                )
    if kind == 0:
        n_o = o_hi - o0
        for j in range(n_o):
            bi, qi = base[o0 + j], quote[o0 + j]
            known_b, known_q = bi < n_assets, qi < n_assets
            o_d[0, j], o_d[1, j] = _order_terms(
                is_buy[o0 + j],
                qty[o0 + j],
                limit[o0 + j],
                price[bi] if known_b else np.nan,
                ratio[bi] if known_b else np.nan,
                known_b and not stable[bi],
                price[qi] if known_q else np.nan,
                ratio[qi] if known_q else np.nan,
                known_q and not stable[qi],
            )
        for side in range(2):
            for j in range(n_o):
                na, nb, crossed, m0, dna, dnb = _order_line(o_d[0, j], o_d[1, j], side == 0)
                o_line[2 * side, j], o_line[2 * side + 1, j] = na, nb
                if crossed and side == 0:
                    n_drop = _add_event(drop_m, drop_d, n_drop, m0, dna, dnb, 0.0, 0.0)
                elif crossed:
                    n_rise = _add_event(rise_m, rise_d, n_rise, m0, dna, dnb, 0.0, 0.0)
    for side in range(2):
        side_line = line.copy()
        if kind == 0:  # bal + ord (0 without orders); an order's M part is 0
            has = n_o > 0
            side_line[0] = line[0] + (run_sum(o_line[2 * side], n_o) if has else 0.0)
            side_line[1] = line[1] + (run_sum(o_line[2 * side + 1], n_o) if has else 0.0)
            side_line[2] = line[2] + 0.0
            side_line[3] = line[3] + 0.0
        if side == 0:
            _walk(side_line, drop_m, drop_d, n_drop, True, liq, mc, order, out, r)
        else:
            _walk(side_line, rise_m, rise_d, n_rise, False, liq, mc, order, out, r)


@njit(parallel=True)
def _pro_kernel(
    starts, stop, asset, holding, debt,  # balance rows: run r is starts[r]..
    slot,  # per run: the walked account it is (its place in the arrays below), or -1: not walked
    o_lo, o_hi, liq, mc,  # per walked account: its orders o_lo..o_hi-1 and its two thresholds
    base, quote, is_buy, qty, limit,  # the open orders (all of the walked accounts', by account)
    kind, price, price_null, stable, ratio, coll, liab, out, bits, run_idx,
):  # fmt: skip
    """`_account` for every walked run (account), the runs cut into contiguous blocks spread over the
    threads (prange), each with its buffers: the kernel convention of account_sums, but `out` is by
    walked account (`slot`), and `bits` is not used."""
    n_runs = starts.size
    c_k, l_k = coll[0], liab[0]
    blocks = min(n_runs, BLOCKS)
    for b in prange(blocks):
        r0, r1 = block(b, blocks, n_runs)
        longest, most_orders = 1, 1
        for r in range(r0, r1):
            g = slot[run_idx[r]]
            if g >= 0:
                longest = max(longest, run_end(starts, stop, r) - starts[r])
                most_orders = max(most_orders, o_hi[g] - o_lo[g])
        rows = np.empty((4, longest))  # per row: the line coefficients
        values = np.empty((2, longest))  # v, dv (NaN as 0)
        slices = np.empty((2, longest), dtype=np.int64)  # collateral, debt slice; -1: none
        o_line = np.empty((4, most_orders))  # per order: drop (Na, Nb), rise (Na, Nb)
        o_d = np.empty((2, most_orders))
        room = longest * (c_k + l_k) + most_orders
        drop_m, rise_m = np.empty(room), np.empty(room)
        drop_d, rise_d = np.empty((4, room)), np.empty((4, room))
        order = np.empty(room, dtype=np.int64)
        line = np.empty(4)
        for r in range(r0, r1):
            g = slot[run_idx[r]]
            if g < 0:
                continue
            s = starts[r]
            n = run_end(starts, stop, r) - s
            _account(
                g, s, n, asset, holding, debt, o_lo[g], o_hi[g], liq[g], mc[g],
                base, quote, is_buy, qty, limit, kind, price, price_null, stable, ratio, coll, liab,
                rows, values, slices, o_line, o_d, drop_m, drop_d, rise_m, rise_d, order, line, out,
            )  # fmt: skip


# ------------------------------------------------------------------ Pro: the rows, and the calls


def pro_candidate() -> pl.Expr:
    """A Pro account whose level can cross: a liability, not yet liquidated."""
    return quantities.is_pro() & (pl.col("total_liability_usdt") > 0) & ~pl.col("liquidation")


def _asset_params(terms: AssetTerms, policy: Policy) -> tuple:
    """Per asset_idx, as kernel arrays: price (NaN if null), price is null, stable, first collateral
    ratio (NaN if null), the collateral tiers and the maintenance-margin brackets (k_max, lower, rate, below)."""
    price = terms.frame["price_usdt"].cast(pl.Float64)
    c, li = terms.collateral, terms.liability
    return (
        price.to_numpy(),
        price.is_null().to_numpy(),
        stable_mask(terms, policy).fill_null(False).to_numpy(),
        terms.frame["first_collateral_ratio"].cast(pl.Float64).to_numpy(),
        (c.k_max, *c.arrays("collateral_ratio")),
        (li.k_max, *li.arrays("maintenance_margin_rate")),
    )


def walk(
    bal: pl.DataFrame,
    ords: pl.DataFrame,
    ids: pl.Series,
    terms: AssetTerms,
    policy: Policy,
    kind: str | None = None,
    levels: tuple[np.ndarray, np.ndarray] | None = None,
    runs: Runs | None = None,
) -> pl.DataFrame:
    """account_id and the four DISTANCE_COLUMNS (null: none in range) of the accounts `ids` (sorted)
    with balance rows, from their rows: the level `kind` (KINDS; default: the Pro formula in force)
    against `levels` = (liquidation, margin_call) thresholds per account of `ids` (default: the Pro
    ones). `bal` (BALANCE_COLUMNS) and `ords` (ORDER_COLUMNS) as the kernels read them (asset
    indices filled: account_sums.balance_inputs, order_inputs), in account order (account_sums.
    in_account_order; `runs`: the runs of `bal`, if known), may hold other accounts' rows too: the
    row pass hands over all of them, and only the runs of `ids` are walked."""
    kind = kind or ("new" if policy.new_formula else "old")
    empty = pl.DataFrame(schema={"account_id": pl.Int64, **dict.fromkeys(DISTANCE_COLUMNS, pl.Float64)})
    if bal.height == 0:
        return empty
    keys = ids.unique().sort().to_numpy()
    runs = runs if runs is not None else Runs.of(bal["account_id"])
    slot = account_sums.positions(runs.ids, keys)  # per run: its place among the keys, or -1
    found = np.flatnonzero(slot >= 0)  # the keys that have balance rows, as runs
    if found.size == 0:
        return empty
    if levels is None:
        liq = np.full(keys.size, policy.pro_liquidation)
        mc = np.full(keys.size, max(policy.pro_margin_call, policy.pro_liquidation))
    else:
        at = np.searchsorted(ids.to_numpy(), keys)  # `ids` sorted, as computed is
        liq, mc = levels[0][at], levels[1][at]
    ord_ids = ords["account_id"].to_numpy()
    o_lo, o_hi = np.searchsorted(ord_ids, keys, "left"), np.searchsorted(ord_ids, keys, "right")
    if kind != "new":
        o_hi = o_lo
    order_arrays = [ords[c].to_numpy() for c in ORDER_INPUT]
    params = (KINDS[kind], *_asset_params(terms, policy))
    columns = account_sums.BALANCE_COLUMNS[1:]
    out, _ = runs.apply(
        _pro_kernel,
        bal,
        columns,
        (len(DISTANCE_COLUMNS), keys.size),
        slot,
        o_lo,
        o_hi,
        liq,
        mc,
        *order_arrays,
        *params,
    )
    walked = slot[found]
    return pl.DataFrame(
        {"account_id": keys[walked], **{c: out[i][walked] for i, c in enumerate(DISTANCE_COLUMNS)}}
    ).with_columns(pl.col(DISTANCE_COLUMNS).fill_nan(None))


# ------------------------------------------------------------------ the four columns


def walked(computed: pl.DataFrame, pro_d: pl.DataFrame) -> pl.LazyFrame:
    """The walk's results `_pro_{column}` row for row beside the accounts of `computed` (sorted;
    an id may repeat), null for an account not walked: a left join that keeps the rows and their
    order. The walk returns its accounts sorted and unique, flagged so here: with the account pass
    flagged sorted too, polars joins the two as a merge walk."""
    pro = pro_d.lazy().select(
        pl.col("account_id").set_sorted(), *[pl.col(c).alias(f"_pro_{c}") for c in DISTANCE_COLUMNS]
    )
    return (
        computed.lazy()
        .select("account_id")
        .join(pro, on="account_id", how="left", maintain_order="left")
        .drop("account_id")
    )


def distances(computed: pl.DataFrame, pro_d: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """`computed` (the account pass) with liquidation_drop/_rise and margin_call_drop/_rise.

    0 when the account is already at or below that threshold at r = 0 (its liquidation / margin_call
    flag); else the first crossing; null when none in range (so always for a level that stays +inf).
    Classic accounts: closed form from their sums; Pro accounts: `pro_d`, the walk of their rows
    (`walk`, made in the row pass), kept for the `pro_candidate` accounts.
    """
    # only the few columns needed are read (no copy of `computed`; the four results are put beside it)
    need = [
        "account_id",
        "margin_mode",
        "classic_leverage",
        "liquidation",
        "margin_call",
        "total_liability_usdt",
    ]
    sums = ["total_asset_usdt", "stable_asset_value_usdt", "stable_debt_value_usdt"]
    keys = computed.lazy().select(*need, *sums)
    classic = classic_lines(keys).with_columns(**thresholds(policy, pro=False))
    classic_d = pl.concat([first_crossing(classic, side) for side in ("drop", "rise")], how="horizontal")
    both = pl.concat([keys.select(need), classic_d, walked(computed, pro_d)], how="horizontal")
    out = []
    for c in DISTANCE_COLUMNS:
        flag = "liquidation" if c.startswith("liquidation") else "margin_call"
        out.append(
            pl.when(pl.col(flag))
            .then(pl.lit(0.0))
            .when(pro_candidate())
            .then(pl.col(f"_pro_{c}"))
            .when(quantities.is_pro())
            .then(pl.lit(None, pl.Float64))
            .otherwise(pl.col(c))
            .alias(c)
        )
    result = both.select(out).collect()
    if result.height != computed.height:  # pragma: no cover - guards the row-for-row construction
        raise AssertionError("distances must have one row per row of the account pass")
    return computed.with_columns(result.get_columns())
