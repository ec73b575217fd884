"""The GPU check's outputs: the JSON report and the printed table with the projections."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmark.devtools.gpucheck.checks import Check
from benchmark.devtools.gpucheck.projections import projections
from benchmark.devtools.perf import machine


def build_report(checks: list[Check], device: torch.device, tiny: bool, started: float,
                 budget: float | None = None) -> dict[str, Any]:
    """The JSON report: date, machine, seconds since `started` (a perf_counter), the time
    budget, every step's outcome, passed, the projections."""
    failed = [c.name for c in checks if c.status == "failed"]
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(device), "tiny": tiny,
            "seconds": time.perf_counter() - started, "budget_seconds": budget,
            "passed": not failed,
            "checks": [vars(c) for c in checks], "projections": projections(checks)}


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write `report` as indented JSON to `out`."""
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")


def shown(numbers: dict[str, Any]) -> str:
    """A step's numbers on one line (floats to 3 significant digits; no traceback)."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in numbers.items() if k != "traceback")


def print_table(report: dict[str, Any]) -> None:
    """One line per step (its error, or its numbers), then the projection per preset."""
    print(f"{'step':<36} {'status':<8} {'seconds':>8}  numbers")
    for c in report["checks"]:
        print(f"{c['name']:<36} {c['status']:<8} {c['seconds']:8.1f}  "
              f"{c['error'] or shown(c['numbers'])}")
    caveat = "(--tiny: meaningless) " if report["tiny"] else ""
    for preset, proj in report["projections"].items():
        print(f"{caveat}projected cifar10 {preset} (make bench, core methods, one seed): "
              f"training {proj['training_hours']:.1f} h + validation <= "
              f"{proj['validation_hours_at_most']:.1f} h + evaluation <= "
              f"{proj['evaluation_hours_at_most']:.1f} h")
