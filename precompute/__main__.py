"""`python -m precompute ...`: see `python -m precompute --help`."""

import sys

from precompute.cli import main

sys.exit(main())
