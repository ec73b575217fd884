"""TRADES loss against a hand computation on a tiny model."""

import math

import pytest
import torch
from torch import nn

from benchmark.core.losses import kl_per_example, trades_loss, weighted_mean


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def test_trades_loss_matches_hand_computation():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    x = torch.tensor([[1.0, 0.5], [0.2, 0.3]])
    x_adv = torch.tensor([[0.9, 0.6], [0.3, 0.2]])
    y = torch.tensor([0, 1])
    beta = 6.0
    got = trades_loss(model(x), model(x_adv), y, beta)

    def logits(v):
        return [v[0], 2 * v[1]]

    ce = kl = 0.0
    for xi, ai, yi in zip(x.tolist(), x_adv.tolist(), y.tolist(), strict=True):
        p, q = _softmax(logits(xi)), _softmax(logits(ai))
        ce += -math.log(p[yi])
        kl += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    expected = ce / 2 + beta * kl / 2  # KL summed over classes, averaged over the batch
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_kl_is_zero_for_identical_logits_and_weighted_mean():
    z = torch.randn(4, 3)
    assert torch.allclose(kl_per_example(z, z), torch.zeros(4), atol=1e-7)
    v, w = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 1.0, 3.0])
    assert weighted_mean(v, w).item() == pytest.approx((2 + 9) / 4)
    assert weighted_mean(v, torch.zeros(3)).item() == 0.0
