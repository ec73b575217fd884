"""`python -m benchmark` is the `fairbench` command."""

import sys

from benchmark.cli.main import main

sys.exit(main())
