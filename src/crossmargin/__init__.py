"""crossmargin: nightly vectorized Classic/Pro cross-margin risk job."""

import os
from importlib.metadata import PackageNotFoundError, version

# polars' allocator (jemalloc, read once when polars loads: so set before any import of polars). Its
# default hands a freed page back to the system at once, and the job frees and refills
# hundreds of MB per bucket: every refill page-faults again. Holding freed pages for about two seconds
# halved the page faults of a 3M-account run and cut its system time by about 1 CPU-s, its peak staying
# under 0.5 GB per million accounts (benchmarks/README.md). A value already in the environment wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:2000,muzzy_decay_ms:1000")

try:
    __version__ = version("crossmargin")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
