"""Fault injection: the one injector of the project, behind `crossmargin sample --faults RATE` and the
robustness tests.

Every fault kind (FAULT_KINDS) is a data fault written into one input table, for which the engine must
report one data-issue code (schemas.ISSUE_CODES) on one issue table. A kind is
applied to a set of accounts at once (vectorized per kind, never per account); each faulted account
gets exactly one kind. Two ways to choose the accounts:

* `share`: that share of the accounts, kinds cycling over `kinds` (the sample generator, chunk by chunk);
* `per_kind`: that many distinct accounts per kind (the tests: every kind, disjoint accounts).

Kinds that name a broken asset (NOPRICE, GAPTIER, ...) need its reference rows: `inject_faults` appends
the rows of `reference` for every asset the input's reference tables lack (default: the sample
universe's fault assets; the tests' small universe, tests/support/inputs.py, has its own). Showcase accounts are
never faulted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from crossmargin.io.schemas import INPUT_SCHEMAS
from crossmargin.synthetic.reference import FAULT_ASSETS, reference_tables
from crossmargin.synthetic.showcase import SHOWCASE_IDS
from crossmargin.synthetic.universe import REFERENCE_TABLES, SHOWCASE_AS_OF

FAULT_ORDER_ID_BASE = 9_000_000_000_001

# Broken assets. The first four also exist in the sample universe (reference.FAULT_ASSETS): NOPRICE has
# tiers and brackets but no price; NOTIERS no collateral tiers; NOBRACKETS no liability brackets;
# GAPTIER collateral tiers with a gap; STALEPRICE an old price; TIEDPRICE two prices at one instant.
# The others only in the tests' small universe (tests/support/inputs.py, reference_tables).
NO_PRICE, NO_TIERS, NO_BRACKETS, GAP, STALE_PRICE, TIED_PRICE = (a[0] for a in FAULT_ASSETS)
LATE_PRICE = "LATEPRICE"  # only a price priced after as_of
OVERLAP = "OVERLAPTIER"  # collateral tiers overlapping
BAD_RATE = "RATETIER"  # collateral ratio 1.5
NOT_AT_ZERO = "ZEROTIER"  # collateral tiers starting at 100
BAD_BRACKET = "BADBRACKET"  # liability brackets with maintenance rate -0.1
INF_PRICE = "INFPRICE"  # price +inf
NAN_PRICE = "NANPRICE"  # price NaN
NEG_PRICE = "NEGPRICE"  # price -1
NULL_PRICE = "NULLPRICE"  # a null price at every priced_at
OVERFLOW_ASSET = "BTC"  # a finite quantity of it whose USDT value overflows float64


@dataclass(frozen=True)
class FaultKind:
    kind: str
    code: str  # the data-issue code the engine must report for the account
    table: str  # the input table the fault is written into
    issue_table: str  # the `table` of that data_issues row


_K = FaultKind
FAULT_KINDS: list[FaultKind] = [
    # the kinds of `crossmargin sample --faults`, in their cycling order (they need only the sample
    # universe's fault assets)
    _K("missing_price", "missing_price", "balances", "prices"),
    _K("negative_free", "negative_quantity", "balances", "balances"),
    _K("duplicate_balance", "duplicate_row", "balances", "balances"),
    _K("duplicate_account", "duplicate_row", "accounts", "accounts"),
    _K("unknown_account_balances", "unknown_account", "balances", "balances"),
    _K("unknown_account_orders", "unknown_account", "open_orders", "open_orders"),
    _K("unknown_mode", "unknown_mode", "accounts", "accounts"),
    _K("bad_leverage", "bad_value", "accounts", "accounts"),
    _K("bad_side", "bad_value", "open_orders", "open_orders"),
    _K("missing_collateral_tiers", "missing_collateral_tiers", "balances", "collateral_tiers"),
    _K("missing_liability_brackets", "missing_liability_brackets", "balances", "liability_brackets"),
    _K("bad_tier_table", "bad_tier_table", "collateral_tiers", "collateral_tiers"),
    _K("nan_free", "non_finite_value", "balances", "balances"),
    _K("negative_order_qty", "negative_quantity", "open_orders", "open_orders"),
    _K("inf_borrowed", "non_finite_value", "balances", "balances"),
    # further kinds (the small universe has every broken asset they need)
    _K("late_price", "missing_price", "prices", "prices"),
    _K("negative_interest", "negative_quantity", "balances", "balances"),
    _K("negative_order_price", "negative_quantity", "open_orders", "open_orders"),
    _K("negative_price", "negative_quantity", "prices", "prices"),
    _K("order_missing_collateral_tiers", "missing_collateral_tiers", "open_orders", "collateral_tiers"),
    _K("tier_overlap", "bad_tier_table", "collateral_tiers", "collateral_tiers"),
    _K("tier_rate", "bad_tier_table", "collateral_tiers", "collateral_tiers"),
    _K("tier_not_at_zero", "bad_tier_table", "collateral_tiers", "collateral_tiers"),
    _K("bracket_rate", "bad_tier_table", "liability_brackets", "liability_brackets"),
    _K("inf_locked", "non_finite_value", "balances", "balances"),
    _K("inf_order_qty", "non_finite_value", "open_orders", "open_orders"),
    _K("inf_price", "non_finite_value", "prices", "prices"),
    _K("nan_price", "non_finite_value", "prices", "prices"),
    _K("overflow", "non_finite_value", "balances", "balances"),
    _K("unknown_account_switches", "unknown_account", "mode_switches", "mode_switches"),
    _K("stale_price", "stale_price", "prices", "prices"),
    _K("tied_price", "ambiguous_price", "prices", "prices"),
    _K("null_price", "missing_price", "prices", "prices"),
]
KINDS = {k.kind: k for k in FAULT_KINDS}
ALL_FAULT_KINDS = [k.kind for k in FAULT_KINDS]
SAMPLE_FAULT_KINDS = [*ALL_FAULT_KINDS[:15], "stale_price", "tied_price"]
# kinds that delete the account from `accounts`: its remaining rows belong to an unknown account
REMOVES_ACCOUNT = {"unknown_account_balances", "unknown_account_orders", "unknown_account_switches"}
FAULT_ISSUES_SCHEMA = {
    "account_id": pl.Int64(),
    "kind": pl.String(),
    "code": pl.String(),
    "table": pl.String(),
    "issue_table": pl.String(),
}


@dataclass
class Faults:
    """Faulty tables and the expected issues: one `expected` row per faulted account."""

    tables: dict[str, pl.DataFrame]
    expected: pl.DataFrame  # FAULT_ISSUES_SCHEMA

    @property
    def unknown_ids(self) -> set[int]:
        """Faulted accounts deleted from `accounts` (their rows are reported as unknown_account)."""
        return set(self.expected.filter(pl.col("kind").is_in(sorted(REMOVES_ACCOUNT)))["account_id"])

    @property
    def issues(self) -> dict[int, set[tuple[str, str]]]:
        """{account_id: {(issue table, code)}} of the faulted accounts still in `accounts`."""
        out: dict[int, set[tuple[str, str]]] = {}
        kept = self.expected.filter(~pl.col("kind").is_in(sorted(REMOVES_ACCOUNT)))
        for a, table, code in kept.select("account_id", "issue_table", "code").iter_rows():
            out.setdefault(a, set()).add((table, code))
        return out


def _member(ids: np.ndarray) -> pl.Expr:
    """account_id is one of `ids`."""
    return pl.col("account_id").is_in(pl.Series(ids, dtype=pl.Int64()).implode())


def _expected(chosen: np.ndarray, kind_names: Sequence[str]) -> pl.DataFrame:
    ks = [KINDS[k] for k in kind_names]
    return pl.DataFrame(
        {
            "account_id": chosen,
            "kind": [k.kind for k in ks],
            "code": [k.code for k in ks],
            "table": [k.table for k in ks],
            "issue_table": [k.issue_table for k in ks],
        },
        schema=FAULT_ISSUES_SCHEMA,
    )


def apply_faults(
    tables: Mapping[str, pl.DataFrame], victims: Mapping[str, np.ndarray], order_id_base: int
) -> dict[str, pl.DataFrame]:
    """Write each kind's fault for its accounts (`victims`: kind -> account ids, disjoint across kinds).

    New open orders get ids from `order_id_base` (+ 1,000,000 per kind). Reference rows of the broken
    assets are not added here (see `inject_faults`).
    """
    empty = np.empty(0, np.int64)
    ids = {k: np.asarray(victims.get(k, empty), dtype=np.int64) for k in ALL_FAULT_KINDS}
    acc, bal, orders = tables["accounts"], tables["balances"], tables["open_orders"]

    def new_balances(who: np.ndarray, asset: str, free: float, borrowed: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "account_id": who,
                "asset": [asset] * len(who),
                "free": np.full(len(who), free),
                "locked": 0.0,
                "borrowed": borrowed,
                "interest": 0.0,
            },
            schema=INPUT_SCHEMAS["balances"],
        )

    def new_orders(
        who: np.ndarray,
        offset: int,
        side: str,
        qty: float,
        base: str = "BTC",
        quote: str = "USDT",
        price: float = 95_000.0,
    ) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "account_id": who,
                "order_id": order_id_base + offset * 1_000_000 + np.arange(len(who)),
                "base_asset": base,
                "quote_asset": quote,
                "side": side,
                "price": price,
                "remaining_qty": qty,
            },
            schema=INPUT_SCHEMAS["open_orders"],
        )

    def in_(kind: str) -> pl.Expr:
        return _member(ids[kind])

    first_row = pl.col("account_id").is_first_distinct()

    def on_first_row(kind: str) -> pl.Expr:
        return first_row & in_(kind)

    # faults in an account's first balance row
    bal = bal.with_columns(
        free=pl.when(on_first_row("negative_free"))
        .then(-(pl.col("free").abs() + 1.0))
        .when(on_first_row("nan_free"))
        .then(float("nan"))
        .otherwise(pl.col("free")),
        borrowed=pl.when(on_first_row("inf_borrowed")).then(float("inf")).otherwise(pl.col("borrowed")),
    )
    if len(ids["negative_interest"]) or len(ids["inf_locked"]):
        bal = bal.with_columns(
            interest=pl.when(on_first_row("negative_interest"))
            .then(-(pl.col("interest").abs() + 0.5))
            .otherwise(pl.col("interest")),
            locked=pl.when(on_first_row("inf_locked")).then(float("inf")).otherwise(pl.col("locked")),
        )
    dup_bal = bal.filter(on_first_row("duplicate_balance"))
    stray_orders = np.concatenate([ids["unknown_account_orders"], ids["unknown_account_switches"]])
    overflow_rows = in_("overflow") & (pl.col("asset") == OVERFLOW_ASSET)  # replaced below
    bal = pl.concat(
        [
            bal.filter(~_member(stray_orders) & ~overflow_rows),
            dup_bal,
            new_balances(ids["missing_price"], NO_PRICE, 10.0, 0.0),
            new_balances(ids["missing_collateral_tiers"], NO_TIERS, 10.0, 0.0),
            new_balances(ids["missing_liability_brackets"], NO_BRACKETS, 10.0, 5.0),
            new_balances(ids["bad_tier_table"], GAP, 10.0, 0.0),
            new_balances(ids["late_price"], LATE_PRICE, 10.0, 0.0),
            new_balances(ids["negative_price"], NEG_PRICE, 10.0, 0.0),
            new_balances(ids["tier_overlap"], OVERLAP, 10.0, 0.0),
            new_balances(ids["tier_rate"], BAD_RATE, 10.0, 0.0),
            new_balances(ids["tier_not_at_zero"], NOT_AT_ZERO, 10.0, 0.0),
            new_balances(ids["bracket_rate"], BAD_BRACKET, 0.0, 2.0),
            new_balances(ids["inf_price"], INF_PRICE, 10.0, 0.0),
            new_balances(ids["nan_price"], NAN_PRICE, 10.0, 0.0),
            new_balances(ids["stale_price"], STALE_PRICE, 10.0, 0.0),
            new_balances(ids["tied_price"], TIED_PRICE, 10.0, 0.0),
            new_balances(ids["null_price"], NULL_PRICE, 10.0, 0.0),
            # a finite row whose USDT value overflows float64 (1e306 * the BTC price)
            new_balances(ids["overflow"], OVERFLOW_ASSET, 1e306, 0.0),
        ]
    ).sort("account_id", maintain_order=True)
    orders = pl.concat(
        [
            orders.filter(~_member(ids["unknown_account_switches"])),
            new_orders(ids["unknown_account_orders"], 0, "BUY", 0.001),
            new_orders(ids["bad_side"], 1, "LONG", 0.001),
            new_orders(ids["negative_order_qty"], 2, "SELL", -0.001),
            new_orders(ids["negative_order_price"], 3, "BUY", 0.001, price=-5.0),
            new_orders(ids["order_missing_collateral_tiers"], 4, "BUY", 1.0, base=NO_TIERS, price=1.0),
            new_orders(ids["inf_order_qty"], 5, "SELL", float("inf")),
        ]
    ).sort("account_id", maintain_order=True)
    acc = acc.with_columns(
        margin_mode=pl.when(in_("unknown_mode")).then(pl.lit("portfolio")).otherwise(pl.col("margin_mode")),
        classic_leverage=pl.when(in_("bad_leverage")).then(10).otherwise(pl.col("classic_leverage")),
    )
    gone = np.concatenate([ids[k] for k in sorted(REMOVES_ACCOUNT)])
    acc = pl.concat([acc.filter(~_member(gone)), acc.filter(in_("duplicate_account"))]).sort(
        "account_id", maintain_order=True
    )
    out = {**tables, "accounts": acc, "balances": bal, "open_orders": orders}
    who = ids["unknown_account_switches"]
    if len(who):
        switch = pl.DataFrame(
            {"account_id": who, "switched_at": [SHOWCASE_AS_OF] * len(who)},
            schema=INPUT_SCHEMAS["mode_switches"],
        )
        out["mode_switches"] = pl.concat([tables["mode_switches"], switch]).sort(
            "account_id", maintain_order=True
        )
    return out


def inject_chunk(
    tables: Mapping[str, pl.DataFrame],
    pool: np.ndarray,
    k: int,
    first: int,
    rng: np.random.Generator,
    kinds: Sequence[str] = SAMPLE_FAULT_KINDS,
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Give k accounts of `pool` one fault each, kinds cycling over `kinds` from index `first`.

    Returns the new tables and the expected issues (FAULT_ISSUES_SCHEMA).
    """
    k = min(k, len(pool))
    chosen = np.sort(rng.choice(pool, size=k, replace=False)) if k else np.empty(0, np.int64)
    kind_no = (first + np.arange(k)) % len(kinds)
    expected = _expected(chosen, [kinds[i] for i in kind_no])
    if k == 0:
        return dict(tables), expected
    victims = {kind: chosen[kind_no == i] for i, kind in enumerate(kinds)}
    return apply_faults(tables, victims, FAULT_ORDER_ID_BASE + first), expected


def inject_faults(
    tables: Mapping[str, pl.DataFrame],
    share: float | None = None,
    seed: int = 0,
    *,
    per_kind: int | None = None,
    kinds: Sequence[str] = SAMPLE_FAULT_KINDS,
    reference: Mapping[str, pl.DataFrame] | None = None,
    shuffle: bool = False,
) -> Faults:
    """Inject faults into a copy of `tables` (accounts with balance rows, never showcase accounts).

    Exactly one of `share` (that share of the accounts, kinds cycling over `kinds`) or `per_kind`
    (that many distinct accounts per kind) is given. Reference rows of `reference` (default: the sample
    universe with its fault assets) are appended for every asset a reference table lacks. `shuffle`
    shuffles the rows of the per-account tables (nothing may depend on input order).
    """
    if (share is None) == (per_kind is None):
        raise ValueError("give exactly one of share and per_kind")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}")
    not_showcase = ~pl.col("account_id").is_in(SHOWCASE_IDS)
    pool = (
        tables["balances"]
        .filter(not_showcase)
        .select(pl.col("account_id").unique(maintain_order=True))
        .to_series()
        .to_numpy()
    )
    if share is not None:
        if not 0.0 <= share <= 1.0:
            raise ValueError("share must be in [0, 1]")
        n_accounts = tables["accounts"].filter(not_showcase).height
        rng = np.random.default_rng([seed, 999_983])
        out, expected = inject_chunk(tables, pool, round(share * n_accounts), 0, rng, kinds)
    elif per_kind is not None:
        rng = np.random.default_rng(seed)
        pick = rng.choice(pool, size=per_kind * len(kinds), replace=False)
        victims = {kind: pick[i * per_kind : (i + 1) * per_kind] for i, kind in enumerate(kinds)}
        out = apply_faults(tables, victims, FAULT_ORDER_ID_BASE)
        expected = _expected(pick, [kind for kind in kinds for _ in range(per_kind)])
    ref = reference_tables(include_fault_assets=True) if reference is None else reference
    for name in REFERENCE_TABLES:
        missing = ref[name].filter(~pl.col("asset").is_in(out[name]["asset"].unique().implode()))
        if missing.height:
            out[name] = pl.concat([out[name], missing])
    if shuffle:
        for name in ("accounts", "balances", "open_orders", "mode_switches"):
            out[name] = out[name].sample(fraction=1.0, shuffle=True, seed=int(rng.integers(0, 2**31)))
    return Faults(out, expected)
