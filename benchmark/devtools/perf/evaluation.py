"""Evaluation measurements: the harness's per-class AutoAttack against plain pyautoattack on the
same points, and each attack's share of an evaluation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.core.datasets.base import Splits, first_per_class, to_float
from benchmark.core.evaluation.autoattack import autoattack_labels, make_autoattack
from benchmark.core.evaluation.evaluator import EvalSet, Evaluator
from benchmark.core.models import build_model, in_memory_format
from benchmark.core.protocol import Protocol
from benchmark.devtools.perf.timing import Timer


def fresh_model(protocol: Protocol, splits: Splits, device: torch.device,
                start: dict[str, torch.Tensor]) -> nn.Module:
    """The preset's model with the `start` weights, on `device`, in eval mode."""
    model = build_model(protocol.model, splits.info.num_classes, splits.info.shape)
    model.load_state_dict(start)
    return model.to(device).eval()


def measure_evaluation(protocol: Protocol, splits: Splits, device: torch.device,
                       start: dict[str, torch.Tensor], rounds: int, per_class: int, root: Path
                       ) -> tuple[Timer, dict[str, Any]]:
    """One `Evaluator` run on `per_class` test points per class (seconds per attack), then
    interleaved rounds of the harness's AutoAttack and a plain one on the same points."""
    model = fresh_model(protocol, splits, device, start)
    plain = fresh_model(protocol, splits, device, start)  # the evaluator converts `model`
    keep = first_per_class(splits.test_y, per_class, splits.info.num_classes)
    data = EvalSet(splits.test_x[keep], splits.test_y[keep], splits.info.classes)
    p = replace(protocol, aa_per_class=per_class)
    result = Evaluator(p, device, show_progress=False).evaluate(model, data, root / "eval.json")
    timer = Timer(device)
    x, y = to_float(data.x).to(device), data.y.to(device)
    harness = in_memory_format(model, p.channels_last)  # what Evaluator hands AutoAttack
    for r in range(rounds + 1):  # round 0 warms up and is dropped
        if r == 1:
            timer.clear()
        timer.time("autoattack_harness", lambda: autoattack_labels(harness, data.x, data.y, p,
                                                                   device))
        timer.time("autoattack_plain", lambda: make_autoattack(plain, p, device)
                   .run_standard_evaluation(x, y, batch_size=128))
    total = sum(result["seconds"].values())
    return timer, {"points": len(data.y), "attack_seconds": result["seconds"],
                   "attack_share": {k: v / total for k, v in result["seconds"].items()}}
