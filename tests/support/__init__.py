"""What the tests share: the input builder (`inputs`), the command-line runner (`cli`), the shared runs of
the job on the committed sample (`runs`), the independent scalar reference (`reference`) and its glue to
the engine (`ref_compare`). The fixtures built on them are in tests/conftest.py."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"  # the committed sample input
