"""Moving an account along a path until a condition starts to hold: the distances to thresholds, the
top-ups and the orders to cancel (docs/rules.md §8.2, §9).

A *path* is a family of changes to the account, by t ≥ 0 (t = 0: the account as it is):
- DROP: every non-stable price times m = 1 − t, t in [0, 1];
- RISE: every non-stable price times m = 1 + t, t in [0, 10];
- DEPOSIT: a deposit of t USDT, t ≥ 0 (unbounded);
- CANCEL: its t open orders with the largest loss cancelled (ties: the smaller order_id first).

A *slot* is a condition (rules/thresholds.Condition: a measure of rules/levels.MEASURES at or below,
or above, a threshold) followed along one path; its result is the least t at which the condition holds:
0 when it holds already, NaN when it holds nowhere on the path.

Along DROP, RISE and DEPOSIT every per-row value is piecewise linear in t (a USDT value is linear, a
tiered value is linear inside one slice, an order's loss is linear while given − received keeps its
sign), so a measure's numerator N and denominator M are linear between *breakpoints*: where a row's
value crosses a slice boundary of its tier table, or an order's given − received crosses 0. Only the
breakpoints of the sums a followed measure reads count (`reads` of each measure). The account is
valued (kernels/valuation.py, the one valuation) at its breakpoints in order; the condition, judged at
each as the decisions judge it (the level, one division, against the threshold), first holds at the end
of some piece, and inside that piece g = N − T·M is linear: the result is the root of g there, by
linear interpolation between the piece's ends. No grid and no iteration: exact up to rounding. The last
piece of DEPOSIT is unbounded: g is valued once more far along it, and extended along its line.
CANCEL is a count: the condition is monotone in it (cancelling an order never raises the loss), so the
least count is found by bisection.
"""

from __future__ import annotations

import numpy as np

from crossmargin.kernels.compiled import jitable, kernel
from crossmargin.kernels.runs import longest_run, run_end
from crossmargin.kernels.valuation import COLLATERAL, MARGINS, moved_price, value_balances, value_orders
from crossmargin.rules.levels import measures, ratio
from crossmargin.rules.quantities import Quantities, order_given_minus_received_usdt, order_loss_usdt

DROP, RISE, DEPOSIT, CANCEL = 0, 1, 2, 3
PATHS = {"drop": DROP, "rise": RISE, "deposit": DEPOSIT, "cancel": CANCEL}
MAX_DROP = 1.0  # r = -1: every moving price at 0
MAX_RISE = 10.0  # r = +10
ORDERS = 4  # `needs` bit of a measure that reads open_order_loss (COLLATERAL, MARGINS: valuation.py)
FOLLOWED = 8  # a path's `need` bit: some slot follows the path
# a crossing computed at t = 0 itself (the condition does not hold at t = 0, so only rounding puts it
# there) is reported as this smallest move instead of 0
TINY = 1e-15


@jitable
def path_point(path: int, t: float) -> tuple[float, float]:
    """(m, deposit) at point t of a path."""
    if path == DROP:
        return 1.0 - t, 0.0
    if path == RISE:
        return 1.0 + t, 0.0
    return 1.0, t


@jitable
def holds(level: float, threshold: float, above: bool) -> bool:
    """The condition at one point, as the decisions judge it: the level against the threshold."""
    return level > threshold if above else level <= threshold


@jitable
def interpolated_root(t_a: float, g_a: float, t_b: float, g_b: float) -> float:
    """The root of g, linear on [t_a, t_b], from its values at the ends (clipped into the piece)."""
    if g_a == g_b:
        return t_b
    share = g_a / (g_a - g_b)
    share = min(max(share, 0.0), 1.0)
    return t_a + (t_b - t_a) * share


@jitable
def _add(buf: np.ndarray, n: int, path: int, m: float) -> int:
    """Adds the point of a breakpoint at price multiplier m to buf[n] if it lies on the path."""
    if path == DROP and 0.0 < m < 1.0:
        buf[n] = 1.0 - m
        return n + 1
    if path == RISE and 1.0 < m <= 1.0 + MAX_RISE:
        buf[n] = m - 1.0
        return n + 1
    return n


@jitable
def sort_by(key: np.ndarray, tie: np.ndarray, n: int, order: np.ndarray) -> None:
    """order[:n] = the items 0..n-1 ascending by (key, tie): a shell sort (n^1.3; the keys are unique
    with their tie-breakers, so stability does not matter; written out rather than numpy's sorts,
    which cost seconds to compile)."""
    for i in range(n):
        order[i] = i
    gap = 1
    while gap < n // 3:
        gap = 3 * gap + 1
    while gap >= 1:
        for i in range(gap, n):
            x = order[i]
            j = i
            while j >= gap and (
                key[order[j - gap]] > key[x]
                or (key[order[j - gap]] == key[x] and tie[order[j - gap]] > tie[x])
            ):
                order[j] = order[j - gap]
                j -= gap
            order[j] = x
        gap //= 3


@kernel
def search_kernel(
    starts, stop, asset, holding, debt,  # balance rows: run r is starts[r]..
    o_lo, o_hi, base, quote, is_buy, qty, limit, order_id,  # orders o_lo[g]..o_hi[g]-1 of account g
    asset_v, liability_v, collateral_v, maintenance_v, initial_v, loss_v,  # each account's sums (row pass)
    klass, measure, threshold, above, path,  # each account's class; per slot and class: the measure's
    # index and threshold; per slot: its direction and path
    needs,  # per measure: the sums it reads (COLLATERAL, MARGINS, ORDERS bits)
    price, moving, ratio_first, usdt, coll, liab,
    out,  # (slots, accounts): the least t at which the slot's condition holds; NaN: none on its path
    run_idx,  # per run: its account g, or -1 (not asked for)
):  # fmt: skip
    """Every slot of every account asked for (module docstring); an account with no balance rows is a
    run of no rows. An account whose conditions all hold already (or cannot) costs a few comparisons;
    the others are followed along their paths, in this function's body (a call per account that passes
    the kernel's two dozen arrays would cost more than most accounts' search)."""
    n_slots = path.size
    most_rows, most_orders = longest_run(starts, stop), 1
    for r in range(starts.size):
        if run_idx[r] >= 0:
            most_orders = max(most_orders, o_hi[run_idx[r]] - o_lo[run_idx[r]])
    room = most_rows * (coll[0] + liab[0]) + most_orders + coll[0]
    points, order = np.empty(room), np.empty(room, dtype=np.int64)
    ties = np.empty(room, dtype=np.int64)
    cancelled = np.empty(most_orders, dtype=np.bool_)
    g_at, m_at, open_ = np.empty(n_slots), np.empty(n_slots), np.empty(n_slots, dtype=np.bool_)
    n_assets, none = price.size, cancelled[:0]
    for r in range(starts.size):
        g = run_idx[r]
        if g < 0:
            continue
        q0 = Quantities(
            asset_v[g], liability_v[g], collateral_v[g], maintenance_v[g], initial_v[g], loss_v[g]
        )
        c = klass[g]
        at_start = measures(q0)
        todo = False
        for j in range(n_slots):
            out[j, g], open_[j] = np.nan, False
            k = measure[j, c]
            if k < 0:
                continue
            numerator, denominator = at_start[k]
            if holds(ratio(numerator, denominator), threshold[j, c], above[j]):
                out[j, g] = 0.0
            elif denominator != 0 and not (path[j] == DEPOSIT and usdt < 0):
                open_[j] = todo = True  # M = 0 stays 0 on every path: a level of +inf never crosses
        if not todo:
            continue
        # the open slots, path by path: the breakpoints, then piece by piece along them, valuing the
        # account at each (the one valuation), to the first piece whose end satisfies a slot's
        # condition, where its result is the root of g = N − T·M; DEPOSIT's last piece along its line
        s, e, ol, oh = starts[r], run_end(starts, stop, r), o_lo[g], o_hi[g]
        for p in (DROP, RISE, DEPOSIT, CANCEL):
            need = 0
            for j in range(path.size):
                if open_[j] and path[j] == p:
                    need |= needs[measure[j, c]] | FOLLOWED
            if need == 0:
                continue
            if p == CANCEL:
                _cancel(g, c, ol, oh, base, quote, is_buy, qty, limit, order_id, q0, measure, threshold, above, path,
                        price, moving, ratio_first, cancelled, points, order, ties, open_, out)  # fmt: skip
                continue
            # the breakpoints of path p (unsorted)
            n = 0
            if p == DEPOSIT:
                if need & COLLATERAL:
                    held = 0.0
                    for i in range(s, e):
                        if asset[i] == usdt:
                            held = holding[i] * price[usdt]
                            break
                    for k in range(1, coll[0]):
                        d = coll[1][usdt * coll[0] + k] - held
                        if np.isfinite(d) and d > 0.0:
                            points[n] = d
                            n += 1
            else:
                for i in range(s, e):
                    a = asset[i]
                    if a >= n_assets or not moving[a]:
                        continue
                    if need & COLLATERAL:
                        n = _table_breakpoints(points, n, p, holding[i] * price[a], a, coll[0], coll[1])
                    if need & MARGINS:
                        n = _table_breakpoints(points, n, p, debt[i] * price[a], a, liab[0], liab[1])
                if need & ORDERS:
                    for j in range(ol, oh):
                        b, q = base[j], quote[j]
                        if b >= n_assets or q >= n_assets or not (moving[b] or moving[q]):
                            continue
                        at0 = _given_minus_received(
                            j, 0.0, base, quote, is_buy, qty, limit, price, moving, ratio_first
                        )
                        at1 = _given_minus_received(
                            j, 1.0, base, quote, is_buy, qty, limit, price, moving, ratio_first
                        )
                        if (
                            at0 != at1 and np.isfinite(at0) and np.isfinite(at1)
                        ):  # linear in m: 0 at at0 / (at0 − at1)
                            n = _add(points, n, p, at0 / (at0 - at1))
            for i in range(n):  # equal points: any order
                ties[i] = 0
            sort_by(points, ties, n, order)
            # piece by piece
            for j in range(path.size):
                if open_[j] and path[j] == p:
                    numerator, denominator = at_start[measure[j, c]]
                    g_at[j], m_at[j] = numerator - threshold[j, c] * denominator, denominator
            t_prev = 0.0
            end = MAX_DROP if p == DROP else (MAX_RISE if p == RISE else np.inf)
            for i in range(n + 1):
                t = points[order[i]] if i < n else end
                if not np.isfinite(t):  # DEPOSIT's last piece: value once more far along it
                    reach = 1.0
                    for j in range(path.size):
                        if open_[j] and path[j] == p:
                            reach = max(reach, 4.0 * abs(g_at[j]))
                    t = t_prev + reach
                if t <= t_prev and i < n:
                    continue
                m, deposit = path_point(p, t)
                bal = value_balances(
                    asset, holding, debt, s, e, price, moving, m, deposit, usdt, coll, liab, need & 3
                )
                loss = q0.open_order_loss_usdt
                if p != DEPOSIT and need & ORDERS:
                    loss = value_orders(
                        base, quote, is_buy, qty, limit, ol, oh, price, moving, m, ratio_first, none
                    )
                at = measures(Quantities(bal[0], bal[1], bal[2], bal[3], bal[4], loss))
                left = 0
                for j in range(path.size):
                    if not (open_[j] and path[j] == p):
                        continue
                    numerator, denominator = at[measure[j, c]]
                    g_t = numerator - threshold[j, c] * denominator
                    # crossed in the piece: g changed sign (a level whose denominator reaches 0 at the piece's
                    # end is +inf there, yet crossed inside it), or the level holds at the end
                    crossed = g_t > 0 if above[j] else g_t <= 0
                    if crossed or holds(ratio(numerator, denominator), threshold[j, c], above[j]):
                        root = interpolated_root(t_prev, g_at[j], t, g_t)
                        share = (root - t_prev) / (t - t_prev) if t > t_prev else 1.0
                        if above[j] or m_at[j] * (1.0 - share) + denominator * share > 0:  # M at the root
                            out[j, g], open_[j] = _reported(p, root), False
                    elif i == n and p == DEPOSIT and g_t > g_at[j]:  # extend the last line to its root
                        out[j, g], open_[j] = t_prev - g_at[j] / ((g_t - g_at[j]) / (t - t_prev)), False
                    g_at[j], m_at[j] = g_t, denominator
                    if open_[j]:
                        left += 1
                t_prev = t
                if left == 0:
                    break
            for j in range(path.size):  # not found on the path
                if path[j] == p:
                    open_[j] = False


@jitable
def _given_minus_received(j, m, base, quote, is_buy, qty, limit, price, moving, ratio_first):
    """Order j's given − received with every non-stable price times m."""
    b, q = base[j], quote[j]
    return order_given_minus_received_usdt(
        is_buy[j], qty[j], limit[j], moved_price(price, moving, m, b), ratio_first[b],
        moved_price(price, moving, m, q), ratio_first[q],
    )  # fmt: skip


@jitable
def _table_breakpoints(buf, n, path, value, a, k_max, lower):
    """The points of `path` where a row's value (`value` at m = 1, linear in m) crosses a slice
    boundary of asset a's table (its K slices' lower bounds in `lower`)."""
    if value > 0.0:
        for k in range(1, k_max):
            bound = lower[a * k_max + k]
            if np.isfinite(bound):
                n = _add(buf, n, path, bound / value)
    return n


@jitable
def _reported(p: int, t: float) -> float:
    """A move is reported in [TINY, its path's end]; a deposit as found."""
    if p == DROP:
        return min(max(t, TINY), MAX_DROP)
    if p == RISE:
        return min(max(t, TINY), MAX_RISE)
    return t


@jitable
def _cancel(g, c, o_lo, o_hi, base, quote, is_buy, qty, limit, order_id, q0, measure, threshold, above, path, price,
            moving, ratio_first, cancelled, losses, ranks, ids, open_, out):  # fmt: skip
    """The open CANCEL slots of account g: the fewest of its orders, largest loss first (ties: smaller
    order_id), whose cancellation makes the condition hold; by bisection on the count (the condition is
    monotone in it: cancelling an order never raises the loss)."""
    n_orders = o_hi - o_lo
    for j in range(n_orders):  # minus the loss: the largest loss first
        b, q = base[o_lo + j], quote[o_lo + j]
        losses[j] = 0.0
        if b < price.size and q < price.size:
            x = order_loss_usdt(is_buy[o_lo + j], qty[o_lo + j], limit[o_lo + j], price[b], ratio_first[b], price[q],
                                ratio_first[q])  # fmt: skip
            losses[j] = 0.0 if np.isnan(x) else -x
        ids[j] = order_id[o_lo + j]
    sort_by(losses, ids, n_orders, ranks)
    chosen = cancelled[:n_orders]
    for j in range(path.size):
        if not (open_[j] and path[j] == CANCEL):
            continue
        open_[j] = False
        lo, hi = 1, n_orders
        found = False
        while lo <= hi:  # the least count in [lo, hi] at which the condition holds
            mid = (lo + hi) // 2
            for rank in range(n_orders):
                chosen[ranks[rank]] = rank < mid
            loss = value_orders(
                base, quote, is_buy, qty, limit, o_lo, o_hi, price, moving, 1.0, ratio_first, chosen
            )
            numerator, denominator = measures(Quantities(q0[0], q0[1], q0[2], q0[3], q0[4], loss))[
                measure[j, c]
            ]
            if holds(ratio(numerator, denominator), threshold[j, c], above[j]):
                out[j, g], found, hi = float(mid), True, mid - 1
            else:
                lo = mid + 1
        if not found:
            out[j, g] = np.nan
