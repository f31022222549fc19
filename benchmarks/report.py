"""Writing results: Markdown tables from rows, generated sections of benchmarks/README.md, and what
was measured (the commit of a checkout, the machine).

A generated section sits between `<!-- begin NAME -->` and `<!-- end NAME -->` in the README; a
script rewrites only its own sections (and appends a missing one at the end), so the prose around
them, how to reproduce each figure, stays as written.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent
README = BENCH / "README.md"
GB = 1024**3


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table; numeric columns (by their first non-empty cell) right-aligned."""

    def numeric(i: int) -> bool:
        cells = [str(r[i]) for r in rows if str(r[i]) not in ("", "-")]
        return bool(cells) and bool(re.fullmatch(r"[-+]?[\d,.]+\s*(×|%|s|GB)?", cells[0]))

    align = ["---:" if numeric(i) else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_section(name: str, text: str, path: Path = README) -> None:
    """Put `text` between the section's markers in `path` (appended at the end when absent)."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    doc = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip() + f"\n\n{block}\n"
    path.write_text(doc, encoding="utf-8")


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "-"


def git_label(checkout: Path) -> str:
    """`abc1234` (HEAD of the checkout), `+ uncommitted src/` when its src/ differs from HEAD."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    return head + (" + uncommitted src/" if git("status", "--porcelain", "--", "src") else "")


def machine() -> dict:
    """CPU model and count, memory, kernel, library versions: what a figure was measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    versions = {"python": platform.python_version()}
    for mod in ("polars", "numpy", "numba", "pyarrow", "duckdb"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = "-"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem, 1),
        "kernel": platform.release(),
        **versions,
    }


def machine_line(m: dict) -> str:
    m = {**m.get("versions", {}), "cpus": m.get("logical_cpus"), **m}  # results.json's older records too
    libs = ", ".join(
        f"{k} {m[k]}" for k in ("python", "polars", "numpy", "numba", "pyarrow", "duckdb") if k in m
    )
    memory = f", {m['memory_gb']} GB" if m.get("memory_gb") else ""
    return f"{m.get('cpu', '?')}, {m.get('cpus') or '?'} CPUs{memory}; {libs}"


def load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
