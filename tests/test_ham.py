"""HAM: early dropping keeps exactly the examples that cross within M steps, and trains on them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.catalog import make_method
from benchmark.common.errors import UserError
from benchmark.core.attacks import PassCounter, pgd
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.ham import DropEasy, Ham, gair_weights

EPS, ALPHA, K, M = 0.3, 0.2, 10, 3


def threshold_model(k: float = 4.0) -> nn.Module:
    """Two classes decided by x0 alone: class 0 iff x0 > 0.5 (x1 has zero weight).

    Under CE-PGD the x0 coordinate moves by alpha towards the boundary each step; with
    M * alpha >= 2 * eps it sits at x0 -/+ eps after M steps whatever the random start.
    """
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[k, 0.0], [-k, 0.0]]))
        lin.bias.copy_(torch.tensor([-k / 2, k / 2]))
    return nn.Sequential(nn.Flatten(), lin)


def batch(x0: list[float], y: list[int]) -> tuple[Tensor, Tensor]:
    x = torch.tensor([[v, 0.5] for v in x0]).reshape(-1, 1, 1, 2)
    return x, torch.tensor(y)


# easy (robust within eps), easy, hard (crosses), clean-wrong, easy (class 1), hard (class 1)
X0, Y = [0.9, 0.95, 0.7, 0.1, 0.05, 0.35], [0, 0, 0, 0, 1, 1]
HARD = [False, False, True, True, False, True]


def context(model: nn.Module) -> tuple[TrainContext, PassCounter]:
    protocol = Protocol(dataset="toy", preset="toy", model="toy", val_per_class=1, epochs=12,
                        eps=EPS, alpha=ALPHA, train_steps=K)
    counter = PassCounter().attach(model)
    x, y = batch(X0, Y)
    cpu = torch.device("cpu")
    ctx = TrainContext(protocol=protocol, num_classes=2, device=cpu, counter=counter,
                       val_loader=TensorLoader(x, y, 8, device=cpu))
    return ctx, counter


def test_keeps_exactly_the_examples_that_cross_within_m_steps():
    model = threshold_model()
    x, y = batch(X0, Y)
    for seed in range(5):  # any random start
        torch.manual_seed(seed)
        result = DropEasy(M)
        pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=K, rule=result)
        assert result.kept.tolist() == HARD
        assert torch.all(result.first_miss[result.kept] <= M)
        assert torch.all(result.first_miss[~result.kept] == K + 1)


def test_loss_is_mean_ce_over_kept_and_dropped_get_no_more_steps():
    model = threshold_model().train()
    ctx, counter = context(model)
    seen: list[tuple[bool, int]] = []
    model.register_forward_pre_hook(lambda m, i: seen.append((m.training, len(i[0]))))
    x, y = batch(X0, Y)
    method = Ham()
    ctx.log = {}
    method.on_epoch_start(model, ctx)
    torch.manual_seed(0)
    loss = method.loss(model, x, y, ctx)
    loss.backward()

    n, h = len(Y), sum(HARD)
    # M steps on all, one check forward on all, K - M steps on the hard ones, update on hard
    assert counter.forward == M * n + n + (K - M) * h + h
    assert counter.backward == M * n + (K - M) * h + h
    # the only train-mode forward (the update) sees the hard subset only (BatchNorm stats too)
    assert [s for training, s in seen if training] == [h]

    logged = method.on_epoch_end(model, ctx)
    assert ctx.log["ham_dropped"] == n - h and ctx.log["ham_examples"] == n
    assert logged["ham_dropped_fraction"] == pytest.approx((n - h) / n)
    actual = counter.forward + counter.backward
    assert logged["ham_passes"] == actual
    assert logged["ham_passes_saved_fraction"] == pytest.approx(1 - actual / ((2 * K + 2) * n))
    assert logged["ham_passes_saved_fraction"] > 0

    torch.manual_seed(0)
    drop = DropEasy(M)
    ref = pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=K, rule=drop)
    kept = drop.kept
    expected = F.cross_entropy(model(ref.x_adv[kept]), y[kept])
    torch.testing.assert_close(loss.detach(), expected.detach())
    # hard examples of class 0 end at x0 - eps, of class 1 at x0 + eps
    torch.testing.assert_close(ref.x_adv[kept, 0, 0, 0], torch.tensor([0.4, 0.0, 0.65]))


def test_batch_without_hard_examples_skips_the_update():
    model = threshold_model().train()
    ctx, counter = context(model)
    ctx.log = {}
    x, y = batch([0.9, 0.95, 0.05], [0, 0, 1])
    method = Ham()
    torch.manual_seed(0)
    assert method.loss(model, x, y, ctx) is None
    assert ctx.log["ham_skipped_batches"] == 1
    assert ctx.log["ham_dropped"] == 3
    assert counter.forward == M * 3 + 3 and counter.backward == M * 3  # nothing after the check


def test_gair_weights_match_formula_and_have_mean_one():
    kappa = torch.tensor([0, 1, 2, 3])
    lam = -1.0
    raw = [(math.tanh(lam + 5 * (1 - 2 * k / K)) + 1) / 2 for k in kappa.tolist()]
    expected = torch.tensor([r * len(raw) / sum(raw) for r in raw], dtype=torch.float64)
    w = gair_weights(kappa, K, lam)
    torch.testing.assert_close(w, expected)
    assert w.mean().item() == pytest.approx(1.0)
    assert torch.all(w[:-1] > w[1:])  # examples misclassified earlier weigh more


def test_gair_loss_uses_first_miss_weights():
    model = threshold_model().train()
    ctx, _ = context(model)
    ctx.log = {}
    x, y = batch(X0, Y)
    torch.manual_seed(1)
    loss = Ham(reweight="gair").loss(model, x, y, ctx)
    torch.manual_seed(1)
    drop = DropEasy(M)
    ref = pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=K, rule=drop)
    kept = drop.kept
    w = gair_weights(drop.first_miss[kept].clamp(max=K), K, -1.0).float()
    ce = F.cross_entropy(model(ref.x_adv[kept]), y[kept], reduction="none")
    torch.testing.assert_close(loss.detach(), (w * ce).mean().detach())
    assert drop.first_miss[3] == 0  # wrong from the start: kappa = 0, the largest weight


def test_bad_reweight_is_a_user_error_and_warm_start_is_pgd_at():
    protocol = Protocol(dataset="toy", preset="toy", model="toy", val_per_class=1, epochs=120)
    with pytest.raises(UserError, match="reweight"):
        make_method("ham", protocol, {"reweight": "focal"})
    assert Ham().warm_start(protocol) == ("pgd_at", 50)
    assert Ham(begin_epoch=48).warm_start(protocol) == ("pgd_at", 48)
    assert Ham.core


def test_drop_step_beyond_k_is_refused_before_any_work():
    from benchmark.catalog import get_protocol

    protocol = get_protocol("fmnist", "smoke")  # train_steps = 2
    with pytest.raises(UserError, match=r"ham.drop_step=3 must be <= train_steps=2"):
        make_method("ham", protocol, {"drop_step": 3})
    assert make_method("ham", protocol, {"drop_step": 2}).drop_step == 2  # M = K is allowed
