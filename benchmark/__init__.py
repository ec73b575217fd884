"""fairbench: one protocol and one evaluator for robust-fairness methods of adversarial training."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_results"]


def __getattr__(name: str) -> Any:  # lazy: `import benchmark` stays light for the CLI
    if name == "load_results":
        from benchmark.report.tidy import load_results

        return load_results
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
