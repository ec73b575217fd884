"""`python -m benchmark.devtools.gpucheck`: `make gpu-check` (documented on the package)."""

from __future__ import annotations

from benchmark.devtools.gpucheck.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
