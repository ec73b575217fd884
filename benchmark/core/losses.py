"""Per-example losses shared by attacks and methods."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def kl_per_example(clean_logits: Tensor, adv_logits: Tensor) -> Tensor:
    """KL(softmax(clean) || softmax(adv)) summed over classes, one value per example."""
    p = F.softmax(clean_logits, dim=1)
    return (p * (F.log_softmax(clean_logits, dim=1) - F.log_softmax(adv_logits, dim=1))).sum(1)


def cw_margin(logits: Tensor, y: Tensor) -> Tensor:
    """CW margin loss per example: max_{j != y} z_j - z_y (positive means misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.max(1).values - true


def trades_loss(clean_logits: Tensor, adv_logits: Tensor, y: Tensor, beta: float) -> Tensor:
    """TRADES: mean CE(f(x), y) + beta * batch-mean KL(f(x) || f(x_adv))."""
    return F.cross_entropy(clean_logits, y) + beta * kl_per_example(clean_logits, adv_logits).mean()


def weighted_mean(values: Tensor, weights: Tensor) -> Tensor:
    """sum(w * v) / sum(w); 0 when all weights are 0."""
    total = weights.sum()
    return (weights * values).sum() / total if total > 0 else values.sum() * 0.0



