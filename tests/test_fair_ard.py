"""Fair-ARD (methods/fair_ard.py): class Kappa and the clamped weights against hand computations,
the distillation loss by hand (its T^2 / C factor included), the correct-iterate count against a
hand-written PGD loop (no extra passes), the train-mode attack option, the epoch cycle of
weights and the state through a weights_only checkpoint. (The same functions were compared with
the official ones on tiny inputs in a scratch script: Kappa, iterates, gradients and BatchNorm
statistics identical, weights within 5e-7.)"""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.common.errors import UserError
from benchmark.core.attacks import PassCounter
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.fair_ard import (
    CountCorrect,
    FairArd,
    class_kappa,
    distill_loss,
    kappa_weights,
)

CPU = torch.device("cpu")
EPS, ALPHA, STEPS = 0.3, 0.1, 3


class Tiny(nn.Module):
    """A 2-class CNN with BatchNorm on 1x2x2 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def _ctx(teacher: nn.Module | None = None, num_classes: int = 2) -> TrainContext:
    protocol = Protocol(dataset="toy", preset="toy", model="toy", epochs=4, eps=EPS,
                        alpha=ALPHA, train_steps=STEPS)
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    return TrainContext(protocol=protocol, num_classes=num_classes, device=CPU,
                        counter=PassCounter(), val_loader=TensorLoader(x, y, 6, device=CPU),
                        teacher=teacher)


def _frozen(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def test_class_kappa_divides_by_n_over_c():
    # 30 examples of 3 classes: N / C = 10, whatever the class sizes
    got = class_kappa(torch.tensor([20.0, 10.0, 0.0]), 30)
    assert got.dtype == torch.float64 and got.tolist() == [2.0, 1.0, 0.0]


def test_weights_from_kappa_by_hand_with_the_clamp():
    kappa = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    # beta 1: r = (1, 1/2, 1/4), 3 r / sum r = (12/7, 6/7, 3/7); 3/7 clamps up to 5/6
    assert kappa_weights(kappa, 1.0).tolist() == pytest.approx([12 / 7, 6 / 7, 5 / 6], rel=1e-4)
    # beta 2: r = (1, 1/4, 1/16), 3 r / sum r = (16/7, 4/7, 1/7): no renormalisation after it
    assert kappa_weights(kappa, 2.0).tolist() == pytest.approx([16 / 7, 5 / 6, 5 / 6], rel=1e-4)
    # a class never classified correctly (Kappa 0 -> r = 1e10) takes the cap, the others the floor
    zero = kappa_weights(torch.tensor([0.0, 5.0, 9.0]), 2.0)
    assert zero.tolist() == pytest.approx([2.5, 5 / 6, 5 / 6])
    assert kappa_weights(kappa, 0.0).tolist() == [1.0, 1.0, 1.0]  # beta 0: no reweighting
    assert kappa_weights(kappa, 2.0, 0.0, 10.0).tolist() == pytest.approx(
        [16 / 7, 4 / 7, 1 / 7], rel=1e-4)


def test_distill_loss_by_hand_with_the_t_squared_over_c_factor():
    student = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    y, w, t = torch.tensor([0, 1]), torch.tensor([2.0, 0.5]), 2.0

    def kl(p: list[float], q: list[float]) -> float:
        return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))

    e1, e2 = math.exp(1) / (1 + math.exp(1)), math.exp(2) / (1 + math.exp(2))
    kl1 = kl([0.5, 0.5], [e1, 1 - e1])          # teacher uniform, student softmax(1, 0)
    kl2 = kl([e2, 1 - e2], [0.5, 0.5])          # teacher softmax(2, 0), student uniform
    # KLDivLoss 'mean' over the C = 2 classes, times T^2 = 4, weighted, batch mean
    expected = 4 * (2.0 * kl1 / 2 + 0.5 * kl2 / 2) / 2
    assert float(distill_loss(student, teacher, y, w, t, 1.0)) == pytest.approx(expected)
    clean = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    ce = [math.log(1 + math.exp(-1)), math.log(1 + math.exp(-3))]
    mixed = 0.3 * expected + 0.7 * (2.0 * ce[0] + 0.5 * ce[1]) / 2
    got = distill_loss(student, teacher, y, w, t, 0.3, clean)
    assert float(got) == pytest.approx(mixed)
    with pytest.raises(ValueError, match="clean logits"):
        distill_loss(student, teacher, y, w, t, 0.3)


def test_the_official_defaults_are_90_times_the_weighted_kl():
    torch.manual_seed(0)
    s, t = torch.randn(5, 10) * 20, torch.randn(5, 10) * 20
    y, w = torch.randint(0, 10, (5,)), torch.rand(5) + 0.5
    ps = F.softmax(t / 30, 1)
    kl = (ps * (F.log_softmax(t / 30, 1) - F.log_softmax(s / 30, 1))).sum(1)
    assert float(distill_loss(s, t, y, w, 30.0, 1.0)) == pytest.approx(
        float(90 * (w * kl).mean()), rel=1e-5)


def _hand_pgd_counts(model: nn.Module, x, y, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD-K on CE from a clipped uniform start, counting correct iterates 0..K-1 (eval)."""
    model.eval()
    torch.manual_seed(seed)
    x_adv = (x + (torch.rand_like(x) * 2 - 1) * EPS).clamp(0, 1)
    correct = torch.zeros(len(y), dtype=torch.long)
    for _ in range(STEPS):
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        correct += (logits.argmax(1) == y).long()
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + ALPHA * grad.sign(), x - EPS), x + EPS)
        x_adv = x_adv.clamp(0, 1)
    return x_adv, correct


def test_counting_matches_a_hand_loop_and_costs_no_extra_pass():
    torch.manual_seed(0)
    model, x, y = Tiny(), torch.rand(16, 1, 2, 2), torch.randint(0, 2, (16,))
    expected_x, expected = _hand_pgd_counts(model, x, y, seed=3)
    model.train()
    ctx, counter, rule = _ctx(), PassCounter().attach(model), CountCorrect()
    torch.manual_seed(3)
    x_adv = ctx.attack(model, x, y, loss="ce", start="uniform", rule=rule).x_adv
    assert torch.equal(rule.correct, expected) and torch.allclose(x_adv, expected_x)
    assert model.training and 0 < int(expected.sum()) < 16 * STEPS  # a non-trivial count
    assert (counter.forward, counter.backward) == (16 * STEPS, 16 * STEPS)


@pytest.mark.parametrize(("train_mode_attack", "bn_updates"), [(False, 2), (True, STEPS + 2)])
def test_attack_mode_option_and_the_clean_forward(train_mode_attack: bool, bn_updates: int):
    torch.manual_seed(0)
    model, teacher = Tiny(), _frozen(Tiny())
    x, y = torch.rand(8, 1, 2, 2), torch.randint(0, 2, (8,))
    method = FairArd(train_mode_attack=train_mode_attack)
    ctx = _ctx(teacher)
    method.on_epoch_start(model, ctx)
    model.train()
    method.loss(model, x, y, ctx).backward()
    # the attack's forwards move BatchNorm only in train mode; then the adversarial forward and
    # the unused clean forward (official order)
    assert int(model.bn.num_batches_tracked) == bn_updates and model.training
    other = Tiny().train()
    FairArd(clean_bn_forward=False, train_mode_attack=train_mode_attack).loss(other, x, y, ctx)
    assert int(other.bn.num_batches_tracked) == bn_updates - 1


def test_epoch_cycle_weights_and_state_through_a_checkpoint():
    torch.manual_seed(1)
    model, teacher = Tiny(), _frozen(Tiny())
    x, y = torch.rand(8, 1, 2, 2), torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    method, ctx = FairArd(), _ctx(teacher)
    assert method.on_epoch_start(model, ctx) == {"fair_ard_weights": [1.0, 1.0]}
    x_adv, counts = _hand_pgd_counts(copy.deepcopy(model), x, y, seed=5)
    model.train()
    torch.manual_seed(5)
    epoch0 = method.loss(model, x, y, ctx)
    with torch.no_grad():
        assert float(epoch0) == pytest.approx(float(distill_loss(
            model(x_adv), teacher(x), y, torch.ones(8), 30.0, 1.0)), rel=1e-4)
    log = method.on_epoch_end(model, ctx)
    sums = torch.bincount(y, weights=counts.double(), minlength=2)
    kappa = sums / (8 / 2)
    assert log["fair_ard_kappa"] == pytest.approx(kappa.tolist())
    assert log["fair_ard_next_weights"] == pytest.approx(kappa_weights(kappa, 2.0).tolist())
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    resumed = FairArd()
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(resumed.class_weights(2), method.class_weights(2))
    assert resumed.on_epoch_start(model, ctx)["fair_ard_weights"] == log["fair_ard_next_weights"]


def test_bad_clamp_and_the_recipe_schedule():
    protocol = _ctx().protocol
    with pytest.raises(UserError, match="weight_min"):
        FairArd(weight_min=3.0).validate(protocol)
    recipe = FairArd.recipes["cifar10"].protocol
    sched = Protocol(dataset="toy", preset="toy", model="toy", lr=recipe["lr"],
                     lr_milestones=recipe["lr_milestones"])
    # official: the epoch-150 drop multiplies the initial lr again, so never 0.001
    assert [sched.lr_at(e) for e in (0, 99, 100, 150, 199)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.01])
