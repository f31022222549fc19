"""The mechanism every data-quality check uses: named rules, the first broken rule per row.

A rule is (code, table, broken, detail[, asset]): `broken` is a boolean expression over one row (or
one account's aggregate), `detail` the text of the issue. A row reports the *first* rule it breaks,
so each table's rules are an ordered list and one bad row gives one issue row. `asset` names the
reference-data asset a rule is about (a price or tier problem), so a run can say which asset's
problem took how many accounts out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from crossmargin.io.schemas import ISSUE_COLUMNS, IssueCode

_NO_ASSET = pl.lit(None, pl.String)


@dataclass(frozen=True)
class Rule:
    code: str
    table: str
    broken: pl.Expr
    detail: pl.Expr
    asset: pl.Expr = _NO_ASSET


def fmt(template: str, *args: pl.Expr) -> pl.Expr:
    """`pl.format` as concat_str: polars' str_format panicked under the streaming engine on a filtered
    multi-chunk frame (e.g. a parquet input with several row groups); concat_str does not."""
    parts = template.split("{}")
    assert len(parts) == len(args) + 1, template
    exprs: list[pl.Expr] = []
    for text, arg in zip(parts, [*args, None], strict=True):
        if text:
            exprs.append(pl.lit(text))
        if arg is not None:
            exprs.append(arg.cast(pl.String))
    return pl.concat_str(exprs)


def text(e: pl.Expr) -> pl.Expr:
    """A value as text for a detail; null reads "null"."""
    return e.cast(pl.String).fill_null("null")


def any_of(cols: list[str], test: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    return pl.any_horizontal([test(pl.col(c)) for c in cols])


def values(cols: list[str]) -> pl.Expr:
    """`a=1 b=null ...`: the named columns of a row, for a detail."""
    parts: list[pl.Expr] = []
    for i, c in enumerate(cols):
        parts += [pl.lit(("" if i == 0 else " ") + f"{c}="), text(pl.col(c))]
    return pl.concat_str(parts)


def first_broken(rules: list[Rule]) -> pl.Expr:
    """UInt8 index of the first rule a row breaks, null for a good row."""
    chain = pl.when(rules[0].broken).then(pl.lit(0, pl.UInt8))
    for i, rule in enumerate(rules[1:], start=1):
        chain = chain.when(rule.broken).then(pl.lit(i, pl.UInt8))
    return chain


def _pick(rules: list[Rule], field: str) -> pl.Expr:
    idx = pl.col("_rule")
    chain = pl.when(idx == 0).then(getattr(rules[0], field))
    for i, rule in enumerate(rules[1:], start=1):
        chain = chain.when(idx == i).then(getattr(rule, field))
    return chain


def issue_rows(frame: pl.LazyFrame, rules: list[Rule]) -> pl.LazyFrame:
    """The first rule each row breaks, as issue rows (account_id, table, code, detail, asset)."""
    return (
        frame.with_columns(first_broken(rules).alias("_rule"))
        .filter(pl.col("_rule").is_not_null())
        .select(
            "account_id",
            pl.col("_rule")
            .replace_strict({i: r.table for i, r in enumerate(rules)}, return_dtype=pl.String)
            .alias("table"),
            pl.col("_rule")
            .replace_strict({i: r.code for i, r in enumerate(rules)}, return_dtype=IssueCode)
            .alias("code"),
            _pick(rules, "detail").cast(pl.String).alias("detail"),
            _pick(rules, "asset").cast(pl.String).alias("asset"),
        )
    )


def empty_issues() -> pl.LazyFrame:
    return pl.LazyFrame(schema=ISSUE_COLUMNS)


def grouped_issue(
    frame: pl.LazyFrame, broken: pl.Expr, table: str, code: str, detail: pl.Expr
) -> pl.LazyFrame:
    """Issue rows for a per-account (group-level) condition."""
    return frame.filter(broken).select(
        "account_id",
        pl.lit(table).alias("table"),
        pl.lit(code).cast(IssueCode).alias("code"),
        detail.cast(pl.String).alias("detail"),
        _NO_ASSET.alias("asset"),
    )
