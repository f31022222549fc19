"""Synthetic inputs: `crossmargin sample --accounts N --seed S --out DIR [--faults RATE] [--shape NAME]`.

The seven input tables (schemas.INPUT_SCHEMAS) for a fixed showcase block of hand-designed accounts
(ids 1..61, always written first), N random accounts (ids from FIRST_RANDOM_ID, vectorized numpy,
chunk by chunk) and seed-independent reference data (~30 real assets, prices around 2025-01-21, two
versions of every tier table). With faults > 0 that share of the random accounts gets one injected
data fault each. `--shape exchange` lays the book out like a real exchange's export (shapes.py).

Modules: universe (assets, classes, ids, instants), reference (price history, collateral tiers,
liability brackets), showcase (accounts 1..61, input rows only), population (random accounts),
faults (the fault injector), shapes (rows per account, price layout, bad prices), writer (files).
"""

from crossmargin.synthetic.faults import FAULT_KINDS, SAMPLE_FAULT_KINDS, Faults, inject_faults
from crossmargin.synthetic.population import generate, generate_with_faults
from crossmargin.synthetic.reference import reference_tables
from crossmargin.synthetic.shapes import EXCHANGE, SAMPLE, SHAPES, Shape
from crossmargin.synthetic.showcase import SHOWCASE, SHOWCASE_IDS, Showcase, showcase_tables
from crossmargin.synthetic.universe import FIRST_RANDOM_ID, SHOWCASE_AS_OF
from crossmargin.synthetic.writer import write_inputs, write_sample

__all__ = [
    "EXCHANGE",
    "FAULT_KINDS",
    "FIRST_RANDOM_ID",
    "SAMPLE",
    "SAMPLE_FAULT_KINDS",
    "SHAPES",
    "SHOWCASE",
    "SHOWCASE_AS_OF",
    "SHOWCASE_IDS",
    "Faults",
    "Shape",
    "Showcase",
    "generate",
    "generate_with_faults",
    "inject_faults",
    "reference_tables",
    "showcase_tables",
    "write_inputs",
    "write_sample",
]
