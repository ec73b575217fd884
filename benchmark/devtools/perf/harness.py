"""The harness side of the timings: quiet Trainers, and the weights every variant starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmark.catalog import make_method
from benchmark.common.fileio import load_state
from benchmark.core.datasets.base import Splits
from benchmark.core.models import build_model
from benchmark.core.protocol import Protocol
from benchmark.core.run_paths import RunPaths
from benchmark.core.trainer import Trainer


def timing_trainer(method: str, protocol: Protocol, splits: Splits, device: torch.device,
                   root: Path, start: dict[str, torch.Tensor] | None = None,
                   **options: Any) -> Trainer:
    """A quiet Trainer of `method` in `root/<method>` (seed 0), from `start` weights if given;
    `options` go to Trainer (e.g. after_epoch)."""
    trainer = Trainer(method=make_method(method, protocol), protocol=protocol, splits=splits,
                      paths=RunPaths(root / method), seed=0, device=device,
                      show_progress=False, **options)
    if start is not None:
        trainer.model.load_state_dict(start)
    return trainer


def start_weights(protocol: Protocol, splits: Splits, device: torch.device, init: Path | None,
                  warmup_epochs: int, root: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Weights every variant starts from: a checkpoint, else a short PGD-AT warm-up on the
    timed subset (so HAM has easy examples to drop)."""
    if init is not None:
        return load_state(init)["model"], str(init)
    trainer = timing_trainer("pgd_at", protocol, splits, device, root,
                             build_model(protocol.model, splits.info.num_classes,
                                         splits.info.shape).state_dict())
    model, ctx, counter = trainer.epoch_context()
    for epoch in range(warmup_epochs):
        trainer.train_steps(epoch, model, ctx, counter)
    counter.detach()
    state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    return state, f"{warmup_epochs} PGD-AT epochs on the timed subset"
