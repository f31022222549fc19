"""The nightly job: files in, files out.

Reads the input directory, splits the book into account-id buckets, scores each bucket with the
engine (`engine.score`), checksums the inputs, applies the data-issue gate and publishes the output
files and their manifest atomically.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import polars as pl

from crossmargin.engine import score

# ------------------------------------------------------------------ the nightly job (files in, files out)

ACCOUNT_TABLES = ["accounts", "balances", "open_orders", "mode_switches"]
ACCOUNTS_PER_BUCKET = (
    12_000_000  # at most this many accounts per bucket with --buckets 0 (~0.5 GB peak per million)
)


def bucket_bounds(accounts: pl.LazyFrame, buckets: int) -> list[tuple[int | None, int | None]]:
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


def _in_bucket(lo: int | None, hi: int | None) -> pl.Expr:
    keep = pl.lit(True)
    if lo is not None:
        keep = keep & (pl.col("account_id") >= lo)
    if hi is not None:
        keep = keep & (pl.col("account_id") < hi)
    if lo is None:  # rows without an account id are checked once, in the first bucket
        keep = keep | pl.col("account_id").is_null()
    return keep


def run_job(
    as_of: dt.datetime,
    input_dir: Path,
    out_dir: Path,
    policy_file: Path | None = None,
    max_issue_rate: float = 0.01,
    buckets: int = 0,
) -> str:
    """Read inputs, compute, and publish the four output files atomically. Returns a one-line summary."""
    from concurrent.futures import ThreadPoolExecutor

    from crossmargin import __version__, outputs
    from crossmargin.errors import CrossmarginError, IssueRateExceeded
    from crossmargin.inputs import load_inputs, unreadable_table
    from crossmargin.policy import PolicyError, resolve
    from crossmargin.progress import Progress

    started = outputs.utc_now()
    t0 = time.perf_counter()
    try:
        policy = resolve(as_of, policy_file)
    except PolicyError as exc:
        raise CrossmarginError(str(exc)) from None
    loaded = load_inputs(Path(input_dir))
    tables = {name: frame for name, (frame, _) in loaded.items()}
    n_accounts = loaded["accounts"][1].rows
    if buckets <= 0:
        buckets = max(1, -(-n_accounts // ACCOUNTS_PER_BUCKET))
    bounds = bucket_bounds(tables["accounts"], buckets)

    out_dir = Path(out_dir)
    tmp = outputs.staging_dir(out_dir)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:  # checksum the inputs while the engine runs
            checksums = {name: pool.submit(f.sha256) for name, (_, f) in loaded.items()}
            writers = {name: outputs.PartWriter(tmp / f"{name}.parquet") for name in outputs.OUTPUT_TABLES}
            bad_accounts = 0
            with Progress(len(bounds), "scoring accounts") as progress:
                for i, (lo, hi) in enumerate(bounds, start=1):
                    progress.step(f"scoring accounts (bucket {i}/{len(bounds)})")
                    part = {
                        name: frame.filter(_in_bucket(lo, hi)) if name in ACCOUNT_TABLES else frame
                        for name, frame in tables.items()
                    }
                    try:
                        result = score(part, policy)
                    except (pl.exceptions.PolarsError, OSError) as exc:
                        raise unreadable_table([f for _, f in loaded.values()]) or exc from None
                    progress.step(f"writing outputs (bucket {i}/{len(bounds)})")
                    writers["account_risk"].write(result.account_risk)
                    writers["actions"].write(result.actions)
                    writers["data_issues"].write(result.data_issues)
                    bad_accounts += result.data_issues.filter(pl.col("code") != "unknown_account")[
                        "account_id"
                    ].n_unique()
                    progress.advance()
            rows = {name: w.close() for name, w in writers.items()}
            inputs_entry = {
                name: {"file": f.path.name, "rows": f.rows, "sha256": checksums[name].result()}
                for name, (_, f) in loaded.items()
            }
        issue_rate = bad_accounts / n_accounts if n_accounts else 0.0
        if issue_rate > max_issue_rate:
            rejected = out_dir.absolute().parent / f"{out_dir.name}.rejected"
            keep = outputs.staging_dir(rejected)
            os.replace(tmp / "data_issues.parquet", keep / "data_issues.parquet")
            outputs.publish(keep, rejected)
            raise IssueRateExceeded(
                f"{bad_accounts} of {n_accounts} accounts ({issue_rate:.2%}) have data issues, above "
                f"--max-issue-rate {max_issue_rate:.2%}: nothing written to {out_dir}; "
                f"data_issues written to {rejected / 'data_issues.parquet'}"
            )
        manifest = {
            "as_of": policy.as_of.isoformat().replace("+00:00", "Z"),
            "policy_version": policy.version,
            "policy_sha256": policy.source_sha256,
            "policy_file": str(Path(policy_file).resolve()) if policy_file else None,
            "policy": policy.as_record(),
            "software_version": __version__,
            "polars_version": pl.__version__,
            "input_dir": str(input_dir),
            "inputs": inputs_entry,
            "outputs": {
                name: outputs.output_entry(tmp / f"{name}.parquet", rows[name])
                for name in outputs.OUTPUT_TABLES
            },
            "accounts_in": n_accounts,
            "accounts_with_issues": bad_accounts,
            "issue_rate": issue_rate,
            "max_issue_rate": max_issue_rate,
            "buckets": len(bounds),
            "started_at": started,
            "finished_at": outputs.utc_now(),
        }
        outputs.write_manifest(tmp, manifest)
        outputs.publish(tmp, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    return (
        f"as_of {manifest['as_of']} policy {policy.version}: {rows['account_risk']} accounts scored, "
        f"{bad_accounts} with data issues, {rows['actions']} actions -> {out_dir} ({seconds:.1f} s)"
    )
