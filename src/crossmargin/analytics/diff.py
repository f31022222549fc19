"""Day-over-day changes per account between two runs (`crossmargin diff --before DIR --after DIR`).

Reads the engine's outputs of both runs (account_risk, actions, data_issues) and compares its flags;
nothing is recomputed. The result is long: one row per account and change kind, for every account
present in either run, with its mode, margin level and a change-specific detail before and after.

Change kinds (CHANGES, in this order):

- new_account / dropped_account: in account_risk of the after run only / of the before run only;
- new_data_issue / resolved_data_issue: the account is listed in data_issues after and not before / the
  reverse (detail: its issue codes);
- mode_changed: margin_mode differs;
- new_margin_call / resolved_margin_call, new_liquidation / resolved_liquidation: the flag turned
  on / off (margin_call is true for liquidated accounts too, as in account_risk);
- new_borrow_block / resolved_borrow_block / borrow_block_reason_changed (detail: the reason);
- became_eligible_for_pro / lost_eligibility (detail: pro_ineligible_reasons);
- migration_state_changed: the reason of the MIGRATE_TO_CLASSIC action (none, pending, due) differs;
- new_partial_repayment / resolved_partial_repayment: partial_repayment_usdt turned > 0 / back to 0.

Flag changes are only reported for accounts in account_risk of both runs: an account that appears or
disappears gets new_account / dropped_account (and the data-issue change that explains it, if any).

`crossmargin diff` prints the counts per kind; it writes the per-account rows only when given
`--dest FILE` (`write_diff`: a parquet file tagged as written by `crossmargin diff`, so a later diff may
replace it; any other existing file is left alone unless `--force`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from crossmargin.analytics.rundir import one_line, require_run, write_dest
from crossmargin.errors import CrossmarginError

CHANGES = [
    "new_account",
    "dropped_account",
    "new_data_issue",
    "resolved_data_issue",
    "mode_changed",
    "new_margin_call",
    "resolved_margin_call",
    "new_liquidation",
    "resolved_liquidation",
    "new_borrow_block",
    "resolved_borrow_block",
    "borrow_block_reason_changed",
    "became_eligible_for_pro",
    "lost_eligibility",
    "migration_state_changed",
    "new_partial_repayment",
    "resolved_partial_repayment",
]
Change = pl.Enum(CHANGES)

DIFF_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "change": Change,
    "margin_mode_before": pl.String(),
    "margin_mode_after": pl.String(),
    "margin_level_before": pl.Float64(),
    "margin_level_after": pl.Float64(),
    "detail_before": pl.String(),
    "detail_after": pl.String(),
    "partial_repayment_usdt_before": pl.Float64(),
    "partial_repayment_usdt_after": pl.Float64(),
}

_RISK_COLUMNS = [
    "account_id",
    "margin_mode",
    "margin_level",
    "margin_call",
    "liquidation",
    "borrow_blocked",
    "borrow_blocked_reason",
    "eligible_for_pro",
    "pro_ineligible_reasons",
    "partial_repayment_usdt",
]


class DiffError(CrossmarginError):
    """A run's output file that cannot be read or lacks a column the diff compares."""

    exit_code = 2


def _state(out_dir: Path) -> pl.LazyFrame:
    """One row per account of one run: the fields compared, plus presence in account_risk/data_issues."""
    out_dir = Path(out_dir)
    require_run(out_dir)
    risk = (
        pl.scan_parquet(out_dir / "account_risk.parquet")
        .select(_RISK_COLUMNS)
        .with_columns(
            pl.col("margin_mode").cast(pl.String),
            pl.col("borrow_blocked_reason").cast(pl.String),
            pl.col("pro_ineligible_reasons").cast(pl.List(pl.String)),  # enums compare across runs as text
            pl.lit(True).alias("in_risk"),
        )
    )
    migration = (
        pl.scan_parquet(out_dir / "actions.parquet")
        .filter(pl.col("action").cast(pl.String) == "MIGRATE_TO_CLASSIC")
        .group_by("account_id")
        .agg(pl.col("reason").cast(pl.String).sort().str.join(",").alias("migration_state"))
    )
    issues = (
        pl.scan_parquet(out_dir / "data_issues.parquet")
        .filter(pl.col("account_id").is_not_null())
        .group_by("account_id")
        .agg(pl.col("code").cast(pl.String).unique().sort().str.join(",").alias("issue_codes"))
    )
    accounts = pl.concat([risk.select("account_id"), issues.select("account_id")], how="vertical").unique()
    return (
        accounts.join(risk, on="account_id", how="left")
        .join(migration, on="account_id", how="left")
        .join(issues, on="account_id", how="left")
        .with_columns(
            pl.col("in_risk").fill_null(False),
            pl.col("issue_codes").is_not_null().alias("in_issues"),
            pl.when(pl.col("in_risk"))
            .then(pl.col("migration_state").fill_null("none"))
            .alias("migration_state"),
        )
    )


def diff_runs(before_dir: Path, after_dir: Path) -> pl.DataFrame:
    """Per-account changes from the run in `before_dir` to the run in `after_dir` (schema DIFF_SCHEMA)."""
    try:
        return _diff_runs(before_dir, after_dir)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DiffError(f"cannot compare {before_dir} and {after_dir}: {one_line(exc)}") from None


def _diff_runs(before_dir: Path, after_dir: Path) -> pl.DataFrame:
    before = _state(before_dir)
    after = _state(after_dir)
    j = before.join(after, on="account_id", how="full", coalesce=True, suffix="_after")

    def b(c):
        return pl.col(c).fill_null(False)

    def a(c):
        return pl.col(f"{c}_after").fill_null(False)

    both = b("in_risk") & a("in_risk")

    def turned_on(c: str) -> pl.Expr:
        return both & ~b(c) & a(c)

    def turned_off(c: str) -> pl.Expr:
        return both & b(c) & ~a(c)

    rep_b = pl.col("partial_repayment_usdt") > 0
    rep_a = pl.col("partial_repayment_usdt_after") > 0
    kinds: dict[str, tuple[pl.Expr, str | None]] = {
        "new_account": (~b("in_risk") & a("in_risk"), None),
        "dropped_account": (b("in_risk") & ~a("in_risk"), None),
        "new_data_issue": (~b("in_issues") & a("in_issues"), "issue_codes"),
        "resolved_data_issue": (b("in_issues") & ~a("in_issues"), "issue_codes"),
        "mode_changed": (both & (pl.col("margin_mode") != pl.col("margin_mode_after")), None),
        "new_margin_call": (turned_on("margin_call"), None),
        "resolved_margin_call": (turned_off("margin_call"), None),
        "new_liquidation": (turned_on("liquidation"), None),
        "resolved_liquidation": (turned_off("liquidation"), None),
        "new_borrow_block": (turned_on("borrow_blocked"), "borrow_blocked_reason"),
        "resolved_borrow_block": (turned_off("borrow_blocked"), "borrow_blocked_reason"),
        "borrow_block_reason_changed": (
            both
            & b("borrow_blocked")
            & a("borrow_blocked")
            & (pl.col("borrow_blocked_reason") != pl.col("borrow_blocked_reason_after")),
            "borrow_blocked_reason",
        ),
        "became_eligible_for_pro": (turned_on("eligible_for_pro"), "pro_ineligible_reasons"),
        "lost_eligibility": (turned_off("eligible_for_pro"), "pro_ineligible_reasons"),
        "migration_state_changed": (
            both & (pl.col("migration_state") != pl.col("migration_state_after")),
            "migration_state",
        ),
        "new_partial_repayment": (both & ~rep_b & rep_a, None),
        "resolved_partial_repayment": (both & rep_b & ~rep_a, None),
    }
    assert list(kinds) == CHANGES
    flags = [expr.fill_null(False).alias(f"_chg_{k}") for k, (expr, _) in kinds.items()]
    # keep only the accounts with at least one change before building the long form (memory ~ changes)
    changed = j.with_columns(flags).filter(pl.any_horizontal(pl.col(f"_chg_{k}") for k in CHANGES)).collect()

    def detail(col: str | None) -> pl.Expr:
        if col is None:
            return pl.lit(None, pl.String)
        if isinstance(changed.schema[col], pl.List):
            return pl.col(col).list.join(",")
        return pl.col(col).cast(pl.String)

    parts = [
        changed.filter(pl.col(f"_chg_{k}")).select(
            "account_id",
            pl.lit(k, Change).alias("change"),
            pl.col("margin_mode").alias("margin_mode_before"),
            pl.col("margin_mode_after"),
            pl.col("margin_level").alias("margin_level_before"),
            pl.col("margin_level_after"),
            detail(col).alias("detail_before"),
            detail(None if col is None else f"{col}_after").alias("detail_after"),
            pl.col("partial_repayment_usdt").alias("partial_repayment_usdt_before"),
            pl.col("partial_repayment_usdt_after"),
        )
        for k, (_, col) in kinds.items()
    ]
    out = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=DIFF_SCHEMA)
    return out.cast(DIFF_SCHEMA).select(list(DIFF_SCHEMA)).sort("account_id", "change")


def summarize(diff: pl.DataFrame) -> pl.DataFrame:
    """Counts of accounts per change kind, every kind listed (zeros included), in CHANGES order."""
    counts = diff.group_by("change").agg(pl.len().cast(pl.Int64).alias("accounts"))
    kinds = pl.DataFrame({"change": CHANGES}, schema={"change": Change})
    return kinds.join(counts, on="change", how="left").with_columns(pl.col("accounts").fill_null(0))


def as_of_text(out_dir: Path) -> str:
    """The run's as_of as written in its manifest ("?" if it has none)."""
    return str(require_run(out_dir).get("as_of") or "?")


def write_diff(diff: pl.DataFrame, dest: Path, *, force: bool = False) -> Path:
    """Write the per-account changes to the parquet file `dest` (see the module docstring)."""
    return write_dest(
        dest, lambda tmp: diff.write_parquet(tmp, metadata={"crossmargin": "diff"}), kind="diff", force=force
    )


def summary_text(before: Path, after: Path, diff: pl.DataFrame, dest: Path | None = None) -> str:
    """What `crossmargin diff` prints: both runs, accounts per change kind, where the rows went."""
    import io

    from rich.console import Console
    from rich.table import Table

    table = Table(title="changes per account")
    table.add_column("change")
    table.add_column("accounts", justify="right")
    for change, n in summarize(diff).iter_rows():
        table.add_row(change, f"{n:,}")
    buf = io.StringIO()
    Console(file=buf, width=80, color_system=None, highlight=False).print(table)
    where = f" -> {dest}" if dest is not None else " (not written; --dest FILE writes them)"
    return (
        f"before: {before} (as_of {as_of_text(before)})\n"
        f"after:  {after} (as_of {as_of_text(after)})\n"
        f"{buf.getvalue()}"
        f"{diff.height} change rows for {diff['account_id'].n_unique()} accounts{where}"
    )
