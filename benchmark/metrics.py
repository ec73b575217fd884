"""Per-class accuracy and the fairness summaries every table reports."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def per_class_accuracy(correct: Tensor, y: Tensor, num_classes: int
                       ) -> tuple[list[float], list[int]]:
    """Fraction correct per class and the number of points per class (NaN for an empty class)."""
    correct, y = correct.detach().cpu().bool(), y.detach().cpu().long()
    n = torch.bincount(y, minlength=num_classes)
    hits = torch.bincount(y[correct], minlength=num_classes)
    acc = [(h / k) if k else math.nan for h, k in zip(hits.tolist(), n.tolist(), strict=True)]
    return acc, n.tolist()


def summarize(per_class: Sequence[float], n_per_class: Sequence[int], classes: Sequence[str]
              ) -> dict[str, Any]:
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
    return {"per_class": list(per_class), "n_per_class": list(n_per_class), "avg": avg,
            "worst": worst, "worst_class": worst_class, "std": std,
            "worst10": sum(sorted(accs)[:k]) / k}


def evaluate_predictions(pred: Tensor, y: Tensor, classes: Sequence[str],
                         clean_pred: Tensor | None = None) -> dict[str, Any]:
    """Summary of predictions; with the clean predictions, also the per-class boundary error
    (clean-correct but adversarially wrong)."""
    acc, n = per_class_accuracy(pred == y, y, len(classes))
    out = summarize(acc, n, classes)
    if clean_pred is not None:
        bndy, _ = per_class_accuracy((clean_pred == y) & (pred != y), y, len(classes))
        out["boundary_error"] = bndy
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
