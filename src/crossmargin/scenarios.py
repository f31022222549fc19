"""Stress scenarios and distance to thresholds (docs/rules.md §8).

Two things are computed from moved prices, both vectorized over every account at once:

* **Distances** (`distances`, four columns of account_risk). Under a uniform move r every asset
  that is not a stable asset (policy `stable_assets`) has its price multiplied by m = 1 + r. Every
  per-row value is then piecewise linear in m: a USDT value is `value·m` (or constant for a stable
  asset), a tiered value is `below_k + rate_k·(value·m − lower_k)` inside slice k, an order's loss
  `max(0, d0 + d1·m)`. So an account's level is N(m)/M(m) with N and M piecewise linear, the pieces
  bounded by *breakpoints* (where a row's value crosses a slice boundary, or an order's loss turns
  on or off). Within one piece `N − T·M` is linear and its root is closed form. Classic accounts
  have no breakpoints (N = A_s + m·A_n, M = L_s + m·L_n, from the per-account sums of the stable
  part, `classic_lines`); Pro accounts have a few per row (`pro_lines`: their rows are read again).
  `first_crossing` sorts every account's pieces outward from m = 1, adds the slope changes up, and
  keeps per account the root nearest to m = 1 — the first crossing, whether or not the level is
  monotone. No grid, no iteration: exact up to float rounding.

* **Scenarios** (`scenario_risk`): named sets of price multipliers (`ScenarioSet`, TOML; the shipped
  set is `scenarios.toml`). Balance rows and orders × scenarios, in account chunks of bounded size:
  each row is repeated once per scenario with the scenario's moved prices gathered by
  `scenario·n_assets + asset_idx`, valued with the very expressions of the row pass, summed per
  (account, scenario) with the same reduction (`numpy.add.reduceat` over each run, rows in input
  order), then levels and decisions. A scenario whose multipliers are all 1 reproduces account_risk
  to the bit.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crossmargin import account_sums, decisions, levels, quantities
from crossmargin.errors import UsageError
from crossmargin.policy import Policy
from crossmargin.reference_data import BASE, QUOTE, AssetTerms
from crossmargin.schemas import ACCOUNT_RISK, LEVEL_COLUMNS, QUANTITY_COLUMNS, MarginMode
from crossmargin.validation import rows

DISTANCE_COLUMNS = ["liquidation_drop", "liquidation_rise", "margin_call_drop", "margin_call_rise"]
MAX_DROP = 1.0  # d in (0, 1]: r = -1 is every moving price at 0
MAX_RISE = 10.0  # u in (0, 10]
# a crossing computed at m = 1 itself (the level is above the threshold at r = 0 by the flag, so only
# rounding puts it there) is reported as this smallest move instead of 0
TINY = 1e-15

SHIPPED = "default"  # `--scenarios default`: the scenario set shipped with the package
# scenario_risk: the per-account rows of the scenario computation, per chunk of about this many
# (row, scenario) pairs (memory: ~ 150 bytes each at peak)
ROWS_PER_CHUNK = 12_000_000


# ------------------------------------------------------------------ moved prices


def stable_mask(terms: AssetTerms, policy: Policy) -> pl.Series:
    """Per asset_idx: True for a stable asset (its price stays put in a uniform move)."""
    return terms.frame["asset"].is_in(list(policy.stable_assets)).alias("stable")


def moved_prices(terms: AssetTerms, policy: Policy, scenarios: ScenarioSet) -> pl.Series:
    """The price in effect × each scenario's multiplier, flat: entry `scenario·n_assets + asset_idx`."""
    assets = terms.frame["asset"].to_list()
    stable = stable_mask(terms, policy).to_list()
    multipliers = [
        s.multiplier(a, is_stable)
        for s in scenarios.scenarios
        for a, is_stable in zip(assets, stable, strict=True)
    ]
    prices = pl.concat([terms.frame["price_usdt"]] * len(scenarios.scenarios))
    return (prices * pl.Series(multipliers, dtype=pl.Float64)).alias("price_usdt")


# ------------------------------------------------------------------ distances: lines per account
# A *line* frame holds per account the coefficients of N(m) = Na + Nb·m and M(m) = Ma + Mb·m that hold
# just off m = 1 on the side walked; an *event* frame the breakpoints m on that side with the change of
# the four coefficients when walking across them, away from m = 1.

LINE = ["Na", "Nb", "Ma", "Mb"]
DELTA = ["dNa", "dNb", "dMa", "dMb"]


def classic_lines(computed: pl.LazyFrame) -> pl.LazyFrame:
    """Classic level total_asset/total_liability: A(m) = A_s + m·(A − A_s), L(m) the same (no breakpoints)."""
    a, a_s = pl.col("total_asset_usdt"), pl.col("stable_asset_value_usdt")
    liab, l_s = pl.col("total_liability_usdt"), pl.col("stable_debt_value_usdt")
    return computed.with_columns(Na=a_s, Nb=a - a_s, Ma=l_s, Mb=liab - l_s)


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
    for step in quantities.balance_values(terms.collateral, terms.liability, stable)[:2]:
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
            coll_value = quantities.collateral_value_usdt(terms.collateral)
            coll = _slice_terms(terms, "collateral", "collateral_ratio", v, pl.col("collateral_slice"))
            ca, cb = split(coll_value, coll)
        else:
            ca, cb = split(v)
        la, lb = split(dv)
        na, nb = ca - la, cb - lb
        mm_value = quantities.maintenance_margin_of_debt(terms.liability)
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
    return pl.DataFrame({"account_id": runs.ids, **{c: runs.reduce(np.add, rows[c]) for c in LINE}})


def _order_lines(
    orders: pl.LazyFrame, terms: AssetTerms, stable: pl.Series, side: str
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Open-order loss max(0, d0 + d1·m) into N (with a minus): its line just off m = 1 and its breakpoint."""
    rows = terms.gather(terms.gather(orders, "base_asset", BASE), "quote_asset", QUOTE)
    q_moves = ~pl.lit(stable).gather(pl.col(f"asset_idx{QUOTE}")).fill_null(True)
    b_moves = ~pl.lit(stable).gather(pl.col(f"asset_idx{BASE}")).fill_null(True)
    buy = pl.col("side") == "BUY"
    q = quantities.order_quote_leg_usdt()
    b = quantities.order_base_leg_usdt()
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


# ------------------------------------------------------------------ distances: the first crossing

THRESHOLDS = ["liquidation", "margin_call"]


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
            reduced = {n: runs.reduce(nearest, roots[n]) for n in THRESHOLDS}
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


def thresholds(policy: Policy, pro: bool) -> dict[str, pl.Expr]:
    """Liquidation and margin-call thresholds of the account's mode (margin call: at least the liquidation
    one, as the margin_call flag is also true of a liquidated account)."""
    if pro:
        liq, mc = pl.lit(policy.pro_liquidation), pl.lit(policy.pro_margin_call)
    else:
        liq = decisions.classic_threshold(policy, "liquidation")
        mc = decisions.classic_threshold(policy, "margin_call")
    return {"liquidation": liq, "margin_call": pl.max_horizontal(liq, mc)}


def pro_candidates(computed: pl.DataFrame) -> pl.Series:
    """Pro accounts whose level can cross (a liability, not yet liquidated)."""
    return (
        computed.lazy()
        .select("account_id", "margin_mode", "total_liability_usdt", "liquidation")
        .filter(quantities.is_pro(), pl.col("total_liability_usdt") > 0, ~pl.col("liquidation"))
        .collect()["account_id"]
    )


def distances(
    computed: pl.DataFrame, balances: pl.LazyFrame, orders: pl.LazyFrame, terms: AssetTerms, policy: Policy
) -> pl.DataFrame:
    """`computed` (the account pass) with liquidation_drop/_rise and margin_call_drop/_rise.

    0 when the account is already at or below that threshold at r = 0 (its liquidation / margin_call
    flag); else the first crossing; null when none in range (so always for a level that stays +inf).
    Classic accounts: closed form from their sums; Pro accounts: from their rows, read again.
    """
    # only the few columns needed are read (no copy of `computed`; the four results are put beside it)
    need = ["account_id", "margin_mode", "classic_leverage", "liquidation", "margin_call"]
    sums = ["total_asset_usdt", "stable_asset_value_usdt", "total_liability_usdt", "stable_debt_value_usdt"]
    keys = computed.lazy().select(*need, *sums)
    classic = classic_lines(keys).with_columns(**thresholds(policy, pro=False))
    classic_d = pl.concat(
        [first_crossing(classic, None, side).drop("account_id") for side in ("drop", "rise")],
        how="horizontal",
    )
    ids = pro_candidates(computed)
    mine = pl.col("account_id").is_in(ids.implode())
    lines = pro_lines(balances.filter(mine), orders.filter(mine), terms, policy)
    pro = [
        first_crossing(ls.with_columns(**thresholds(policy, pro=True)), ev, side)
        for side, (ls, ev) in lines.items()
    ]
    pro_d = pro[0].join(pro[1], on="account_id", how="full", coalesce=True)
    both = pl.concat([keys.select(need), classic_d], how="horizontal").join(
        pro_d.rename({c: f"_pro_{c}" for c in DISTANCE_COLUMNS}),
        on="account_id",
        how="left",
        maintain_order="left",
    )
    out = []
    for c in DISTANCE_COLUMNS:
        flag = "liquidation" if c.startswith("liquidation") else "margin_call"
        out.append(
            pl.when(pl.col(flag))
            .then(pl.lit(0.0))
            .when(quantities.is_pro())
            .then(pl.col(f"_pro_{c}"))
            .otherwise(pl.col(c))
            .alias(c)
        )
    result = both.select(out).collect()
    if result.height != computed.height:  # pragma: no cover - guards the row-for-row construction
        raise AssertionError("distances must have one row per row of the account pass")
    return computed.with_columns(result.get_columns())


# ------------------------------------------------------------------ named scenarios


@dataclass(frozen=True)
class Scenario:
    """A named set of price multipliers: `assets` by name, else `stable` for a stable asset and
    `default` for every other asset."""

    name: str
    default: float
    stable: float = 1.0
    assets: dict[str, float] | None = None

    def multiplier(self, asset: str, is_stable: bool) -> float:
        named = self.assets or {}
        return named.get(asset, self.stable if is_stable else self.default)


@dataclass(frozen=True)
class ScenarioSet:
    scenarios: tuple[Scenario, ...]
    source: str  # "default" (the shipped set) or the file's path

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def as_record(self) -> dict[str, Any]:
        """JSON-ready, for manifest.json."""
        return {
            "source": self.source,
            "scenarios": [
                {"name": s.name, "default": s.default, "stable": s.stable, "assets": dict(s.assets or {})}
                for s in self.scenarios
            ],
        }


def _multiplier(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)


def parse_scenarios(text: str, source: str) -> ScenarioSet:
    """A scenario set from TOML text: `[[scenario]]` tables with `name`, `default` and optionally
    `stable` (multiplier of the stable assets, 1 if absent) and `assets` (name -> multiplier)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--scenarios {source}: not valid TOML: {exc}") from None
    items = doc.get("scenario")
    if not isinstance(items, list) or not items:
        raise UsageError(f"--scenarios {source}: no [[scenario]] table")
    out, seen = [], set()
    for i, item in enumerate(items, 1):
        where = f"--scenarios {source}: scenario {i}"
        if not isinstance(item, dict):
            raise UsageError(f"{where} is not a table")
        unknown = set(item) - {"name", "default", "stable", "assets"}
        if unknown:
            raise UsageError(f"{where} has unknown key {sorted(unknown)[0]!r}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError(f"{where} needs a non-empty `name`")
        if name in seen:
            raise UsageError(f"--scenarios {source}: scenario name {name!r} appears twice")
        seen.add(name)
        if "default" not in item:
            raise UsageError(f"{where} ({name}) needs `default`, the multiplier of the non-stable assets")
        assets = item.get("assets", {})
        if not isinstance(assets, dict):
            raise UsageError(f"{where} ({name}): `assets` must be a table of asset = multiplier")
        out.append(
            Scenario(
                name,
                _multiplier(item["default"], f"{where} ({name}) default"),
                _multiplier(item.get("stable", 1.0), f"{where} ({name}) stable"),
                {str(a): _multiplier(m, f"{where} ({name}) assets.{a}") for a, m in assets.items()},
            )
        )
    return ScenarioSet(tuple(out), source)


def load_scenarios(spec: str | Path) -> ScenarioSet:
    """`default`: the set shipped with the package (scenarios.toml); else a TOML file's path."""
    if str(spec) == SHIPPED:
        text = resources.files("crossmargin").joinpath("scenarios.toml").read_text(encoding="utf-8")
        return parse_scenarios(text, SHIPPED)
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--scenarios {spec}: cannot read the file ({exc.__class__.__name__})") from None
    return parse_scenarios(text, str(path))


# ------------------------------------------------------------------ scenario_risk

# every quantity and level, and Pro available margin, under the moved prices
SCENARIO_QUANTITIES = [*QUANTITY_COLUMNS, *LEVEL_COLUMNS, "pro_available_margin_usdt"]
SCENARIO_DECISIONS = [
    "margin_call",
    "liquidation",
    "borrow_blocked",
    "borrow_blocked_reason",
    "due_for_migration",
    "migrate_now",
    "partial_repayment_usdt",
    "bad_debt_usdt",
    "switches_left_today",
    "eligible_for_pro",
    "can_switch_to_classic",
]


def scenario_schema(scenario_set: ScenarioSet) -> dict[str, pl.DataType]:
    """Columns of scenario_risk: as account_risk where the name is the same."""
    return {
        "account_id": pl.Int64(),
        "scenario": pl.Enum(scenario_set.names),
        "margin_mode": MarginMode,
        **{c: ACCOUNT_RISK[c] for c in [*SCENARIO_QUANTITIES, *SCENARIO_DECISIONS]},
        "policy_version": pl.String(),
    }


ACCOUNT_INPUT = [
    "account_id",
    "margin_mode",
    "classic_leverage",
    "cross_margin_activated",
    "pro_quiz_passed",
    "questionnaire_completed_at",
    "terms_agreed_at",
    "country",
    "switches_today",
]


def _sorted_rows(frame: pl.LazyFrame, keep: pl.Series, columns: list[pl.Expr]) -> pl.DataFrame:
    """The rows of the kept accounts, in account order (a stable sort: input order within an account)."""
    rows = (
        frame.filter(pl.col("account_id").is_in(keep.implode())).select(columns).collect(engine="streaming")
    )
    if not rows["account_id"].is_sorted():
        rows = rows.sort("account_id", maintain_order=True)
    return rows


def _scenario_sums(
    runs: account_sums.Runs | None, sums: np.ndarray, chunk_ids: np.ndarray, names: list[str]
) -> dict[str, np.ndarray]:
    """Per (account of `chunk_ids`, scenario), account-major: the sums `names` of a kernel's result
    (sums[scenario, k, run], account_sums), 0 for an account without rows."""
    n_s = sums.shape[0]
    out = {name: np.zeros(chunk_ids.size * n_s) for name in names}
    if runs is None:
        return out
    # each run's place among the chunk's accounts: no join
    at = np.searchsorted(chunk_ids, runs.ids)
    for k, name in enumerate(names):
        out[name].reshape(chunk_ids.size, n_s)[at] = sums[:, k, :].T
    return out


# decisions that do not depend on prices: worked out once per account, then repeated per scenario
PRICE_FREE = {"pro_compliant", "switches_left_today", "due_for_migration", "migrate_now"}


def _stages(policy: Policy, price_free: bool) -> list[dict[str, pl.Expr]]:
    """The decision stages restricted to (or without) the price-free decisions, in order."""
    return [
        {k: e for k, e in stage.items() if (k in PRICE_FREE) == price_free}
        for stage in decisions.all_decisions(policy)
    ]


def scenario_accounts(computed: pl.DataFrame, valid: pl.Series) -> pl.DataFrame:
    """The columns of the valid accounts that scenario_risk reads (their inputs and switches_today)."""
    return computed.filter(pl.col("account_id").is_in(valid.implode())).select(ACCOUNT_INPUT)


def scenario_risk(
    tables: dict[str, pl.LazyFrame],
    terms: AssetTerms,
    accounts: pl.DataFrame,
    policy: Policy,
    scenario_set: ScenarioSet,
) -> Iterator[pl.DataFrame]:
    """scenario_risk of `accounts` (scenario_accounts: valid, in account order), chunk after chunk of
    accounts, each chunk sorted by account_id then scenario in the set's order; at least one chunk."""
    n_s = len(scenario_set.scenarios)
    stable = stable_mask(terms, policy)
    prices = moved_prices(terms, policy, scenario_set).to_numpy().reshape(n_s, terms.frame.height)
    valid = accounts["account_id"]
    price_free = accounts.lazy()
    for stage in _stages(policy, price_free=True):
        price_free = price_free.with_columns(**stage)
    accounts = price_free.select([*ACCOUNT_INPUT, *sorted(PRICE_FREE)]).collect()
    # the scenario sums: every account total but the stable parts (only the distances read those)
    balance_names = list(quantities.BALANCE_SUMS.values())
    balance_sums = [n for n in balance_names if not n.startswith("stable_")]
    if balance_names[: len(balance_sums)] != balance_sums:  # pragma: no cover - the kernel's order
        raise AssertionError("the stable parts must come last in BALANCE_SUMS")
    with pl.Config(streaming_chunk_size=account_sums.CHUNK_ROWS):
        balances = _sorted_rows(
            tables["balances"],
            valid,
            [pl.col("account_id"), terms.index(pl.col("asset")).alias("asset_idx"), *rows.QUANTITIES],
        )
        orders = _sorted_rows(
            tables["open_orders"],
            valid,
            [
                pl.col("account_id"),
                pl.col("order_id"),
                terms.index(pl.col("base_asset")).alias(f"asset_idx{BASE}"),
                terms.index(pl.col("quote_asset")).alias(f"asset_idx{QUOTE}"),
                quantities.is_buy().fill_null(False).alias("is_buy"),
                *rows.ORDER_NUMBERS,
            ],
        )
    schema = scenario_schema(scenario_set)
    names = pl.Series("scenario", scenario_set.names, dtype=schema["scenario"])
    per_account = (balances.height + orders.height) / max(accounts.height, 1)
    step = max(1, int(ROWS_PER_CHUNK / (n_s * max(per_account, 1.0))))
    ids = accounts["account_id"].to_numpy()
    if ids.size == 0:
        yield pl.DataFrame(schema=schema)
        return
    bal_ids, ord_ids = balances["account_id"].to_numpy(), orders["account_id"].to_numpy()
    for lo in range(0, len(ids), step):  # chunks of accounts (bounded memory), never one per scenario
        chunk_ids = ids[lo : lo + step]
        first, last = chunk_ids[0], chunk_ids[-1]
        b0, b1 = np.searchsorted(bal_ids, first, "left"), np.searchsorted(bal_ids, last, "right")
        o0, o1 = np.searchsorted(ord_ids, first, "left"), np.searchsorted(ord_ids, last, "right")
        bal_runs, bal_out, _ = account_sums.balance_sums(balances[b0:b1], terms, stable, prices)
        ord_runs, ord_out, _ = account_sums.order_sums(orders[o0:o1], terms, prices)
        sums = _scenario_sums(bal_runs, bal_out, chunk_ids, balance_sums)
        sums |= _scenario_sums(ord_runs, ord_out, chunk_ids, list(quantities.ORDER_SUMS.values()))
        acc = accounts[lo : lo + step]
        base = acc.select(pl.all().gather(pl.lit(pl.Series(np.repeat(np.arange(acc.height), n_s)))))
        base = base.with_columns(
            pl.Series("scenario_idx", np.tile(np.arange(n_s), acc.height), dtype=pl.Int64),
            *[pl.Series(name, values, dtype=pl.Float64) for name, values in sums.items()],
        )
        frame = base.lazy()
        for stage in [*levels.all_levels(policy), *_stages(policy, price_free=False)]:
            frame = frame.with_columns(**stage)
        yield (
            frame.with_columns(
                pl.lit(names).gather(pl.col("scenario_idx")).alias("scenario"),
                pl.col("margin_mode").cast(MarginMode, strict=False),
                pl.lit(policy.version).alias("policy_version"),
            )
            .select([pl.col(c).cast(d) for c, d in schema.items()])
            .collect()
        )
