"""Analyst surfaces over a run's outputs: SQL reports, day-over-day diff, HTML report, notebooks.

Modules: `sql` (the report files and the views over one run), `root` (the views over every nightly
partition of a root), `text` (terminal tables), `page` (what every HTML page is made of), `html` (one
run's cohort page), `programme` (the programme page over a root), `diff`, `rundir`.

Nothing here computes a formula of the rules: everything reads account_risk / actions / data_issues
and manifest.json, except `explain`, which asks the engine itself (crossmargin.explain) about a few
accounts. Errors are `crossmargin.errors.CrossmarginError`s (one line, an exit code), never a typer
exit: `crossmargin.cli.main` prints them.

`out_dir_from_env()` is what the notebooks call to find their run: `$CROSSMARGIN_OUT`, a relative value
resolved from the directory the command was typed in (`$PWD`), not from `notebooks/`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crossmargin.analytics.rundir import out_dir_from_env, read_manifest

__all__ = ["explain", "explain_many", "out_dir_from_env", "read_manifest"]


def explain(account: int, **where: Any) -> dict[str, Any]:
    """Every number and decision of one account, traced to its rows and rules: the structure
    `crossmargin explain --format json` prints. `where`: `out=RUN_DIR` (that run's inputs, as_of and
    policy, refused if an input changed since), or `input=DIR, as_of=TS[, policy=FILE]`."""
    from crossmargin.explain import explain as explain_account  # the engine: imported when asked

    return explain_account(account, **where)


def explain_many(accounts: Iterable[int], **where: Any) -> dict[int, dict[str, Any]]:
    """`explain` for several accounts at once (one engine run over their rows), by account id."""
    from crossmargin.explain import explain_many as explain_accounts

    return explain_accounts(accounts, **where)
