"""What the tests share: the input builder (`inputs`), the command-line runner (`cli`), what the shared
runs of the job are (`runs`; tests/conftest.py makes them), the independent scalar reference
(`reference`) and its glue to the engine (`ref_compare`), the compiled kernels driven directly
(`kernels`), the sample's showcase expectations (`showcase_expected`), and what the Airflow and Ray tests
run in other processes (`airflow_driver`, `ray_faults`)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"  # the committed sample input
