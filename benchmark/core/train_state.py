"""What the trainer carries and writes: one epoch's steps, the counters kept across epochs and
resumes, and the schemas of its files (train.jsonl lines, train_done.json)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from benchmark.common.schema import Schema


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


@dataclass
class EpochLog(Schema):
    """One line of train.jsonl. What a method logs lives under `method`, so it can never
    overwrite the trainer's keys."""

    epoch: int                      # epochs completed (absolute, counting a warm start's)
    lr: float
    loss: float                     # mean training loss over the epoch's updates
    updates: int
    skipped_batches: int
    seconds: float                  # training loop only (no validation, no checkpointing)
    passes: int                     # forward + backward passes of the epoch
    val: dict[str, Any]             # validation clean/robust avg, worst, per class
    best: bool                      # this epoch became model_best.pt
    method: dict[str, Any] = field(default_factory=dict)
    val_seconds: float | None = None  # validation for checkpoint selection (not in `seconds`)

    @classmethod
    def from_dict(cls, data: Any) -> EpochLog:
        """Also reads logs written before the `method` namespace (method keys at top level)."""
        if isinstance(data, dict) and "method" not in data:
            names = {f.name for f in dataclasses.fields(cls)}
            data = {**{k: v for k, v in data.items() if k in names},
                    "method": {k: v for k, v in data.items() if k not in names}}
        return super().from_dict(data)


@dataclass
class TrainSummary(Schema):
    """train_done.json: the training cost and checkpoint choice of a finished run (None for
    models scored with `fairbench eval`, which were not trained here)."""

    seconds: float | None = None                # this run's own training loop seconds
    passes: int | None = None                   # its own forward + backward passes
    forward_passes: int | None = None
    backward_passes: int | None = None
    epochs: int | None = None                   # own epochs (after the warm start)
    best_epoch: int | None = None
    best_val: float | None = None               # validation score of model_best.pt
    warm_start_seconds: float | None = None
    warm_start_passes: int | None = None
    seconds_with_warm_start: float | None = None  # own + warm start's + teacher's
    passes_with_warm_start: int | None = None
    teacher_seconds: float | None = None        # the teacher run's training (incl. its warm start)
    teacher_passes: int | None = None
    peak_memory_mb: float | None = None         # RSS on CPU, max allocated on GPU (memory.py)
