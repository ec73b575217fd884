"""Peak memory of a piece of work: resident set size on CPU, max allocated tensor memory on GPU.

    reset_peak(device); ...work...; peak_mb(device)

On Linux the process's peak RSS (VmHWM) is reset through /proc/self/clear_refs, so each run (or
each measured variant) gets its own peak; where that is not possible the peak is the process's
since it started (and `peak_mb` says so by returning the same number).
"""

from __future__ import annotations

import resource
from pathlib import Path

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass


def peak_mb(device: torch.device) -> float:
    """Peak memory since the last `reset_peak`, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
