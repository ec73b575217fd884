"""`python -m benchmark.devtools.perf`: `make perf` (documented on the package)."""

from __future__ import annotations

import contextlib

from benchmark.devtools.perf.cli import main

if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
