"""Named stress scenarios (docs/rules.md §8.3): sets of price multipliers, read from TOML.

`--scenarios FILE` names a scenario file; `--scenarios default` the set shipped with the package
(`scenarios.toml`). Like the policy, a scenario set is data, read and checked before any work: a bad
file is one line and exit 2. The engine values the accounts under them (engine/scenarios.py).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from crossmargin.errors import UsageError

SHIPPED = "default"  # `--scenarios default`: the scenario set shipped with the package


@dataclass(frozen=True)
class Scenario:
    """A named set of price multipliers: `assets` by name, else `stable` for a stable asset and
    `default` for every other asset."""

    name: str
    default: float
    stable: float = 1.0
    assets: dict[str, float] | None = None

    def multiplier(self, asset: str, is_stable: bool) -> float:
        named = self.assets or {}
        return named.get(asset, self.stable if is_stable else self.default)


@dataclass(frozen=True)
class ScenarioSet:
    scenarios: tuple[Scenario, ...]
    source: str  # "default" (the shipped set) or the file's path

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def as_record(self) -> dict[str, Any]:
        """JSON-ready, for manifest.json."""
        return {
            "source": self.source,
            "scenarios": [
                {"name": s.name, "default": s.default, "stable": s.stable, "assets": dict(s.assets or {})}
                for s in self.scenarios
            ],
        }


def _multiplier(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)


def parse_scenarios(text: str, source: str) -> ScenarioSet:
    """A scenario set from TOML text: `[[scenario]]` tables with `name`, `default` and optionally
    `stable` (multiplier of the stable assets, 1 if absent) and `assets` (name -> multiplier)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--scenarios {source}: not valid TOML: {exc}") from None
    items = doc.get("scenario")
    if not isinstance(items, list) or not items:
        raise UsageError(f"--scenarios {source}: no [[scenario]] table")
    out, seen = [], set()
    for i, item in enumerate(items, 1):
        where = f"--scenarios {source}: scenario {i}"
        if not isinstance(item, dict):
            raise UsageError(f"{where} is not a table")
        unknown = set(item) - {"name", "default", "stable", "assets"}
        if unknown:
            raise UsageError(f"{where} has unknown key {sorted(unknown)[0]!r}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError(f"{where} needs a non-empty `name`")
        if name in seen:
            raise UsageError(f"--scenarios {source}: scenario name {name!r} appears twice")
        seen.add(name)
        if "default" not in item:
            raise UsageError(f"{where} ({name}) needs `default`, the multiplier of the non-stable assets")
        assets = item.get("assets", {})
        if not isinstance(assets, dict):
            raise UsageError(f"{where} ({name}): `assets` must be a table of asset = multiplier")
        out.append(
            Scenario(
                name,
                _multiplier(item["default"], f"{where} ({name}) default"),
                _multiplier(item.get("stable", 1.0), f"{where} ({name}) stable"),
                {str(a): _multiplier(m, f"{where} ({name}) assets.{a}") for a, m in assets.items()},
            )
        )
    return ScenarioSet(tuple(out), source)


def load_scenarios(spec: str | Path) -> ScenarioSet:
    """`default`: the set shipped with the package (scenarios.toml); else a TOML file's path."""
    if str(spec) == SHIPPED:
        text = resources.files("crossmargin").joinpath("scenarios.toml").read_text(encoding="utf-8")
        return parse_scenarios(text, SHIPPED)
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--scenarios {spec}: cannot read the file ({exc.__class__.__name__})") from None
    return parse_scenarios(text, str(path))
