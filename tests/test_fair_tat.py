"""FAIR-TAT (methods/fair_tat.py): the error counts, class-wise eps and target law against hand
computations, the targeted attack against a hand-written targeted PGD loop, the epoch schedule of
calibration, the loss, and the method state through a weights_only checkpoint. (The same
functions were compared with the official ones on tiny inputs in a scratch script: attack iterates
within 6e-8, counts and law equal.)"""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.attacks import PassCounter
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.fair_tat import (
    FairTat,
    class_eps,
    error_counts,
    false_positive_share,
    robust_share,
    sample_targets,
    target_law,
    targeted_attack,
)

CPU = torch.device("cpu")
# 3 classes, labels 0 0 0 1 1 2 (imbalanced); predictions 0 1 0 1 0 0
LOGITS = torch.tensor([[5.0, 0, 0], [0, 5, 0], [5, 0, 0], [0, 5, 0], [5, 0, 0], [5, 0, 0]])
LABELS = torch.tensor([0, 0, 0, 1, 1, 2])


def _ctx(worst: list[float] | None = None, num_classes: int = 3) -> TrainContext:
    protocol = Protocol(dataset="toy", preset="toy", model="toy", epochs=4, eps=0.3,
                        alpha=0.1, train_steps=3)
    x = torch.rand(6, 1, 2, 2)
    answers = iter(worst or [])
    return TrainContext(protocol=protocol, num_classes=num_classes, device=CPU,
                        counter=PassCounter(), val_loader=TensorLoader(x, LABELS, 6, device=CPU),
                        validator=lambda m: {"robust_worst": next(answers)})


def test_counts_share_and_false_positive_share_by_hand():
    tp, fp = error_counts(LOGITS, LABELS, 3)
    # right: two of class 0, one of class 1; wrong predictions: 1 (a 0), 0 (a 1), 0 (a 2)
    assert tp.tolist() == [2, 1, 0] and fp.tolist() == [2, 1, 0]
    # s_k = C tp_k / N with N = 6: class 0 is 2/3 accurate but its share is 1.0 (imbalance)
    assert robust_share(tp, 6).tolist() == pytest.approx([1.0, 0.5, 0.0])
    # cfps_k = fp_k / errors: 3 errors, two predicted as 0, one as 1
    assert false_positive_share(fp).tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert false_positive_share(torch.zeros(3, dtype=torch.float64)).tolist() == [0, 0, 0]


def test_class_eps_by_hand():
    got = class_eps(torch.tensor([1.0, 0.5, 0.0]), 0.5, 0.3)
    assert got.tolist() == pytest.approx([0.45, 0.3, 0.15])


def test_target_law_and_sampling_excludes_the_label():
    cfps = torch.tensor([2 / 3, 1 / 3, 0.0], dtype=torch.float64)
    w = torch.tensor([4 / 3, 2 / 3, 0.0], dtype=torch.float64).exp()  # exp(2 cfps)
    assert torch.allclose(target_law(cfps, 2.0, 3), w / w.sum())
    assert torch.allclose(target_law(None, 2.0, 4), torch.full((4,), 0.25, dtype=torch.float64))
    q = w / w.sum()
    torch.manual_seed(0)
    y = torch.tensor([0, 1, 2]).repeat(20000)
    y_t = sample_targets(y, q)
    assert not bool((y_t == y).any())
    for label in range(3):  # P(y_t = j | y) = q_j / (1 - q_y) for j != y
        got = torch.bincount(y_t[y == label], minlength=3).double() / 20000
        expected = q.clone()
        expected[label] = 0
        assert torch.allclose(got, expected / expected.sum(), atol=0.01)


def _hand_targeted_pgd(model: nn.Module, x, y_t, eps, alpha: float, steps: int):
    """Targeted PGD written out as the official loop does it (delta form, uniform start)."""
    e = eps.reshape(-1, 1, 1, 1)
    delta = torch.clamp((torch.rand_like(x) - 0.5) * 2 * e, -x, 1 - x)
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x + delta), y_t), delta)
        delta = torch.max(torch.min(delta.detach() - alpha * grad.sign(), e), -e)
        delta = torch.clamp(delta, -x, 1 - x)
    return x + delta


def test_targeted_attack_is_the_hand_loop_and_moves_towards_the_target():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).train()
    x = torch.rand(6, 1, 2, 2)
    y_t = torch.tensor([1, 2, 2, 0, 0, 1])
    eps = torch.tensor([0.45, 0.45, 0.45, 0.3, 0.3, 0.15])
    ctx = _ctx()
    torch.manual_seed(1)
    ours = targeted_attack(ctx, model, x, y_t, eps)
    torch.manual_seed(1)
    hand = _hand_targeted_pgd(model, x, y_t, eps, 0.1, 3)
    assert torch.allclose(ours, hand, atol=1e-6)
    assert model.training  # the primitive restores the mode
    assert ((ours - x).abs().amax((1, 2, 3)) <= eps + 1e-6).all()
    with torch.no_grad():
        before, after = F.cross_entropy(model(x), y_t), F.cross_entropy(model(ours), y_t)
    assert float(after) < float(before)


def test_calibration_starts_at_calibrate_from_with_the_previous_epochs_counts():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    method = FairTat(lambda_eps=0.5, cfps_scale=2.0, calibrate_from=1)
    ctx = _ctx()
    ctx.epoch = 0
    start = method.on_epoch_start(model, ctx)
    assert start["fair_tat_calibrated"] == 0 and method.example_eps(LABELS, ctx) == 0.3
    assert start["fair_tat_target_law"] == pytest.approx([1 / 3] * 3)
    # the counts come from the loss's adversarial logits; fed here directly
    method._tp, method._fp, method._seen = *error_counts(LOGITS, LABELS, 3), 6.0
    end = method.on_epoch_end(model, ctx)
    assert end["fair_tat_robust_share"] == pytest.approx([1.0, 0.5, 0.0])
    assert end["fair_tat_cfps"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    ctx.epoch = 1
    start = method.on_epoch_start(model, ctx)
    assert start["fair_tat_eps"] == pytest.approx([0.45, 0.3, 0.15])
    w = torch.tensor([4 / 3, 2 / 3, 0.0]).exp()
    assert start["fair_tat_target_law"] == pytest.approx((w / w.sum()).tolist())
    assert method.example_eps(LABELS, ctx).tolist() == pytest.approx(
        [0.45, 0.45, 0.45, 0.3, 0.3, 0.15])
    # random targets keep the eps calibration; adaptive_eps off keeps eps and uniform targets
    method.random_target = True
    assert method.law(ctx).tolist() == pytest.approx([1 / 3] * 3)
    assert torch.is_tensor(method.example_eps(LABELS, ctx))
    method.random_target, method.adaptive_eps = False, False
    assert method.example_eps(LABELS, ctx) == 0.3
    assert method.law(ctx).tolist() == pytest.approx([1 / 3] * 3)


def test_loss_is_ce_on_targeted_examples_at_the_class_eps(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    method = FairTat(calibrate_from=1)
    method.load_state_dict({"share": torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64),
                            "cfps": torch.tensor([2 / 3, 1 / 3, 0.0], dtype=torch.float64)})
    ctx = _ctx()
    ctx.epoch = 2
    x, x_adv = torch.rand(6, 1, 2, 2), torch.rand(6, 1, 2, 2)
    seen = {}

    def fake_attack(model, x, labels, **kw):
        seen.update(kw, labels=labels)
        return type("R", (), {"x_adv": x_adv})()

    monkeypatch.setattr(ctx, "attack", fake_attack)
    method.on_epoch_start(model, ctx)
    loss = method.loss(model, x, LABELS, ctx)
    assert torch.allclose(loss, F.cross_entropy(model(x_adv), LABELS))
    assert seen["alpha"] == -0.1 and seen["loss"] == "ce" and seen["start"] == "uniform"
    assert not bool((seen["labels"] == LABELS).any())
    assert seen["eps"].tolist() == pytest.approx([0.45, 0.45, 0.45, 0.3, 0.3, 0.15])
    assert method._seen == 6  # the adversarial logits were counted


def test_untargeted_option_attacks_the_label():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    method, ctx, calls = FairTat(untargeted=True), _ctx(), []
    ctx.attack = lambda m, x, labels, **kw: calls.append((labels, kw)) or \
        type("R", (), {"x_adv": x})()
    method.on_epoch_start(model, ctx)
    method.loss(model, torch.rand(6, 1, 2, 2), LABELS, ctx)
    labels, kw = calls[0]
    assert torch.equal(labels, LABELS) and "alpha" not in kw


def test_averages_and_state_through_a_weights_only_checkpoint():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    method = FairTat(keep="fawa", threshold=0.2, decay=0.85)
    ctx = _ctx(worst=[0.1, 0.3, 0.4])
    first = None
    for epoch in range(3):
        ctx.epoch = epoch
        method.on_epoch_start(model, ctx)
        method._tp, method._fp, method._seen = *error_counts(LOGITS, LABELS, 3), 6.0
        log = method.on_epoch_end(model, ctx)
        if epoch == 0:  # 0.1 < 0.2: no average yet, the trained model is kept
            assert method.kept_weights(model) is None and log["fair_tat_average_updates"] == 0
        if epoch == 1:
            first = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            model[1].weight.add_(1.0)
    expected = 0.85 * first["1.weight"] + 0.15 * (first["1.weight"] + 1.0)
    assert torch.allclose(method.kept_weights(model)["1.weight"], expected)
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    fresh = FairTat()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh._cfps, method._cfps) and fresh._average_updates == 2
    ema = FairTat(keep="ema")
    ema.on_epoch_start(model, ctx)
    ema.on_epoch_end(model, ctx)  # every epoch updates, no validation needed
    assert ema.state_dict()["average_updates"] == 1


def test_an_epoch_without_errors_gives_uniform_targets():
    method, ctx = FairTat(), _ctx()
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    method.on_epoch_start(model, ctx)
    right = F.one_hot(LABELS, 3).float() * 5
    method._tp, method._fp, method._seen = *error_counts(right, LABELS, 3), 6.0
    method.on_epoch_end(model, ctx)
    ctx.epoch = 1
    assert method.law(ctx).tolist() == pytest.approx([1 / 3] * 3)
