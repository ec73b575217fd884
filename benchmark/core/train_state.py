"""What the trainer carries: one epoch's steps, and the counters kept across epochs and resumes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EpochSteps:
    """What one epoch of training updates did (before validation and checkpointing)."""

    epoch: int                      # 0-based
    lr: float
    loss_sum: float
    updates: int
    skipped: int
    seconds: float
    forward: int
    backward: int
    method_log: dict[str, Any]
    peak_memory_mb: float           # during these steps (validation not included)


@dataclass
class TrainState:
    """Counters carried across epochs and resumes."""

    epoch: int = 0                  # epochs completed
    seconds: float = 0.0            # this run's own training seconds
    forward: int = 0
    backward: int = 0
    best_score: float = -math.inf
    best_epoch: int | None = None
    peak_memory_mb: float = 0.0     # peak over this run's training sessions
    warm: dict[str, Any] = field(default_factory=dict)  # base cost up to the begin epoch

