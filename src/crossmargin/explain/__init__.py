"""`crossmargin explain`: every number and decision of one account, traced to its rows and rules.

The numbers are the engine's own: the engine runs on the rows of the accounts asked about
(`scoring.py`: the same phases as a run, on those accounts' rows only, read with the filter pushed
into the scan), each row is valued by the engine's per-row functions (`rows.py`), and each output is
shown with its formula, the comparisons it was decided by and its docs/rules.md section (`checks.py`),
in one JSON-ready structure per account (`document.py`) that the text is rendered from (`text.py`).

- `explain(account, input=..., as_of=..., [policy=...])` or `explain(account, out=RUN_DIR)`: one account;
- `explain_many(accounts, ...)`: several accounts from one engine run (an account's results never
  depend on the other accounts of a run), one explanation each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crossmargin.errors import UsageError
from crossmargin.explain.source import ExplainError, Source, from_input, from_run

__all__ = ["ExplainError", "explain", "explain_many", "source_of"]


def source_of(
    input: Path | str | None = None,
    as_of: dt.datetime | str | None = None,
    policy: Path | str | None = None,
    out: Path | str | None = None,
) -> Source:
    """The inputs to explain from: a run's directory (`out`), or an input directory at an as_of."""
    if out is not None:
        if input is not None or as_of is not None or policy is not None:
            raise UsageError("give --out RUN_DIR alone (it names the run's inputs, as_of and policy), "
                             "or --input DIR --as-of TS [--policy FILE]")  # fmt: skip
        return from_run(Path(out))
    if input is None or as_of is None:
        raise UsageError("give --input DIR and --as-of TS, or --out RUN_DIR (a run's output directory)")
    return from_input(Path(input), _as_of(as_of), Path(policy) if policy is not None else None)


def _as_of(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise UsageError(f"as_of {value.isoformat()} has no time zone; give it in UTC")
        return value.astimezone(dt.UTC)
    from crossmargin.cli import _parse_as_of

    return _parse_as_of(value)


def explain_many(
    accounts: Iterable[int], source: Source | None = None, **where: Any
) -> dict[int, dict[str, Any]]:
    """The explanation of each account (by id, in the order given), from one engine run over their
    rows. The inputs: a `source`, or `where` for `source_of` (`input`, `as_of`, `policy`, or `out`)."""
    from crossmargin.explain.document import Accounts
    from crossmargin.explain.scoring import score_accounts

    ids = list(dict.fromkeys(int(a) for a in accounts))
    if not ids:
        raise UsageError("no account to explain")
    source = source or source_of(**where)
    explained = Accounts(score_accounts(source, ids))
    unknown = [i for i in ids if not explained.known(i)]
    if unknown:
        raise ExplainError(
            f"account {unknown[0]} is in no input table of {source.input_dir} (no such account)"
        )
    return {i: explained.explain(i, source.record()) for i in ids}


def explain(account: int, source: Source | None = None, **where: Any) -> dict[str, Any]:
    """The explanation of one account (see the module docstring and explain/document.py for its keys)."""
    return explain_many([account], source, **where)[int(account)]
