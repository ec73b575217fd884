"""Per-class accuracy and the fairness summaries every table reports."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from benchmark.common.schema import Schema


def per_class_accuracy(correct: Tensor, y: Tensor, num_classes: int
                       ) -> tuple[list[float], list[int]]:
    """Fraction correct per class and the number of points per class (NaN for an empty class)."""
    correct, y = correct.detach().cpu().bool(), y.detach().cpu().long()
    n = torch.bincount(y, minlength=num_classes)
    hits = torch.bincount(y[correct], minlength=num_classes)
    acc = [(h / k) if k else math.nan for h, k in zip(hits.tolist(), n.tolist(), strict=True)]
    return acc, n.tolist()


@dataclass
class AttackResult(Schema):
    """One attack's per-class result on one checkpoint (the core product of every evaluation;
    the report reads it through this type)."""

    per_class: list[float]          # accuracy per class (NaN for a class without points)
    n_per_class: list[int]          # evaluated points per class
    avg: float                      # mean of per-class accuracies
    worst: float                    # min over classes
    worst_class: str
    std: float                      # across classes (ddof=0)
    worst10: float                  # mean of the worst ceil(10%) classes
    boundary_error: list[float] | None = None  # per class: clean-correct, adversarially wrong
    n_points: int | None = None     # points evaluated, and their outcomes (1 bit each, hex)
    outcomes: str | None = None
    autoattack_own_robust_accuracy: float | None = None  # AutoAttack's own log line
    pointwise_robust_accuracy: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON; fields that do not apply (None) are left out."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def summarize(per_class: Sequence[float], n_per_class: Sequence[int], classes: Sequence[str]
              ) -> AttackResult:
    """avg = mean of per-class accuracies; worst = min; std across classes (ddof=0);
    worst10 = mean of the worst ceil(10%) classes (the CIFAR-100 convention)."""
    valid = [(a, c) for a, c in zip(per_class, classes, strict=True) if not math.isnan(a)]
    if not valid:
        raise ValueError("no class has evaluation points")
    accs = [a for a, _ in valid]
    avg = sum(accs) / len(accs)
    worst, worst_class = min(valid, key=lambda t: t[0])
    std = math.sqrt(sum((a - avg) ** 2 for a in accs) / len(accs))
    k = max(1, math.ceil(0.1 * len(accs)))
    return AttackResult(per_class=list(per_class), n_per_class=list(n_per_class), avg=avg,
                        worst=worst, worst_class=worst_class, std=std,
                        worst10=sum(sorted(accs)[:k]) / k)


def evaluate_predictions(pred: Tensor, y: Tensor, classes: Sequence[str],
                         clean_pred: Tensor | None = None) -> AttackResult:
    """Summary of predictions; with the clean predictions, also the per-class boundary error
    (clean-correct but adversarially wrong)."""
    acc, n = per_class_accuracy(pred == y, y, len(classes))
    out = summarize(acc, n, classes)
    if clean_pred is not None:
        bndy, _ = per_class_accuracy((clean_pred == y) & (pred != y), y, len(classes))
        out.boundary_error = bndy
    return out


def pack_outcomes(correct: Tensor) -> str:
    """Per-point outcomes (True = correct) as a hex string, 1 bit per point (for paired tests
    between methods evaluated on the same points)."""
    bits = correct.detach().cpu().bool().tolist()
    padded = bits + [False] * (-len(bits) % 8)
    data = bytes(sum(b << (7 - i) for i, b in enumerate(padded[k:k + 8]))
                 for k in range(0, len(padded), 8))
    return data.hex()


def unpack_outcomes(text: str, n: int) -> list[bool]:
    """The first `n` outcomes of `pack_outcomes`."""
    data = bytes.fromhex(text)
    return [bool(data[k // 8] >> (7 - k % 8) & 1) for k in range(n)]
