"""WAT (methods/wat.py): expert weights from given costs by hand, the class/overall costs, and the
loss's per-example weight w_y + w_avg."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.core.attacks import PassCounter
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.wat import TradesWat, class_costs, expert_weights

CPU = torch.device("cpu")


def _hand_weights(cum: list[float], eta: float) -> list[float]:
    e = [math.exp(eta * c) for c in cum]
    return [(len(cum) - 1) * v / sum(e) for v in e]


def test_expert_weights_by_hand_and_as_the_official_update():
    # costs [1, 2, 0.5] and the average expert's 3.5 / 3; the official update run on these
    # numbers (boqili/WAT@62d1184, lines 233-248) printed [0.73652, 0.81398, 0.70060, 0.74890]
    cum = torch.tensor([1.0, 2.0, 0.5, 3.5 / 3], dtype=torch.float64)
    w = expert_weights(cum, 0.1)
    assert w.tolist() == pytest.approx(_hand_weights(cum.tolist(), 0.1))
    assert torch.allclose(w, torch.tensor([0.73652, 0.81398, 0.70060, 0.74890],
                                          dtype=torch.float64), atol=5e-6)
    assert math.isclose(float(w.sum()), 3.0)
    # two epochs of the same costs accumulate: the official run printed these after epoch 2
    assert torch.allclose(expert_weights(2 * cum, 0.1),
                          torch.tensor([0.72113, 0.88079, 0.65251, 0.74557],
                                       dtype=torch.float64), atol=5e-6)


def test_class_costs_are_class_means_then_the_overall_mean():
    cost = torch.tensor([1.0, 3.0, 2.0, 6.0, 4.0])
    y = torch.tensor([0, 0, 1, 1, 2])
    got = class_costs(cost, y, 3)
    assert got.tolist() == [2.0, 4.0, 4.0, 16.0 / 5]


def test_loss_weights_each_example_by_its_class_plus_the_average_expert(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    protocol = Protocol(dataset="toy", preset="toy", model="toy", eps=0.3, alpha=0.1,
                        train_steps=2)
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 0, 1, 1, 2, 2])
    ctx = TrainContext(protocol=protocol, num_classes=3, device=CPU, counter=PassCounter(),
                       val_loader=TensorLoader(x, y, 6, device=CPU))
    method = TradesWat(beta=6.0, eta=0.1)
    weights = torch.tensor([0.5, 1.0, 1.5, 0.25], dtype=torch.float64)
    method.load_state_dict({"weights": weights, "cumulative": torch.zeros(4)})
    x_adv = torch.rand(6, 1, 2, 2)
    monkeypatch.setattr(ctx, "attack", lambda *a, **k: type("R", (), {"x_adv": x_adv})())
    loss = method.loss(model, x, y, ctx)
    clean, adv = model(x), model(x_adv)
    p = clean.softmax(1)
    per = (-clean.log_softmax(1)[torch.arange(6), y]
           + 6.0 * (p * (p.log() - adv.log_softmax(1))).sum(1))
    w = torch.tensor([0.75, 0.75, 1.25, 1.25, 1.75, 1.75])
    assert torch.allclose(loss, (w * per).mean())
    # the first epoch, before any validation, trains on ones: 2x TRADES
    fresh = TradesWat()
    assert torch.allclose(fresh.loss(model, x, y, ctx), 2 * (per).mean())
    # an epoch's end adds the validation costs and renews the weights
    monkeypatch.undo()
    fresh.on_epoch_end(model, ctx)
    state = fresh.state_dict()
    assert torch.allclose(state["weights"], expert_weights(state["cumulative"], 0.1))
    assert state["cumulative"].shape == (4,) and bool((state["cumulative"] > 0).all())
