"""What a wheel of the package holds: every folder of modules under src/crossmargin is a package named
in pyproject.toml (an editable install imports from the checkout and would hide one left out)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_folder_of_modules_is_a_listed_package() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    src = ROOT / "src"
    folders = {p.parent for p in (src / "crossmargin").rglob("*.py")}
    found = {folder.relative_to(src).as_posix().replace("/", ".") for folder in folders}
    assert found | {"crossmargin.sql"} == listed
    assert [f for f in folders if not (f / "__init__.py").is_file()] == []
    assert setuptools["package-dir"]["crossmargin.sql"] == "sql" and any((ROOT / "sql").glob("*.sql"))
