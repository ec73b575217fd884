"""Where and with what a run ran: packages, device, threads, host and the git state."""

from __future__ import annotations

import platform
from typing import Any

import torch

from benchmark.runs.provenance import git_state


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
            "threads": torch.get_num_threads(), "host": platform.node(),
            "python": platform.python_version()}

