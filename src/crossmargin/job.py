"""The nightly job: files in, files out.

`run_job` is the whole run, in the order a reader checks it:
1. `check_options` and `outputs.check_destination`: refuse a bad option or an unclear `--out` with one
   line, before any work;
2. resolve the policy at as_of, read the input files (schemas checked: inputs.py);
3. split the book into account-id buckets and score each with the engine (`score_bucket`: one
   function call per bucket, which writes that bucket's part files, each hashed as it is written),
   while a thread checksums the input files;
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

from crossmargin import __version__
from crossmargin.engine import Scores, score
from crossmargin.engine.scenarios import scenario_schema
from crossmargin.errors import IssueRateExceeded, UsageError
from crossmargin.io import outputs
from crossmargin.io.feed import check_feed, read_baseline
from crossmargin.io.inputs import InputFile, in_account_order, load_inputs, sha256_file, unreadable_table
from crossmargin.io.schemas import ACCOUNT_RISK, ACTIONS_SCHEMA, DATA_ISSUES, PRICE_PROBLEMS
from crossmargin.io.streams import TableStream
from crossmargin.policy import Policy, resolve
from crossmargin.progress import Progress
from crossmargin.scenario_set import ScenarioSet, load_scenarios

ACCOUNT_TABLES = ["accounts", "balances", "open_orders", "mode_switches"]
# at most this many accounts per bucket by default: a bucket's frames take about 0.6 GB per million
# accounts, and its outputs are written while the next bucket is scored (io/streams.py)
ACCOUNTS_PER_BUCKET = 750_000
# when an account table's file is not in account order, each bucket would read all of it: fewer buckets
ACCOUNTS_PER_BUCKET_UNSORTED = 12_000_000

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
    # sha256 of each part file, hashed as it was written (a one-bucket run's part is the output)
    sha256: dict[str, str] = field(default_factory=dict)


def part_path(staging: Path, table: str, bucket: int) -> Path:
    return staging / f".{table}.part{bucket:05d}.parquet"


def bucket_tables(tables: dict[str, pl.LazyFrame], bounds: Bounds) -> dict[str, pl.LazyFrame]:
    """The input tables of one bucket: the account tables filtered to its id range, the rest whole."""
    return {
        name: frame.filter(in_bucket(bounds)) if name in ACCOUNT_TABLES else frame
        for name, frame in tables.items()
    }


def score_in_bucket(
    tables: dict[str, pl.LazyFrame], policy: Policy, bounds: Bounds, scenarios: ScenarioSet | None
) -> Scores:
    """The engine's scores of the accounts of one id range (scenario_risk in chunks of whole row groups)."""
    group = outputs.scenario_accounts_per_row_group(len(scenarios.scenarios)) if scenarios is not None else 1
    return score(bucket_tables(tables, bounds), policy, scenarios, group)


def bucket_result(scores: Scores, sha256: dict[str, str] | None = None) -> BucketResult:
    """What a bucket leaves besides its rows: counts, accounts with issues, price problems."""
    # rows of unknown accounts are listed but do not count: the rate is over input accounts
    bad = scores.data_issues.filter(pl.col("code") != "unknown_account")["account_id"].n_unique()
    rows = {t: getattr(scores, t).height for t in outputs.OUTPUT_TABLES}
    return BucketResult(rows, bad, scores.price_problems, dict(sha256 or {}))


def score_bucket(
    tables: dict[str, pl.LazyFrame],
    policy: Policy,
    bounds: Bounds,
    bucket: int,
    staging: Path,
    scenarios: ScenarioSet | None = None,
) -> BucketResult:
    """Score the accounts of one id range and write their part files into `staging` (the Ray engine's
    task: its buckets run on other machines; job.merge_parts merges the parts)."""
    scores = score_in_bucket(tables, policy, bounds, scenarios)
    sha256: dict[str, str] = {}
    for table in outputs.OUTPUT_TABLES:  # each part hashed as it is written (outputs.OutputFile)
        with outputs.OutputFile(part_path(staging, table, bucket)) as f:
            getattr(scores, table).write_parquet(f, **outputs.parquet_options(table))
        sha256[table] = f.sha256
    result = bucket_result(scores, sha256)
    chunks = scores.scenario_risk
    del scores  # the scenario chunks are computed while they are written: free the rest first
    if chunks is not None and scenarios is not None:  # streamed into the part file as computed
        with outputs.OutputFile(part_path(staging, outputs.SCENARIO_TABLE, bucket)) as f:
            result.rows[outputs.SCENARIO_TABLE] = outputs.sink_chunks(
                chunks,
                scenario_schema(scenarios),
                f,
                outputs.parquet_options(outputs.SCENARIO_TABLE, len(scenarios.scenarios)),
            )
        sha256[outputs.SCENARIO_TABLE] = f.sha256
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


@dataclass(frozen=True)
class Scored:
    """What an executor leaves: every bucket's result, in bucket order, and either the output files'
    sha256 (it wrote `staging/TABLE.parquet` itself) or None (it wrote part files, to be merged)."""

    results: list[BucketResult]
    sha256: dict[str, str] | None = None


# An executor scores every bucket (local: one after another, into one stream per output table).
Executor = Callable[..., Scored]


def local_executor(
    tables: dict[str, pl.LazyFrame],
    policy: Policy,
    bounds: list[Bounds],
    staging: Path,
    progress: Progress,
    scenarios: ScenarioSet | None = None,
    **_: Any,
) -> Scored:
    """Every bucket scored in this process, its frames handed to one stream per output file
    (io/streams.py): no part files, no merge; a bucket is written while the next one is scored."""
    schemas = {"account_risk": ACCOUNT_RISK, "actions": ACTIONS_SCHEMA, "data_issues": DATA_ISSUES}
    if scenarios is not None:
        schemas[outputs.SCENARIO_TABLE] = scenario_schema(scenarios)
    n_scenarios = len(scenarios.scenarios) if scenarios is not None else 1
    streams = {
        table: TableStream(staging / f"{table}.parquet", schema, outputs.parquet_options(table, n_scenarios))
        for table, schema in schemas.items()
    }
    results = []
    try:
        for i, b in enumerate(bounds):
            progress.step(f"scoring accounts (bucket {i + 1}/{len(bounds)})")
            scores = score_in_bucket(tables, policy, b, scenarios)
            for table in outputs.OUTPUT_TABLES:
                streams[table].put(getattr(scores, table))
            results.append(bucket_result(scores))
            if scores.scenario_risk is not None:
                chunks, scores = scores.scenario_risk, None  # the rest freed while the chunks are computed
                for chunk in chunks:
                    streams[outputs.SCENARIO_TABLE].put(chunk)
            progress.advance()
        progress.step("writing outputs")
        written = {table: stream.close() for table, stream in streams.items()}
    except BaseException:
        for stream in streams.values():
            stream.abandon()
        raise
    if scenarios is not None:
        for r in results:  # scenario_risk's rows are counted once, for the whole file
            r.rows[outputs.SCENARIO_TABLE] = 0
        results[-1].rows[outputs.SCENARIO_TABLE] = written[outputs.SCENARIO_TABLE][0]
    return Scored(results, {table: sha for table, (_, sha) in written.items()})


def merge_parts(
    staging: Path,
    buckets: int,
    tables: list[str] | None = None,
    part_sha256: dict[str, str] | None = None,
    n_scenarios: int = 1,
) -> dict[str, str]:
    """Each table's part files, in bucket order, become its one output file (a rename for one part),
    written with the table's settings (scenario_risk: of `n_scenarios` scenarios), so the file has
    the same bytes whatever the buckets. The output files' sha256: of a renamed part, `part_sha256`
    (hashed as it was written), else read."""
    hashes = {}
    for table in tables or outputs.OUTPUT_TABLES:
        parts = [part_path(staging, table, i) for i in range(buckets)]
        target = staging / f"{table}.parquet"
        if len(parts) == 1:  # its part, fsynced and hashed as it was written
            os.replace(parts[0], target)
            hashes[table] = (part_sha256 or {}).get(table) or sha256_file(target)
        else:
            with outputs.OutputFile(target) as f:
                pl.scan_parquet(parts).sink_parquet(f, **outputs.parquet_options(table, n_scenarios))
            hashes[table] = f.sha256
            for p in parts:
                p.unlink()
    return hashes


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
    """One run: what it was asked, what it read, and what its buckets returned."""

    started: str
    policy: Policy
    policy_file: Path | None
    input_dir: Path
    inputs: dict[str, InputFile]
    buckets: list[Bounds]
    engine: str
    max_issue_rate: float
    scenario_set: ScenarioSet | None
    baseline: dict[str, Any] | None  # the baseline's directory, as_of and each table's ratio (feed.py)
    tables: list[str] = field(default_factory=lambda: list(outputs.OUTPUT_TABLES))
    results: list[BucketResult] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)
    output_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> dict[str, int]:
        return {t: sum(r.rows[t] for r in self.results) for t in self.tables}

    @property
    def bad_accounts(self) -> int:
        return sum(r.bad_accounts for r in self.results)

    @property
    def accounts_in(self) -> int:
        return self.inputs["accounts"].rows

    @property
    def issue_rate(self) -> float:
        return self.bad_accounts / self.accounts_in if self.accounts_in else 0.0

    def price_problems(self) -> pl.DataFrame:
        return merge_price_problems(self.results)

    def manifest(self, staging: Path) -> dict[str, Any]:
        """manifest.json of the staged outputs (finished_at is added when the run ends)."""
        policy = self.policy
        manifest = {
            "producer": outputs.PRODUCER,
            "as_of": policy.as_of.isoformat().replace("+00:00", "Z"),
            "policy_version": policy.version,
            "policy_sha256": policy.source_sha256,
            "policy_file": str(Path(self.policy_file).resolve()) if self.policy_file else None,
            "policy": policy.as_record(),
            "software_version": __version__,
            "polars_version": pl.__version__,
            "engine": self.engine,
            "input_dir": str(self.input_dir.absolute()),
            "baseline": self.baseline,
            "inputs": {
                name: {"file": f.path.name, "rows": f.rows, "sha256": self.checksums[name]}
                for name, f in self.inputs.items()
            },
            "outputs": {
                t: {"file": f"{t}.parquet", "rows": self.rows[t], "sha256": self.output_sha256[t]}
                for t in self.tables
            },
            "accounts_in": self.accounts_in,
            "accounts_with_issues": self.bad_accounts,
            "issue_rate": self.issue_rate,
            "max_issue_rate": self.max_issue_rate,
            "price_problems": self.price_problems().to_dicts(),
            "buckets": len(self.buckets),
            "started_at": self.started,
        }
        if self.scenario_set is not None:
            manifest["scenarios"] = self.scenario_set.as_record()
        return manifest

    def summary(self, out_dir: Path, seconds: float) -> str:
        """The one line a run prints: what it scored, where, how long, and any price problem."""
        rows, as_of = self.rows, self.policy.as_of.isoformat().replace("+00:00", "Z")
        return (
            f"as_of {as_of} policy {self.policy.version}: {rows['account_risk']} accounts scored, "
            f"{self.bad_accounts} with data issues, {rows['actions']} actions -> {out_dir} "
            f"({seconds:.1f} s){price_problem_text(self.price_problems())}"
        )


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


def _score_buckets(run: _Run, tables: dict[str, pl.LazyFrame], staging: Path, executor: Executor) -> None:
    """Every bucket scored into `staging` (parts merged), the input files checksummed meanwhile."""
    with ThreadPoolExecutor(max_workers=1) as pool:  # checksum the inputs while the engine runs
        checksums = {name: pool.submit(f.sha256) for name, f in run.inputs.items()}
        with Progress(len(run.buckets), "scoring accounts") as progress:
            try:
                scored = executor(
                    tables=tables,
                    policy=run.policy,
                    bounds=run.buckets,
                    staging=staging,
                    progress=progress,
                    input_dir=run.input_dir,
                    **({"scenarios": run.scenario_set} if run.scenario_set is not None else {}),
                )
                run.results = scored.results
            except (pl.exceptions.PolarsError, OSError) as exc:
                raise unreadable_table(list(run.inputs.values())) or exc from None
            if scored.sha256 is not None:  # the executor wrote the output files
                run.output_sha256 = scored.sha256
            else:
                progress.step("writing outputs")
                one = run.results[0].sha256 if len(run.results) == 1 else None
                n_scenarios = len(run.scenario_set.scenarios) if run.scenario_set is not None else 1
                run.output_sha256 = merge_parts(staging, len(run.buckets), run.tables, one, n_scenarios)
        run.checksums = {name: c.result() for name, c in checksums.items()}


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
    baseline: Path | None = None,
) -> str:
    """Read inputs, score every bucket, publish the output files atomically; a one-line summary.

    `scenarios`: a scenario TOML file, or "default" for the shipped set: adds scenario_risk.
    `baseline`: a previous run's output directory; an input table with fewer rows than the policy's
    share of that run's stops the run (feed.py), as an empty table always does.
    """
    t0 = time.perf_counter()
    started = outputs.utc_now()
    check_options(max_issue_rate, buckets)
    scenario_set = load_scenarios(scenarios) if scenarios is not None else None
    out_dir, input_dir = Path(out_dir), Path(input_dir)
    outputs.check_destination(out_dir, input_dir)
    previous = read_baseline(baseline) if baseline is not None else None
    policy = resolve(as_of, policy_file)  # a bad policy raises PolicyError: exit 2, one line
    loaded = load_inputs(input_dir)
    tables = {name: frame for name, (frame, _) in loaded.items()}
    files = {name: f for name, (_, f) in loaded.items()}
    feed = check_feed(files, policy, previous)  # an empty or shrunken table: exit 3, nothing written
    in_order = all(in_account_order(files[t]) for t in ACCOUNT_TABLES)
    per_bucket = ACCOUNTS_PER_BUCKET if in_order else ACCOUNTS_PER_BUCKET_UNSORTED
    wanted = buckets or max(1, math.ceil(files["accounts"].rows / per_bucket))
    bounds = bucket_bounds(tables["accounts"], wanted)
    run = _Run(
        started, policy, policy_file, input_dir, files, bounds, engine, max_issue_rate, scenario_set, feed
    )
    if scenario_set is not None:
        run.tables.append(outputs.SCENARIO_TABLE)

    staging = outputs.staging_dir(out_dir)
    try:
        _score_buckets(run, tables, staging, executor)
        manifest = run.manifest(staging)
        manifest["finished_at"] = outputs.utc_now()
        if run.issue_rate > max_issue_rate:
            rejected = _reject(staging, out_dir, manifest)
            raise IssueRateExceeded(
                f"{run.bad_accounts} of {run.accounts_in} accounts ({run.issue_rate:.2%}) have data issues, "
                f"above --max-issue-rate {max_issue_rate:.2%}: nothing written to {out_dir}; data_issues "
                f"written to {rejected / 'data_issues.parquet'}{price_problem_text(run.price_problems())}"
            )
        outputs.write_manifest(staging, manifest)
        outputs.publish(staging, out_dir)
        outputs.remove_rejected(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run.summary(out_dir, time.perf_counter() - t0)
