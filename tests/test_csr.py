"""CSR (methods/csr.py): the spectral weights G from a confusion matrix by hand and against the
official numbers, the shrunk-logit error counting, the loss by hand and against the official
formula, the once-per-epoch confusion pass, the BatchNorm forwards, and the fine-tune's length."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import methods.csr as csr
from benchmark.core.attacks import PassCounter, PGDResult
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods.csr import (
    TradesCsr,
    confusion_update,
    csr_loss,
    robust_confusion,
    shrunk_predictions,
    spectral_weights,
)

CPU = torch.device("cpu")
F64 = torch.float64


def _ctx(x: Tensor, y: Tensor, num_classes: int, **protocol) -> TrainContext:
    proto = Protocol(dataset="toy", preset="toy", model="toy", **protocol)
    return TrainContext(protocol=proto, num_classes=num_classes, device=CPU,
                        counter=PassCounter(), val_loader=TensorLoader(x, y, 2, device=CPU))


# --- G = u1 v1^T, min-max scaled to [0.01, 2.01] --------------------------------------------
def test_weights_of_a_rank_one_matrix_by_hand():
    # M = a b^T, a = (0, 1, 2), b = (3, 0, 0): u1 = a / |a|, v1 = b / |b|, so u1 v1^T has
    # 1/sqrt5 at [1, 0], 2/sqrt5 at [2, 0], 0 elsewhere: scaled 1.01, 2.01, 0.01
    m = torch.outer(torch.tensor([0.0, 1, 2]), torch.tensor([3.0, 0, 0]))
    expected = torch.full((3, 3), 0.01, dtype=F64)
    expected[1, 0], expected[2, 0] = 1.01, 2.01
    assert torch.allclose(spectral_weights(m), expected, atol=1e-12)


def test_weights_of_a_symmetric_matrix_by_hand():
    # [[2, 1], [1, 0]]: top eigenpair 1 + sqrt2, v = (1, sqrt2 - 1) / n = u; u v^T is t^0, t^1,
    # t^1, t^2 over n^2 (t = sqrt2 - 1): min t^2 -> 0.01, max 1 -> 2.01, and the off-diagonal
    # 2 (t - t^2) / (1 - t^2) + 0.01 = 2 t / (1 + t) + 0.01 = 2 - sqrt2 + 0.01
    g = spectral_weights(torch.tensor([[2.0, 1.0], [1.0, 0.0]]))
    off = 2 - math.sqrt(2) + 0.01
    assert torch.allclose(g, torch.tensor([[2.01, off], [off, 0.01]], dtype=F64), atol=1e-12)


def test_only_the_top_singular_pair_counts():
    # singular pairs (5, e0, e1) and (1, e1, e0): G = e0 e1^T scaled, whatever the row sums
    g = spectral_weights(torch.tensor([[0.0, 5, 0], [1, 0, 0], [0, 0, 0]]))
    expected = torch.full((3, 3), 0.01, dtype=F64)
    expected[0, 1] = 2.01
    assert torch.allclose(g, expected, atol=1e-12)


def test_weights_ignore_the_matrix_scale_and_a_constant_g_is_the_midpoint():
    m = torch.tensor([[0.0, 7, 1], [3, 0, 9], [1, 4, 0]])
    assert torch.allclose(spectral_weights(m), spectral_weights(m * 37), atol=1e-12)
    assert torch.equal(spectral_weights(torch.zeros(3, 3)), torch.full((3, 3), 1.01, dtype=F64))
    assert torch.allclose(spectral_weights(torch.ones(4, 4) - torch.eye(4)),
                          torch.full((4, 4), 1.01, dtype=F64))


def test_weights_match_the_official_lines():
    # train_fair.py l.146-148 (torch.svd, outer, scaling; float32) executed on this matrix in a
    # scratch script (Alexkael/CONFUSIONAL-SPECTRAL-REGULARIZATION@92856c7)
    m = torch.tensor([[0.0, 7, 1, 2], [3, 0, 9, 0], [1, 4, 0, 5], [6, 0, 2, 0]])
    official = torch.tensor([[0.34915301, 0.14398918, 0.62907666, 0.04095991],
                             [1.20285881, 0.61128265, 2.00999999, 0.31420463],
                             [0.25242412, 0.09104262, 0.47261155, 0.01000000],
                             [0.58332038, 0.27216545, 1.00785720, 0.11590960]], dtype=F64)
    assert torch.allclose(spectral_weights(m), official, atol=2e-6)


# --- counting errors with the true logit shrunk ---------------------------------------------
LOGITS = torch.tensor([[2.0, 1.9, 0.0], [-1.0, -0.95, -3.0], [0.5, 0.2, 3.0], [1.0, 3.0, 2.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_shrunk_predictions_and_counts_by_hand():
    # 0: 2.0 -> 1.8 < 1.9, now wrong (pred 1); 1: -1.0 -> -0.9 > -0.95, now right;
    # 2: wrong either way (pred 2); 3: 3.0 -> 2.7 > 2.0, right. Official counts (scratch run of
    # train_fair.py l.135-144): M[1, 0] = M[2, 1] = 1
    pred = shrunk_predictions(LOGITS, LABELS, 0.1)
    assert pred.tolist() == [1, 0, 2, 1]
    counts = confusion_update(torch.zeros(3, 3, dtype=F64), pred, LABELS)
    expected = torch.zeros(3, 3, dtype=F64)
    expected[1, 0] = expected[2, 1] = 1
    assert torch.equal(counts, expected)
    # gamma 0: plain argmax errors (official gamma_true=False)
    assert shrunk_predictions(LOGITS, LABELS, 0.0).tolist() == [0, 1, 2, 1]
    confusion_update(counts, shrunk_predictions(LOGITS, LABELS, 0.0), LABELS)
    assert counts[1, 0] == 2 and counts[2, 1] == 2 and counts.sum() == 4


def test_the_confusion_pass_attacks_in_eval_mode_and_counts(monkeypatch):
    calls = []

    def fake_pgd(model: nn.Module, x: Tensor, y: Tensor, **kwargs) -> PGDResult:
        calls.append((model.training, kwargs))
        return PGDResult(x)

    monkeypatch.setattr(csr, "pgd", fake_pgd)
    model = nn.Flatten().train()  # logits = the "images"
    x = LOGITS.reshape(4, 1, 1, 3)
    loader = TensorLoader(x, LABELS, 3, device=CPU)
    counts = robust_confusion(model, loader, 3, eps=0.1, alpha=0.02, steps=7, gamma=0.1)
    assert counts[1, 0] == 1 and counts[2, 1] == 1 and counts.sum() == 2
    assert model.training  # restored
    assert [c[0] for c in calls] == [False, False]
    assert calls[0][1] == {"eps": 0.1, "alpha": 0.02, "steps": 7, "loss": "ce",
                           "start": "uniform"}


# --- the loss -------------------------------------------------------------------------------
def _log_softmax(row: list[float]) -> list[float]:
    top = math.log(sum(math.exp(v) for v in row))
    return [v - top for v in row]


def test_loss_by_hand_and_the_official_formula():
    clean = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    adv = torch.tensor([[0.2, 0.9, -0.5], [0.0, 1.0, 0.3]])
    y = torch.tensor([0, 2])
    g_mat = torch.tensor([[0.01, 2.01, 1.0], [0.5, 0.01, 1.5], [0.2, 0.3, 0.01]])
    ce = kl = reg = 0.0
    for i, (c_row, a_row) in enumerate(zip(clean.tolist(), adv.tolist(), strict=True)):
        lp, lq, yi = _log_softmax(c_row), _log_softmax(a_row), int(y[i])
        ce -= lp[yi]
        kl += sum(math.exp(p) * (p - q) for p, q in zip(lp, lq, strict=True))
        g = float(g_mat[max(range(3), key=lambda j: a_row[j]), yi])  # both argmax 1: 0.5, 1.5
        reg += g * (math.log(g) - lq[yi])
    hand = 0.7 * ce / 2 + 6.0 * kl / 2 + 0.3 * reg / 2
    got = csr_loss(clean, adv, y, g_mat, beta=6.0, clean_weight=0.7, reg_weight=0.3)
    assert float(got) == pytest.approx(hand, rel=1e-6)
    # trades_fair.py l.80-98's KLDivLoss(sum) formula on the same logits (scratch run)
    assert float(got) == pytest.approx(2.314579725265503, rel=1e-6)


def test_the_regulariser_is_a_g_weighted_adversarial_ce():
    adv = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    clean = torch.zeros(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    g_mat = torch.rand(4, 4, generator=torch.Generator().manual_seed(1)) * 2 + 0.01
    csr_loss(clean, adv, y, g_mat, beta=0.0, clean_weight=0.0, reg_weight=1.0).backward()
    g = g_mat[adv.detach().argmax(1), y]
    expected = g[:, None] * (adv.detach().softmax(1) - nn.functional.one_hot(y, 4)) / 5
    assert torch.allclose(adv.grad, expected, atol=1e-6)


def test_bn_forwards_repeat_clean_and_adversarial_without_gradient():
    torch.manual_seed(0)
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    losses, tracked, forwards = [], [], []
    for repeat in (False, True):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.BatchNorm1d(5),
                              nn.Linear(5, 3)).train()
        ctx = _ctx(x, y, 3, eps=0.1, alpha=0.05, train_steps=2)
        ctx.counter.attach(model)
        method = TradesCsr(bn_forwards=repeat)
        method.load_state_dict({"counts": torch.zeros(3, 3, dtype=F64),
                                "weights": spectral_weights(torch.eye(3).flip(0) * 4)})
        torch.manual_seed(2)
        losses.append(float(method.loss(model, x, y, ctx).detach()))
        tracked.append(int(model[2].num_batches_tracked))
        forwards.append(ctx.counter.forward)
    assert losses[0] == losses[1]
    assert tracked == [2, 4]  # official: clean, adversarial, clean, adversarial
    assert forwards[1] - forwards[0] == 2 * len(y)


# --- the method in its epoch ----------------------------------------------------------------
def test_epoch_start_sets_g_and_the_state_round_trips():
    torch.manual_seed(0)
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).train()
    ctx = _ctx(x, y, 3, eps=0.3, alpha=0.1, train_steps=2)
    method = TradesCsr()
    with pytest.raises(RuntimeError, match="on_epoch_start"):
        method.loss(model, x, y, ctx)
    logged = method.on_epoch_start(model, ctx)
    state = method.state_dict()
    assert torch.equal(state["weights"], spectral_weights(state["counts"]))
    assert logged["csr_errors"] == float(state["counts"].sum())
    assert logged["csr_weights"] == state["weights"].tolist()
    assert float(state["weights"].min()) >= 0.01 - 1e-12
    assert float(state["weights"].max()) <= 2.01 + 1e-12
    fresh = TradesCsr()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.state_dict()["weights"], state["weights"])
    assert torch.isfinite(method.loss(model, x, y, ctx))
    assert method.on_epoch_end(model, ctx)["csr_mean_weight"] > 0


def test_fine_tunes_two_epochs_from_the_finished_trades_run_at_the_finetune_lr():
    protocol = Protocol(dataset="toy", preset="toy", model="toy", epochs=10, lr=0.1,
                        finetune_lr=0.001)
    method = TradesCsr()
    assert method.warm_start(protocol) == ("trades", 10)
    assert method.end_epoch(protocol) == 12
    assert [method.lr_at(e, protocol) for e in (10, 11)] == [0.001, 0.001]
