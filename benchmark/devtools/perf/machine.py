"""The machine the measurements ran on, and the process's memory before they started."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from benchmark.common.memory import peak_mb, reset_peak


def rss_now() -> float:
    """Current resident set size in MiB (the process baseline the CPU peaks include)."""
    reset_peak(torch.device("cpu"))
    return peak_mb(torch.device("cpu"))


def machine(device: torch.device) -> dict[str, Any]:
    """Host, CPU, threads, torch and (on a GPU) the GPU's name, CUDA and native bf16."""
    return {"host": platform.node(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cuda": torch.version.cuda if device.type == "cuda" else None,
            # pre-Ampere GPUs emulate bf16: its timings are then not native bf16's
            "bf16_native": torch.cuda.get_device_capability(device) >= (8, 0)
            if device.type == "cuda" else None}
