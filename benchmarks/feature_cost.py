"""What the path search costs: the job with and without the columns it computes (a measurement, not a test).

    .venv/bin/python benchmarks/feature_cost.py --shape sample --accounts 10000000 --repeat 2
    .venv/bin/python benchmarks/feature_cost.py --shape exchange --accounts 3000000 --repeat 3

Three variants of this checkout's `crossmargin run`, alternating (the order rotates each repetition),
each run in its own process (`python feature_cost.py --child VARIANT run ...`: the same build, the
same start-up) and measured by measuring.run_measured (wall from launch to exit, user + system CPU
seconds, peak RSS):

  all              the job as shipped
  no remediation   the conditions behind the four "what it would take" columns (margin_call_topup_usdt,
                   pro_topup_usdt, classic_switch_topup_usdt, pro_orders_to_cancel) followed for no
                   account: the columns are null, the search skips them
  no path search   the same for the four distance columns too: nothing is searched

The best wall of each is kept, with its CPU seconds; the share is (variant − all) / variant, what the
columns add to the job without them (target for the remediation columns: at most 10 %). A book given
by shape and size is stored in benchmarks/results.json (key `features`) and the section `features` of
benchmarks/README.md is rewritten from it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

from books import AS_OF, MAX_ISSUE_RATE, SHAPES, ensure_book, warm_cache
from measuring import run_measured
from report import GB, git_label, load_json, markdown_table, save_json, write_section

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.json"
VARIANTS = ("all", "no remediation", "no path search")
TARGET_SHARE = 0.10  # the remediation columns may add at most this share of wall time


def child(variant: str, argv: list[str]) -> int:
    """Run the command line with the variant's columns followed for no account."""
    import polars as pl

    from crossmargin import cli
    from crossmargin.rules import distances, remediation
    from crossmargin.rules.thresholds import Slot

    def off(slots):
        return lambda policy: [Slot(s.name, s.condition.where(pl.lit(False)), s.path) for s in slots(policy)]

    if variant in ("no remediation", "no path search"):
        remediation.slots = off(remediation.slots)
    if variant == "no path search":
        distances.slots = off(distances.slots)
    return cli.main(argv)


def measure_book(book: Path, rate: float, repeat: int) -> dict:
    """Every variant `repeat` times, alternating; per variant the best wall, its CPU and the peak."""
    runs: dict[str, list] = {v: [] for v in VARIANTS}
    warm_cache(book)
    with tempfile.TemporaryDirectory(prefix="feature-cost-") as tmp:
        for i in range(repeat):
            for k in range(len(VARIANTS)):
                variant = VARIANTS[(i + k) % len(VARIANTS)]
                out = Path(tmp) / f"{variant.replace(' ', '-')}{i}"
                cmd = [sys.executable, __file__, "--child", variant, "run", "--as-of", AS_OF,
                       "--input", str(book), "--out", str(out), "--max-issue-rate", str(rate)]  # fmt: skip
                m = run_measured(cmd, interval=0.1)
                if m.returncode != 0:
                    sys.exit(f"{variant} failed ({m.returncode}): {m.stderr.strip()[-400:]}")
                runs[variant].append(m)
                print(f"  {variant:15s} {m.wall_s:7.2f} s  cpu {m.cpu_s:7.2f} s  peak {m.peak_rss_bytes / GB:5.2f} GB"
                      f"  load {m.loadavg_before:.2f}", flush=True)  # fmt: skip
    result = {}
    for variant, ms in runs.items():
        best = min(ms, key=lambda m: m.wall_s)
        result[variant] = {
            "wall_s": round(best.wall_s, 2),
            "cpu_s": round(best.cpu_s, 2),
            "peak_gb": round(max(m.peak_rss_bytes for m in ms) / GB, 2),
            "walls": [round(m.wall_s, 2) for m in ms],
        }
    return result


def section(store: dict) -> str:
    rows = []
    for r in sorted(store.values(), key=lambda r: (SHAPES.index(r["shape"]), r["accounts"])):
        full = r["variants"]["all"]
        for variant in VARIANTS:
            v = r["variants"][variant]
            share = "" if variant == "all" else f"{(full['wall_s'] - v['wall_s']) / v['wall_s']:+.1%}"
            if variant == "no remediation":
                share += f" ({'met' if full['wall_s'] <= (1 + TARGET_SHARE) * v['wall_s'] else '**missed**'})"
            rows.append([r["shape"], f"{r['accounts']:,}", variant, v["wall_s"], v["cpu_s"], v["peak_gb"],
                         ", ".join(f"{w:.2f}" for w in v["walls"]), share, r["commit"], r["measured_at"]])  # fmt: skip
    header = ["shape", "accounts", "variant", "wall s (best)", "CPU s", "peak GB", "all walls s"]
    return markdown_table([*header, "all / variant − 1 (remediation ≤ +10 %)", "commit", "measured"], rows)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2], sys.argv[3:]))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=SHAPES, default="sample")
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    book = ensure_book(args.work.resolve(), args.shape, args.accounts)[0]
    variants = measure_book(book, MAX_ISSUE_RATE[args.shape], args.repeat)
    results = load_json(RESULTS)
    store = results.setdefault("features", {})
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="minutes")
    store[f"{args.shape}/{args.accounts}"] = {
        "shape": args.shape, "accounts": args.accounts, "variants": variants,
        "commit": git_label(BENCH.parent), "measured_at": stamp,
    }  # fmt: skip
    save_json(RESULTS, results)
    write_section("features", section(store))


if __name__ == "__main__":
    main()
