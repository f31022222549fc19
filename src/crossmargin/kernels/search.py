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
def _table_breakpoints(buf, n, path, value, a, table):
    """The points of `path` where a row's value (`value` at m = 1, linear in m) crosses a slice
    boundary of asset a's table (k_max, lower, ...)."""
    k_max, lower = table[0], table[1]
    if value > 0.0:
        for k in range(1, k_max):
            bound = lower[a * k_max + k]
            if np.isfinite(bound):
                n = _add(buf, n, path, bound / value)
    return n


@jitable
def move_breakpoints(buf, p, need, rows, mkt):
    """buf[:n] = the breakpoints of a DROP or RISE path p for the account's `rows` (unsorted); returns n."""
    asset, holding, debt, s, e, base, quote, is_buy, qty, limit, _, o_lo, o_hi = rows
    price, moving, ratio_first, _, coll, liab = mkt
    n_assets = price.size
    n = 0
    for i in range(s, e):
        a = asset[i]
        if a >= n_assets or not moving[a]:
            continue
        if need & COLLATERAL:
            n = _table_breakpoints(buf, n, p, holding[i] * price[a], a, coll)
        if need & MARGINS:
            n = _table_breakpoints(buf, n, p, debt[i] * price[a], a, liab)
    if need & ORDERS:
        for j in range(o_lo, o_hi):
            b, q = base[j], quote[j]
            if b >= n_assets or q >= n_assets or not (moving[b] or moving[q]):
                continue
            pb0, pq0 = moved_price(price, moving, 0.0, b), moved_price(price, moving, 0.0, q)
            at0 = order_given_minus_received_usdt(
                is_buy[j], qty[j], limit[j], pb0, ratio_first[b], pq0, ratio_first[q]
            )
            at1 = order_given_minus_received_usdt(
                is_buy[j], qty[j], limit[j], price[b], ratio_first[b], price[q], ratio_first[q]
            )
            if (
                at0 != at1 and np.isfinite(at0) and np.isfinite(at1)
            ):  # linear in m: 0 at m = at0 / (at0 − at1)
                n = _add(buf, n, p, at0 / (at0 - at1))
    return n


@jitable
def deposit_breakpoints(buf, rows, mkt):
    """buf[:n] = the deposits at which the account's USDT value crosses a slice boundary of USDT's
    collateral tiers; returns n."""
    asset, holding, _, s, e = rows[0], rows[1], rows[2], rows[3], rows[4]
    price, usdt, coll = mkt[0], mkt[3], mkt[4]
    held = 0.0
    for i in range(s, e):
        if asset[i] == usdt:
            held = holding[i] * price[usdt]
            break
    k_max, lower = coll[0], coll[1]
    n = 0
    for k in range(1, k_max):
        d = lower[usdt * k_max + k] - held
        if np.isfinite(d) and d > 0.0:
            buf[n] = d
            n += 1
    return n


@jitable
def _before(key: np.ndarray, tie: np.ndarray, a: int, b: int) -> bool:
    """Item a goes before item b: the smaller key, then (a tie) the smaller tie-breaker."""
    return key[a] < key[b] or (key[a] == key[b] and tie[a] < tie[b])


@jitable
def stable_order(key: np.ndarray, tie: np.ndarray, n: int, order: np.ndarray, spare: np.ndarray) -> None:
    """order[:n] = the items 0..n-1 by (key, tie), ascending: a bottom-up merge sort (stable, n log n;
    written out rather than numpy's, which costs seconds to compile)."""
    for i in range(n):
        order[i] = i
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            a, b, k = lo, mid, lo
            while a < mid and b < hi:
                if _before(key, tie, order[b], order[a]):
                    spare[k] = order[b]
                    b += 1
                else:
                    spare[k] = order[a]
                    a += 1
                k += 1
            while a < mid:
                spare[k] = order[a]
                a += 1
                k += 1
            while b < hi:
                spare[k] = order[b]
                b += 1
                k += 1
        for i in range(n):
            order[i] = spare[i]
        width *= 2


@kernel
def search_kernel(
    starts, stop, asset, holding, debt,  # balance rows: run r is starts[r]..
    o_lo, o_hi, base, quote, is_buy, qty, limit, order_id,  # orders o_lo[g]..o_hi[g]-1 of account g
    sums,  # (6, accounts): each account's sums (the row pass's), in Quantities order
    measure, threshold, above, path,  # slots: (accounts, slots) measure index and threshold; per slot
    needs,  # per measure: the sums it reads (COLLATERAL, MARGINS, ORDERS bits)
    price, moving, ratio_first, usdt, coll, liab,
    out,  # (accounts, slots): the least t at which the slot's condition holds; NaN: none on its path
    run_idx,  # per run: its account g, or -1 (not asked for)
):  # fmt: skip
    """Every slot of every account asked for (module docstring); an account with no balance rows is a
    run of no rows."""
    mkt = (price, moving, ratio_first, usdt, coll, liab)
    most_rows, most_orders = longest_run(starts, stop), 1
    for r in range(starts.size):
        if run_idx[r] >= 0:
            most_orders = max(most_orders, o_hi[run_idx[r]] - o_lo[run_idx[r]])
    room = most_rows * (coll[0] + liab[0]) + most_orders + coll[0]
    work = (np.empty(room), np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64),
            np.empty(most_orders, dtype=np.bool_), np.empty(path.size), np.empty(path.size))  # fmt: skip
    for r in range(starts.size):
        g = run_idx[r]
        if g < 0:
            continue
        rows = (asset, holding, debt, starts[r], run_end(starts, stop, r), base, quote, is_buy, qty, limit,
                order_id, o_lo[g], o_hi[g])  # fmt: skip
        q0 = Quantities(sums[0, g], sums[1, g], sums[2, g], sums[3, g], sums[4, g], sums[5, g])
        account(g, rows, q0, (measure, threshold, above, path, needs), mkt, work, out)


@jitable
def account(g, rows, q0, slots, mkt, work, out):
    """Every slot of account g: 0 where its condition holds already; then along each path, the slots
    whose condition does not hold yet and can (a measure whose denominator is 0 stays +inf)."""
    measure, threshold, above, path, needs = slots
    at_start = measures(q0)
    todo = 0
    for j in range(path.size):
        out[g, j] = np.nan
        k = measure[g, j]
        if k < 0:
            continue
        numerator, denominator = at_start[k]
        if holds(ratio(numerator, denominator), threshold[g, j], above[j]):
            out[g, j] = 0.0
        elif denominator != 0:  # M = 0 stays 0 on every path: a level of +inf never crosses
            todo += 1
    if todo == 0:
        return
    usdt = mkt[3]
    points, order, spare, cancelled = work[0], work[1], work[2], work[3]
    for p in (DROP, RISE, DEPOSIT, CANCEL):
        need = 0
        for j in range(path.size):
            if _open(g, j, p, slots, at_start, out):
                need |= needs[measure[g, j]] | FOLLOWED
        if need == 0 or (p == DEPOSIT and usdt < 0):
            continue
        if p == CANCEL:
            _cancel(g, p, rows, q0, slots, mkt, work, out)
            continue
        if p == DEPOSIT:
            n = deposit_breakpoints(points, rows, mkt) if need & COLLATERAL else 0
        else:
            n = move_breakpoints(points, p, need, rows, mkt)
        stable_order(points, points, n, order, spare)
        _walk(g, p, need, n, rows, q0, slots, mkt, work, cancelled[:0], out)


@jitable
def _open(g, j, p, slots, at_start, out):
    """Slot j of account g is followed along path p and not found yet."""
    measure, _, _, path, _ = slots
    k = measure[g, j]
    return path[j] == p and k >= 0 and np.isnan(out[g, j]) and at_start[k][1] != 0


@jitable
def _value(p, t, need, rows, q0, mkt, none):
    """The account's quantities at point t of path p (the sums no followed measure reads left at 0;
    a deposit leaves the open orders' loss as it is)."""
    asset, holding, debt, s, e, base, quote, is_buy, qty, limit, _, o_lo, o_hi = rows
    price, moving, ratio_first, usdt, coll, liab = mkt
    m, deposit = path_point(p, t)
    bal = value_balances(asset, holding, debt, s, e, price, moving, m, deposit, usdt, coll, liab, need & 3)
    loss = q0.open_order_loss_usdt
    if p != DEPOSIT and need & ORDERS:
        loss = value_orders(base, quote, is_buy, qty, limit, o_lo, o_hi, price, moving, m, ratio_first, none)
    return Quantities(bal[0], bal[1], bal[2], bal[3], bal[4], loss)


@jitable
def _walk(g, p, need, n, rows, q0, slots, mkt, work, none, out):
    """The open slots of path p (DROP, RISE, DEPOSIT) of account g: piece by piece along the sorted
    breakpoints (work: points[order[:n]]), then to the path's end (DEPOSIT: along its last line)."""
    measure, threshold, above, path, _ = slots
    points, order, g_at, m_at = work[0], work[1], work[4], work[5]
    at_start = measures(q0)
    for j in range(path.size):
        if measure[g, j] >= 0:
            numerator, denominator = at_start[measure[g, j]]
            g_at[j] = numerator - threshold[g, j] * denominator
            m_at[j] = denominator
    t_prev = 0.0
    end = MAX_DROP if p == DROP else (MAX_RISE if p == RISE else np.inf)
    for i in range(n + 1):
        t = points[order[i]] if i < n else end
        if not np.isfinite(t):  # DEPOSIT's last piece: value once more far along it
            reach = 1.0
            for j in range(path.size):
                if _open(g, j, p, slots, at_start, out):
                    reach = max(reach, 4.0 * abs(g_at[j]))
            t = t_prev + reach
        if t <= t_prev and i < n:
            continue
        at = measures(_value(p, t, need, rows, q0, mkt, none))
        left = 0
        for j in range(path.size):
            if not _open(g, j, p, slots, at_start, out):
                continue
            numerator, denominator = at[measure[g, j]]
            g_t = numerator - threshold[g, j] * denominator
            if holds(ratio(numerator, denominator), threshold[g, j], above[j]):
                root = interpolated_root(t_prev, g_at[j], t, g_t)
                share = (root - t_prev) / (t - t_prev) if t > t_prev else 1.0
                if above[j] or m_at[j] + (denominator - m_at[j]) * share > 0:
                    out[g, j] = _reported(p, root)
            elif i == n and p == DEPOSIT and g_t > g_at[j]:  # extend the last line to its root
                out[g, j] = t_prev - g_at[j] / ((g_t - g_at[j]) / (t - t_prev))
            g_at[j], m_at[j] = g_t, denominator
            if np.isnan(out[g, j]):
                left += 1
        t_prev = t
        if left == 0:
            return


@jitable
def _reported(p: int, t: float) -> float:
    """A move is reported in [TINY, its path's end]; a deposit as found."""
    if p == DROP:
        return min(max(t, TINY), MAX_DROP)
    if p == RISE:
        return min(max(t, TINY), MAX_RISE)
    return t


@jitable
def _cancel(g, p, rows, q0, slots, mkt, work, out):
    """The open CANCEL slots of account g: the fewest of its orders, largest loss first (ties: smaller
    order_id), whose cancellation makes the condition hold; by bisection on the count."""
    _, _, _, _, _, base, quote, is_buy, qty, limit, order_id, o_lo, o_hi = rows
    price, _, ratio_first, _, _, _ = mkt
    losses, ranks, spare, cancelled = work[0], work[1], work[2], work[3]
    n_orders = o_hi - o_lo
    if n_orders == 0:
        return
    for j in range(n_orders):  # minus the loss: the largest loss first
        b, q = base[o_lo + j], quote[o_lo + j]
        losses[j] = 0.0
        if b < price.size and q < price.size:
            x = order_loss_usdt(is_buy[o_lo + j], qty[o_lo + j], limit[o_lo + j], price[b], ratio_first[b], price[q],
                                ratio_first[q])  # fmt: skip
            losses[j] = 0.0 if np.isnan(x) else -x
    stable_order(losses, order_id[o_lo:o_hi], n_orders, ranks, spare)
    at_start = measures(q0)
    for j in range(slots[3].size):
        if not _open(g, j, p, slots, at_start, out):
            continue
        if not _holds_after_cancelling(n_orders, g, j, rows, q0, slots, mkt, ranks, cancelled[:n_orders]):
            continue
        lo, hi = 1, n_orders
        while lo < hi:
            mid = (lo + hi) // 2
            if _holds_after_cancelling(mid, g, j, rows, q0, slots, mkt, ranks, cancelled[:n_orders]):
                hi = mid
            else:
                lo = mid + 1
        out[g, j] = float(lo)


@jitable
def _holds_after_cancelling(k, g, j, rows, q0, slots, mkt, ranks, cancelled):
    """Does slot j's condition hold once the k orders of the largest loss are cancelled?"""
    _, _, _, _, _, base, quote, is_buy, qty, limit, _, o_lo, o_hi = rows
    price, moving, ratio_first, _, _, _ = mkt
    measure, threshold, above, _, _ = slots
    for rank in range(cancelled.size):
        cancelled[ranks[rank]] = rank < k
    loss = value_orders(
        base, quote, is_buy, qty, limit, o_lo, o_hi, price, moving, 1.0, ratio_first, cancelled
    )
    q = Quantities(q0[0], q0[1], q0[2], q0[3], q0[4], loss)
    numerator, denominator = measures(q)[measure[g, j]]
    return holds(ratio(numerator, denominator), threshold[g, j], above[j])
