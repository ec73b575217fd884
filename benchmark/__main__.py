"""`python -m benchmark` is the `fairbench` command."""

import sys

from benchmark.cli import main

sys.exit(main())
