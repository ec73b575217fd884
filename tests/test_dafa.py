"""DAFA (methods/dafa.py): W from a given class-probability matrix by hand (both branches, both
rules, as the official function computes them), p collected in the last warm-up epoch, and W
scaling the attack's eps/alpha and the clean CE only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.common.errors import RunFailed
from benchmark.core.attacks import PassCounter
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.dafa import TradesDafa, class_weights

CPU = torch.device("cpu")
P = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])


def test_class_weights_current_rule_by_hand():
    # class 0 (p00 0.6): easier than class 1 (0.5): -= p10 p00 = 0.12; harder than class 2
    # (0.7): += p02 p22 = 0.07. Class 1: += 0.2*0.6 + 0.3*0.7. Class 2: -= 0.1*0.7 + 0.3*0.7.
    # The official function (rucy74/DAFA@c60ba83) returned [0.95, 1.33, 0.72] on this p.
    w = class_weights(P, 1.0, "current")
    assert torch.allclose(w, torch.tensor([0.95, 1.33, 0.72], dtype=torch.float64))
    assert float(w.sum()) == pytest.approx(3.0)  # every pair is a transfer under this rule


def test_class_weights_original_rule_and_lambda():
    # before commit 74657cd the easier class lost p_ij p_jj: [0.92, 1.33, 0.84] (official output)
    assert torch.allclose(class_weights(P, 1.0, "original"),
                          torch.tensor([0.92, 1.33, 0.84], dtype=torch.float64))
    # lam scales every transfer
    assert torch.allclose(class_weights(P, 0.5) - 1, (class_weights(P, 1.0) - 1) / 2)


def test_ties_fall_to_the_subtracting_branch():
    p = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    assert class_weights(p, 1.0).tolist() == [0.75, 0.75]


def _ctx() -> tuple[nn.Module, TrainContext]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    protocol = Protocol(dataset="toy", preset="toy", model="toy", epochs=11, eps=0.3,
                        alpha=0.1, train_steps=2)
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 0, 1, 1, 2, 2])
    return model, TrainContext(protocol=protocol, num_classes=3, device=CPU,
                               counter=PassCounter(), val_loader=TensorLoader(x, y, 6, device=CPU))


def test_warm_start_is_trades_one_epoch_before_the_warm_up_ends():
    protocol = Protocol(dataset="toy", preset="toy", model="toy", epochs=110)
    assert TradesDafa().warm_start(protocol) == ("trades", 69)  # epoch 70 (1-based) is ours
    assert TradesDafa(warmup_epochs=5).warm_start(protocol) == ("trades", 4)


def test_last_warm_up_epoch_collects_p_then_w_scales_attack_and_clean_ce(monkeypatch):
    model, ctx = _ctx()
    method = TradesDafa(lam=1.0)
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 0, 1, 1, 2, 2])
    x_adv = torch.rand(6, 1, 2, 2)
    calls = []

    def fake_attack(model, x, y, **kw):
        calls.append(kw)
        return type("R", (), {"x_adv": x_adv})()

    monkeypatch.setattr(ctx, "attack", fake_attack)
    method.on_epoch_start(model, ctx)
    loss = method.loss(model, x, y, ctx)  # warm-up: plain TRADES, no eps given
    assert "eps" not in calls[-1]
    clean, adv = model(x), model(x_adv)
    p = clean.softmax(1)
    kl = (p * (p.log() - adv.log_softmax(1))).sum(1)
    ce = -clean.log_softmax(1)[torch.arange(6), y]
    assert torch.allclose(loss, ce.mean() + 6.0 * kl.mean())
    log = method.on_epoch_end(model, ctx)
    probs = adv.detach().softmax(1).double()
    p_hat = torch.stack([probs[y == k].mean(0) for k in range(3)])
    w = class_weights(p_hat, 1.0)
    assert log["dafa_weights"] == pytest.approx(w.tolist())
    # from now on: eps_i = W_y eps, alpha_i = W_y alpha, W_y on the clean CE only
    loss = method.loss(model, x, y, ctx)
    wy = w.float()[y]
    assert torch.allclose(calls[-1]["eps"], wy * 0.3) and torch.allclose(calls[-1]["alpha"],
                                                                         wy * 0.1)
    assert torch.allclose(loss, (wy * ce).mean() + 6.0 * kl.mean())


def test_non_positive_weight_stops_the_run(monkeypatch):
    model, ctx = _ctx()
    method = TradesDafa(lam=50.0)
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 0, 1, 1, 2, 2])
    method.on_epoch_start(model, ctx)
    method.loss(model, x, y, ctx)
    with pytest.raises(RunFailed, match="lower trades_dafa.lam"):
        method.on_epoch_end(model, ctx)
