#!/usr/bin/env bash
# Refresh constraints.txt: one pinned resolution of the package and every extra, installed with plain
# pip into a throw-away venv. Run it after changing a dependency in pyproject.toml, then commit both.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
extras=$(python3 -c 'import tomllib; print(",".join(tomllib.load(open("pyproject.toml","rb"))["project"]["optional-dependencies"]))')
"$tmp/venv/bin/pip" install -q -e ".[$extras]"
{
  echo "# Pinned versions of every dependency of crossmargin and its extras ($extras),"
  echo "# resolved on Python $("$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())') / $(uname -s) $(uname -m)."
  echo "# Install with: pip install -c constraints.txt -e '.[EXTRAS]'. Refresh: bash tools/refresh-constraints.sh"
  "$tmp/venv/bin/pip" freeze --exclude-editable | grep -v -i '^crossmargin' | LC_ALL=C sort -f
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pinned packages"
