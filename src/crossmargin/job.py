"""The nightly job: files in, files out.

`run_job` is the whole run, in the order a reader checks it:
1. `check_options` and `outputs.check_destination`: refuse a bad option or an unclear `--out` with one
   line, before any work;
2. resolve the policy at as_of, read the input files (schemas checked: inputs.py);
3. split the book into account-id buckets and score each with the engine (`score_bucket`: one
   function call per bucket, which writes that bucket's part files), while a thread checksums the
   input files;
4. the issue-rate gate: too many accounts with data issues and only data_issues is kept, in
   OUT.rejected/ (exit 4);
5. the manifest, then one atomic publish of the staged directory (outputs.py).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from crossmargin import __version__, outputs
from crossmargin.engine import score
from crossmargin.errors import CrossmarginError, IssueRateExceeded, UsageError
from crossmargin.inputs import InputFile, load_inputs, unreadable_table
from crossmargin.policy import Policy, PolicyError, resolve
from crossmargin.progress import Progress
from crossmargin.scenarios import ScenarioSet, load_scenarios, scenario_schema
from crossmargin.schemas import PRICE_PROBLEMS

ACCOUNT_TABLES = ["accounts", "balances", "open_orders", "mode_switches"]
ACCOUNTS_PER_BUCKET = (
    12_000_000  # at most this many accounts per bucket by default (~0.5 GB peak per million)
)

Bounds = tuple[int | None, int | None]


# ------------------------------------------------------------------ options


def check_options(max_issue_rate: float, buckets: int | None) -> None:
    """Refuse an option outside its range (exit 2, one line), before any work."""
    if not (isinstance(max_issue_rate, int | float) and 0.0 <= max_issue_rate <= 1.0):
        raise UsageError(f"--max-issue-rate {max_issue_rate} is outside [0, 1]")
    if buckets is not None and buckets < 1:
        raise UsageError(f"--buckets {buckets} must be at least 1")


# ------------------------------------------------------------------ buckets


def bucket_bounds(accounts: pl.LazyFrame, buckets: int) -> list[Bounds]:
    """Account-id ranges [lo, hi) holding about the same number of accounts (quantiles of account_id).

    Ranges rather than hashes: inputs sorted by account_id then skip whole row groups per bucket,
    and concatenating the buckets' sorted outputs gives the same rows in the same order as one pass.
    """
    if buckets <= 1:
        return [(None, None)]
    qs = [i / buckets for i in range(1, buckets)]
    cuts = accounts.select(
        [pl.col("account_id").quantile(q, "nearest").alias(str(i)) for i, q in enumerate(qs)]
    ).collect()
    edges = sorted({int(v) for v in cuts.row(0) if v is not None})
    lows: list[int | None] = [None, *edges]
    highs: list[int | None] = [*edges, None]
    return list(zip(lows, highs, strict=True))


def in_bucket(bounds: Bounds) -> pl.Expr:
    lo, hi = bounds
    keep = pl.lit(True)
    if lo is not None:
        keep = keep & (pl.col("account_id") >= lo)
    if hi is not None:
        keep = keep & (pl.col("account_id") < hi)
    if lo is None:  # rows without an account id are checked once, in the first bucket
        keep = keep | pl.col("account_id").is_null()
    return keep


@dataclass(frozen=True)
class BucketResult:
    """What scoring one bucket leaves besides its part files: small, so it can cross processes."""

    rows: dict[str, int]
    bad_accounts: int
    price_problems: pl.DataFrame


def part_path(staging: Path, table: str, bucket: int) -> Path:
    return staging / f".{table}.part{bucket:05d}.parquet"


def score_bucket(
    tables: dict[str, pl.LazyFrame],
    policy: Policy,
    bounds: Bounds,
    bucket: int,
    staging: Path,
    scenarios: ScenarioSet | None = None,
) -> BucketResult:
    """Score the accounts of one id range and write their part files into `staging`."""
    part = {
        name: frame.filter(in_bucket(bounds)) if name in ACCOUNT_TABLES else frame
        for name, frame in tables.items()
    }
    scores = score(part, policy, scenarios)
    frames = {
        "account_risk": scores.account_risk,
        "actions": scores.actions,
        "data_issues": scores.data_issues,
    }
    for table, frame in frames.items():
        frame.write_parquet(part_path(staging, table, bucket), **outputs.PARQUET_OPTIONS)
    # rows of unknown accounts are listed but do not count: the rate is over input accounts
    bad = scores.data_issues.filter(pl.col("code") != "unknown_account")["account_id"].n_unique()
    result = BucketResult({t: f.height for t, f in frames.items()}, bad, scores.price_problems)
    chunks = scores.scenario_risk
    del scores, frames  # the scenario chunks are computed while they are written: free the rest first
    if chunks is not None and scenarios is not None:  # streamed into the part file as computed
        path = part_path(staging, outputs.SCENARIO_TABLE, bucket)
        result.rows[outputs.SCENARIO_TABLE] = outputs.sink_chunks(chunks, scenario_schema(scenarios), path)
    return result


def score_bucket_from_files(
    input_dir: Path,
    policy: Policy,
    bounds: Bounds,
    bucket: int,
    staging: Path,
    scenarios: ScenarioSet | None = None,
) -> BucketResult:
    """`score_bucket` reading the inputs itself (a worker on another machine passes paths, not frames)."""
    tables = {name: frame for name, (frame, _) in load_inputs(Path(input_dir)).items()}
    return score_bucket(tables, policy, bounds, bucket, staging, scenarios)


# An executor scores every bucket and returns their results in bucket order (local: one after another).
Executor = Callable[..., list[BucketResult]]


def local_executor(
    tables: dict[str, pl.LazyFrame],
    policy: Policy,
    bounds: list[Bounds],
    staging: Path,
    progress: Progress,
    scenarios: ScenarioSet | None = None,
    **_: Any,
) -> list[BucketResult]:
    results = []
    for i, b in enumerate(bounds):
        progress.step(f"scoring accounts (bucket {i + 1}/{len(bounds)})")
        results.append(score_bucket(tables, policy, b, i, staging, scenarios))
        progress.advance()
    return results


def merge_parts(staging: Path, buckets: int, tables: list[str] | None = None) -> None:
    """Each table's part files, in bucket order, become its one output file (a rename for one part)."""
    for table in tables or outputs.OUTPUT_TABLES:
        parts = [part_path(staging, table, i) for i in range(buckets)]
        target = staging / f"{table}.parquet"
        if len(parts) == 1:
            os.replace(parts[0], target)
        else:
            pl.scan_parquet(parts).sink_parquet(target, **outputs.PARQUET_OPTIONS)
            for p in parts:
                p.unlink()
        outputs.fsync(target)


def merge_price_problems(results: list[BucketResult]) -> pl.DataFrame:
    """Per asset and price problem, over every bucket (accounts are disjoint between buckets)."""
    frames = [r.price_problems for r in results]
    return (
        pl.concat(frames, how="vertical_relaxed")
        .group_by("asset", "code")
        .agg(pl.col("detail").min(), pl.col("accounts").sum())
        .sort("asset", "code")
        .select([pl.col(c).cast(d) for c, d in PRICE_PROBLEMS.items()])
    )


def price_problem_text(problems: pl.DataFrame) -> str:
    """`; price problems: BTC stale_price (3 accounts), ...` for the summary line ('' when none)."""
    if problems.is_empty():
        return ""
    items = [f"{a} {c} ({n} account{'s' if n != 1 else ''})" for a, c, _, n in problems.iter_rows()]
    return "; price problems: " + ", ".join(items)


# ------------------------------------------------------------------ the run


@dataclass
class _Run:
    """What a run accumulates before its manifest."""

    started: str
    policy: Policy
    inputs: dict[str, InputFile]
    buckets: list[Bounds]
    tables: list[str] = field(default_factory=lambda: list(outputs.OUTPUT_TABLES))
    results: list[BucketResult] = field(default_factory=list)

    @property
    def rows(self) -> dict[str, int]:
        return {t: sum(r.rows[t] for r in self.results) for t in self.tables}

    @property
    def bad_accounts(self) -> int:
        return sum(r.bad_accounts for r in self.results)


def _reject(staging: Path, out_dir: Path, manifest: dict[str, Any]) -> Path:
    """Keep only data_issues (and a manifest naming it) in OUT.rejected/, published atomically."""
    rejected = outputs.rejected_dir(out_dir)
    keep = outputs.staging_dir(rejected)
    os.replace(staging / "data_issues.parquet", keep / "data_issues.parquet")
    outputs.write_manifest(
        keep,
        {**manifest, "status": "rejected", "outputs": {"data_issues": manifest["outputs"]["data_issues"]}},
    )
    outputs.publish(keep, rejected)
    return rejected


def run_job(
    as_of: dt.datetime,
    input_dir: Path,
    out_dir: Path,
    policy_file: Path | None = None,
    max_issue_rate: float = 0.01,
    buckets: int | None = None,
    executor: Executor = local_executor,
    engine: str = "local",
    scenarios: str | Path | None = None,
) -> str:
    """Read inputs, score every bucket, publish the output files atomically; a one-line summary.

    `scenarios`: a scenario TOML file, or "default" for the shipped set: adds scenario_risk.
    """
    t0 = time.perf_counter()
    started = outputs.utc_now()
    check_options(max_issue_rate, buckets)
    scenario_set = load_scenarios(scenarios) if scenarios is not None else None
    out_dir, input_dir = Path(out_dir), Path(input_dir)
    outputs.check_destination(out_dir, input_dir)
    try:
        policy = resolve(as_of, policy_file)
    except PolicyError as exc:
        raise CrossmarginError(str(exc)) from None
    loaded = load_inputs(input_dir)
    tables = {name: frame for name, (frame, _) in loaded.items()}
    files = {name: f for name, (_, f) in loaded.items()}
    n_accounts = files["accounts"].rows
    wanted = buckets or max(1, math.ceil(n_accounts / ACCOUNTS_PER_BUCKET))
    run = _Run(started, policy, files, bucket_bounds(tables["accounts"], wanted))
    if scenario_set is not None:
        run.tables.append(outputs.SCENARIO_TABLE)

    staging = outputs.staging_dir(out_dir)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:  # checksum the inputs while the engine runs
            checksums = {name: pool.submit(f.sha256) for name, f in files.items()}
            with Progress(len(run.buckets), "scoring accounts") as progress:
                try:
                    run.results = executor(
                        tables=tables,
                        policy=policy,
                        bounds=run.buckets,
                        staging=staging,
                        progress=progress,
                        input_dir=input_dir,
                        **({"scenarios": scenario_set} if scenario_set is not None else {}),
                    )
                except (pl.exceptions.PolarsError, OSError) as exc:
                    raise unreadable_table(list(files.values())) or exc from None
                progress.step("writing outputs")
                merge_parts(staging, len(run.buckets), run.tables)
            inputs_entry = {
                name: {"file": f.path.name, "rows": f.rows, "sha256": checksums[name].result()}
                for name, f in files.items()
            }
        problems = merge_price_problems(run.results)
        issue_rate = run.bad_accounts / n_accounts if n_accounts else 0.0
        manifest = {
            "producer": outputs.PRODUCER,
            "as_of": policy.as_of.isoformat().replace("+00:00", "Z"),
            "policy_version": policy.version,
            "policy_sha256": policy.source_sha256,
            "policy_file": str(Path(policy_file).resolve()) if policy_file else None,
            "policy": policy.as_record(),
            "software_version": __version__,
            "polars_version": pl.__version__,
            "engine": engine,
            "input_dir": str(input_dir),
            "inputs": inputs_entry,
            "outputs": {t: outputs.output_entry(staging / f"{t}.parquet", run.rows[t]) for t in run.tables},
            "accounts_in": n_accounts,
            "accounts_with_issues": run.bad_accounts,
            "issue_rate": issue_rate,
            "max_issue_rate": max_issue_rate,
            "price_problems": problems.to_dicts(),
            "buckets": len(run.buckets),
            "started_at": started,
        }
        if scenario_set is not None:
            manifest["scenarios"] = scenario_set.as_record()
        if issue_rate > max_issue_rate:
            manifest["finished_at"] = outputs.utc_now()
            rejected = _reject(staging, out_dir, manifest)
            raise IssueRateExceeded(
                f"{run.bad_accounts} of {n_accounts} accounts ({issue_rate:.2%}) have data issues, above "
                f"--max-issue-rate {max_issue_rate:.2%}: nothing written to {out_dir}; "
                f"data_issues written to {rejected / 'data_issues.parquet'}{price_problem_text(problems)}"
            )
        manifest["finished_at"] = outputs.utc_now()
        outputs.write_manifest(staging, manifest)
        outputs.publish(staging, out_dir)
        outputs.remove_rejected(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    rows = run.rows
    return (
        f"as_of {manifest['as_of']} policy {policy.version}: {rows['account_risk']} accounts scored, "
        f"{run.bad_accounts} with data issues, {rows['actions']} actions -> {out_dir} "
        f"({time.perf_counter() - t0:.1f} s){price_problem_text(problems)}"
    )
