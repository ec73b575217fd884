"""Timing on any device: waiting for queued work, and interleaved rounds of labelled work."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from benchmark.common.memory import peak_mb, reset_peak


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a GPU runs asynchronously): timing needs it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Interleaved rounds: every variant once per round; medians of per-round ratios."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, list[float]] = {}
        self.peak: dict[str, float] = {}

    def time(self, label: str, work: Callable[[], Any]) -> Any:
        """Run `work` once, recording its seconds and peak memory under `label`."""
        sync(self.device)
        reset_peak(self.device)
        t0 = time.perf_counter()
        out = work()
        sync(self.device)
        self.seconds.setdefault(label, []).append(time.perf_counter() - t0)
        self.peak[label] = max(self.peak.get(label, 0.0), peak_mb(self.device))
        return out

    def clear(self) -> None:
        """Forget every recording (after the warm-up round)."""
        self.seconds.clear()
        self.peak.clear()

    def median(self, label: str) -> float:
        """The median seconds of `label` over the rounds."""
        return statistics.median(self.seconds[label])

    def ratio(self, label: str, ref: str) -> float:
        """The median over rounds of `label`'s seconds / `ref`'s seconds in the same round."""
        return statistics.median(a / b for a, b in zip(self.seconds[label], self.seconds[ref],
                                                        strict=True))
