"""`python -m crossmargin ...`: the same command line as the `crossmargin` console script."""

import sys

from crossmargin.cli import main

sys.exit(main())
