"""BAT (methods/bat.py) and the attack's early stops it uses: on a model whose crossing step is
known, the last clean and first adversarial iterates; BAT's loss by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.core.attacks import PassCounter, pgd
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.bat import Bat, FirstAdversarial, LastClean, kl_to_uniform

CPU = torch.device("cpu")


class Threshold(nn.Module):
    """Two classes on one pixel: class 1 once x > 0.52 (logits [0, 10 (x - 0.52)])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 10 * (x.flatten(1).mean(1) - 0.52)
        return torch.stack([torch.zeros_like(s), s], 1)


def _attack(start: list[float], rule: FirstAdversarial) -> tuple[list[float], list[int]]:
    x = torch.tensor(start, dtype=torch.float64).reshape(-1, 1, 1, 1)
    y = torch.zeros(len(start), dtype=torch.long)
    res = pgd(Threshold(), x, y, eps=0.5, alpha=0.05, steps=10, loss="ce", start="none",
              rule=rule)
    return [round(v, 6) for v in res.x_adv.flatten().tolist()], rule.stopped_at.tolist()


def test_last_clean_iterate_is_the_one_before_the_crossing():
    # from 0.3 the iterates are 0.3, 0.35, ..., 0.5 (still class 0),
    # 0.55 (iterate 5, the first misclassified): the last clean one is iterate 4, 0.5.
    # From 0.7 the start is already wrong: the start itself. From 0.0 it never crosses: x^10.
    got, at = _attack([0.3, 0.7, 0.0], LastClean())
    assert got == [0.5, 0.7, 0.5] and at == [4, 0, 10]


def test_first_adversarial_iterate_with_patience():
    got, at = _attack([0.3, 0.7, 0.0], FirstAdversarial(patience=0))
    assert got == [0.55, 0.7, 0.5] and at == [5, 0, 10]
    got, at = _attack([0.3, 0.7, 0.0], FirstAdversarial(patience=1))  # BAT's tau = 1
    assert got == [0.6, 0.75, 0.5] and at == [6, 1, 10]


def test_stopped_examples_spend_no_more_passes():
    counter = PassCounter()
    model = Threshold()
    counter.attach(model)
    x = torch.tensor([0.3, 0.0], dtype=torch.float64).reshape(-1, 1, 1, 1)
    pgd(model, x, torch.zeros(2, dtype=torch.long), eps=0.5, alpha=0.05, steps=10, loss="ce",
        start="none", rule=FirstAdversarial())
    # the 0.3 example is attacked at iterates 0..5 (6 forwards), the other at 0..9 (10)
    assert counter.forward == 16


def test_kl_to_uniform_is_log_c_minus_entropy():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert float(kl_to_uniform(logits)) == pytest.approx(math.log(3) - h)


def test_bat_loss_by_hand(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    protocol = Protocol(dataset="toy", preset="toy", model="toy", eps=0.3, alpha=0.1,
                        train_steps=2)
    x, y = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 2, 0])
    ctx = TrainContext(protocol=protocol, num_classes=3, device=CPU, counter=PassCounter(),
                       val_loader=TensorLoader(x, y, 4, device=CPU))
    lc, fa = torch.rand(4, 1, 2, 2), torch.rand(4, 1, 2, 2)
    calls = []

    def fake_attack(model, x, y, **kw):
        calls.append(kw)
        return type("R", (), {"x_adv": lc if type(kw["rule"]) is LastClean else fa})()

    monkeypatch.setattr(ctx, "attack", fake_attack)
    loss = Bat(beta=6.0, patience=1).loss(model, x, y, ctx)
    assert [(c["loss"], c["start"], type(c["rule"]), c["rule"].patience) for c in calls] == [
        ("kl", "trades_clipped", LastClean, 0), ("kl", "trades_clipped", FirstAdversarial, 1)]
    out_lc, out_fa, clean = model(lc), model(fa), model(x)
    p = clean.softmax(1)
    ce = -out_lc.log_softmax(1)[torch.arange(4), y]
    kl = (p * (p.log() - out_fa.log_softmax(1))).sum(1)

    def to_uniform(z):
        q = z.softmax(1)
        return (q * (q.log() - math.log(1 / 3))).sum(1)

    expected = ce.mean() + 6.0 * kl.mean() + (to_uniform(out_lc) + to_uniform(out_fa)).mean()
    assert torch.allclose(loss, expected)
