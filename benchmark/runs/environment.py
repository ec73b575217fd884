"""Where and with what a run ran: packages, device, threads, host, CPU and the git state.

The CPU's model and the vector instructions torch uses on it (`cpu_capability`: AVX2, AVX512,
...) are recorded because CPU training is deterministic on one machine only: another model or
instruction set rounds differently and trains to other numbers (docs/reliability.md)."""

from __future__ import annotations

import platform
from typing import Any

import torch

from benchmark.runs.provenance import git_state


def cpu_model() -> str | None:
    """The processor's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def environment(device: torch.device) -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "torchvision", "pyautoattack", "robustbench", "numpy", "pandas"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {**git_state(), "packages": versions, "device": str(device),
            "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "threads": torch.get_num_threads(), "host": platform.node(), "cpu": cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "python": platform.python_version()}

