"""Analyst surfaces over a run's outputs: SQL reports, day-over-day diff, HTML report, notebooks.

Modules: `sql` (the report files and the views over one run), `root` (the views over every nightly
partition of a root), `text` (terminal tables), `page` (what every HTML page is made of), `html` (one
run's cohort page), `programme` (the programme page over a root), `diff`, `rundir`.

Nothing here computes a formula of the rules: everything reads account_risk / actions / data_issues
and manifest.json. Errors are `crossmargin.errors.CrossmarginError`s (one line, an exit code), never
a typer exit: `crossmargin.cli.main` prints them.

`out_dir_from_env()` is what the notebooks call to find their run: `$CROSSMARGIN_OUT`, a relative value
resolved from the directory the command was typed in (`$PWD`), not from `notebooks/`.
"""

from crossmargin.analytics.rundir import out_dir_from_env, read_manifest

__all__ = ["out_dir_from_env", "read_manifest"]
