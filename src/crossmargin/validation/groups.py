"""Checks over an account's rows and results (group-level rules).

- `duplicate_row`: an (account_id, asset) twice in balances or an (account_id, order_id) twice in
  open orders. The per-row pass gives each row the bit `key % 64` of its key (`key_bit`); the sums
  OR them per account, and fewer set bits than rows flags a *candidate* (a repeat or a collision of
  two keys on one bit). Only the candidates' rows are then checked exactly (`repeated_keys`).
  An account_id twice in accounts is a row rule (rows.py).
- `unknown_account`: rows of balances, open orders or mode switches whose account is not in accounts.
- `non_finite_value`: an account whose sums overflow float64 although every input was finite, or a
  level whose denominator is not 0 but whose quotient is not finite (e.g. a subnormal margin).
"""

from __future__ import annotations

import polars as pl

from crossmargin.io.schemas import FLOAT_OUTPUTS, LEVEL_DENOMINATORS, QUANTITY_COLUMNS
from crossmargin.validation.rules import empty_issues, fmt, grouped_issue, text

_POWERS_OF_TWO = pl.Series("bit", [1 << i for i in range(64)], dtype=pl.UInt64)


def key_bit(key: pl.Expr) -> pl.Expr:
    """1 << (key % 64) for an unsigned integer key: the row's bit in its account's key set."""
    return pl.lit(_POWERS_OF_TWO).gather(key % 64).alias("key_bit")


def repeated_keys(frame: pl.LazyFrame, sums: pl.DataFrame, key: str, table: str) -> pl.LazyFrame:
    """duplicate_row issues for keys seen twice, among the accounts flagged `maybe_repeat`.

    The input is read again only when some account is flagged (a repeat or a bit collision)."""
    candidates = sums.filter(pl.col("maybe_repeat"))["account_id"]
    if candidates.is_empty():
        return empty_issues()
    repeats = (
        frame.filter(pl.col("account_id").is_in(candidates.implode()))
        .group_by("account_id", key)
        .len()
        .filter(pl.col("len") > 1)
    )
    detail = fmt(f"{key} {{}} appears {{}} times", text(pl.col(key)), pl.col("len"))
    return grouped_issue(repeats, pl.lit(True), table, "duplicate_row", detail)


def unknown_accounts(sums: pl.LazyFrame, accounts: pl.LazyFrame, table: str, rows: str) -> pl.LazyFrame:
    """unknown_account issues: accounts with rows in `table` (per-account `sums`) but not in accounts."""
    # a left join of two account-sorted frames is a merge join (8x faster than how="anti" at 10M)
    known = accounts.select("account_id", pl.lit(True).alias("_known"))
    stray = sums.join(known, on="account_id", how="left", maintain_order="left").filter(
        pl.col("_known").is_null()
    )
    detail = fmt("{} {} row(s) for an account not in accounts", pl.col(rows), pl.lit(table))
    return grouped_issue(stray, pl.lit(True), table, "unknown_account", detail)


def _first_non_finite(columns: list[str], ok: dict[str, pl.Expr]) -> pl.Expr:
    """Name and value of the first column that is not a finite number (and not excused by `ok`)."""
    chain = None
    for c in columns:
        bad = ~pl.col(c).is_finite() & ~ok.get(c, pl.lit(False))
        then = fmt(f"{c} is {{}}", text(pl.col(c)))
        chain = pl.when(bad).then(then) if chain is None else chain.when(bad).then(then)
    return chain


def non_finite_results(computed: pl.LazyFrame) -> pl.LazyFrame:
    """non_finite_value issues of accounts whose results are not finite numbers.

    Sums that overflow float64 come first (the detail names the sum); then any level or amount that
    is not finite, except a level that is +inf because its denominator is 0 (the +inf rule)."""
    zero_denominator = {level: pl.col(d) == 0 for level, d in LEVEL_DENOMINATORS.items()}
    excused = {level: (pl.col(level) == float("inf")) & zero for level, zero in zero_denominator.items()}
    sums_overflow = pl.any_horizontal([~pl.col(c).is_finite() for c in QUANTITY_COLUMNS])
    detail = (
        pl.when(sums_overflow)
        .then(
            fmt(
                "account sums overflow float64 (values too large): {}",
                _first_non_finite(QUANTITY_COLUMNS, {}),
            )
        )
        .otherwise(_first_non_finite(FLOAT_OUTPUTS, excused))
    )
    broken = pl.any_horizontal(
        [~pl.col(c).is_finite() & ~excused.get(c, pl.lit(False)) for c in FLOAT_OUTPUTS]
    )
    return grouped_issue(computed, broken, "balances", "non_finite_value", detail)
