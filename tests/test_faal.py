"""FAAL (methods/faal.py): the closed-form DRO weights against a generic solver and the official
cvxpy solution, the batch margins, the loss, and the fine-tune's length and learning rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torch import nn

from benchmark.core.attacks import PassCounter
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.faal import Faal, class_scores, dro_weights, kl_uniform, softmax_margin

CPU = torch.device("cpu")


def _generic(score: np.ndarray, r: float) -> np.ndarray:
    """The same problem handed to scipy's SLSQP (max score.p, simplex, KL(u||p) <= r)."""
    c = len(score)
    cons = [{"type": "eq", "fun": lambda p: p.sum() - 1},
            {"type": "ineq", "fun": lambda p: r - (-math.log(c) - np.log(p).mean())}]
    res = minimize(lambda p: -score @ p, np.full(c, 1 / c), method="SLSQP", constraints=cons,
                   bounds=[(1e-9, 1)] * c, options={"ftol": 1e-12, "maxiter": 1000})
    assert res.success
    return res.x


def test_closed_form_matches_the_official_cvxpy_optimum():
    # l = [0.2, -0.1, 0.5] with class counts [2, 3, 1]: score n*l. The official DAW problem
    # solved by ECOS (TrustAI/FAAL@b20ee9d) gave [0.2539471, 0.0465204, 0.6995325]
    p = dro_weights(torch.tensor([0.4, -0.3, 0.5]), 0.5)
    assert torch.allclose(p, torch.tensor([0.2539471, 0.0465204, 0.6995325],
                                          dtype=torch.float64), atol=1e-6)
    assert kl_uniform(p) == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_closed_form_matches_a_generic_solver(seed: int):
    g = torch.Generator().manual_seed(seed)
    score = torch.randn(6, generator=g, dtype=torch.float64) * 3
    r = [0.05, 0.5, 1.0, 0.2, 2.0][seed]
    p = dro_weights(score, r)
    q = _generic(score.numpy(), r)
    assert float(p.sum()) == pytest.approx(1.0)
    assert kl_uniform(p) == pytest.approx(r, abs=1e-8)
    assert float(score @ p) >= float(score.numpy() @ q) - 1e-6  # at least as good
    assert np.allclose(p.numpy(), q, atol=2e-4)


def test_equal_scores_or_no_radius_give_uniform_weights():
    assert dro_weights(torch.tensor([0.3, 0.3, 0.3]), 0.5).tolist() == [1 / 3] * 3
    assert dro_weights(torch.tensor([0.1, 0.9]), 0.0).tolist() == [0.5, 0.5]


def test_margins_and_class_scores_by_hand():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]]))
    y = torch.tensor([0, 0, 1])
    m = softmax_margin(logits, y)
    assert torch.allclose(m, torch.tensor([0.2 - 0.7, 0.6 - 0.1, 0.25 - 0.5]))
    # class 0: n 2, sum of margins 0.0; class 1: -0.25; class 2 absent: 0
    assert torch.allclose(class_scores(m, y, 3), torch.tensor([0.0, -0.25, 0.0],
                                                              dtype=torch.float64), atol=1e-7)


def test_loss_is_c_over_b_times_weighted_ce(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    protocol = Protocol(dataset="toy", preset="toy", model="toy", eps=0.3, alpha=0.1,
                        train_steps=2)
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 0, 1, 1, 1])
    ctx = TrainContext(protocol=protocol, num_classes=3, device=CPU, counter=PassCounter(),
                       val_loader=TensorLoader(x, y, 5, device=CPU))
    x_adv = torch.rand(5, 1, 2, 2)
    monkeypatch.setattr(ctx, "attack", lambda *a, **k: type("R", (), {"x_adv": x_adv})())
    loss = Faal(r=0.5, clean_bn_forward=False).loss(model, x, y, ctx)
    logits = model(x_adv)
    probs = logits.softmax(1)
    margin = torch.stack([max(probs[i, j] for j in range(3) if j != y[i]) - probs[i, y[i]]
                          for i in range(5)])
    score = torch.tensor([float(margin[:2].sum()), float(margin[2:].sum()), 0.0])
    p = dro_weights(score, 0.5)
    ce = -logits.log_softmax(1)[torch.arange(5), y]
    assert torch.allclose(loss, 3 / 5 * (p.float()[y] * ce).sum())


def test_fine_tunes_two_epochs_from_the_finished_pgd_at_run_at_its_own_rates():
    protocol = Protocol(dataset="toy", preset="toy", model="toy", epochs=10, lr=0.1)
    faal = Faal()
    assert faal.warm_start(protocol) == ("pgd_at", 10)
    assert faal.end_epoch(protocol) == 12
    assert [faal.lr_at(e, protocol) for e in (10, 11)] == pytest.approx([0.01, 0.001])
