"""Validation for checkpoint selection: per-class clean and PGD accuracy on the validation split."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.core.datasets.base import Splits
from benchmark.core.evaluation.predictions import predict, robust_predictions
from benchmark.core.metrics import evaluate_predictions
from benchmark.core.models import in_memory_format
from benchmark.core.protocol import Protocol


def validate(model: nn.Module, splits: Splits, protocol: Protocol, device: torch.device
             ) -> dict[str, Any]:
    """Per-class clean and PGD accuracy on the validation split (checkpoint selection)."""
    classes = splits.info.classes
    bs = protocol.eval_batch_size
    model = in_memory_format(model, protocol.channels_last)
    clean = predict(model, splits.val_x, bs, device)
    adv = robust_predictions(model, splits.val_x, splits.val_y, clean, eps=protocol.eps,
                             alpha=protocol.eps / 4, steps=protocol.val_steps, loss="ce",
                             batch_size=bs, device=device, seed=1)
    c = evaluate_predictions(clean, splits.val_y, classes)
    r = evaluate_predictions(adv, splits.val_y, classes, clean_pred=clean)
    return {"clean_avg": c.avg, "clean_worst": c.worst, "clean_per_class": c.per_class,
            "robust_avg": r.avg, "robust_worst": r.worst, "robust_per_class": r.per_class}

