"""CFA (methods/cfa.py): class-wise eps and TRADES weight against hand computations, the FAWA
gate and average, and the averaged weights being what the run keeps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmark.common.fileio import load_state
from benchmark.core.attacks import PassCounter
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from benchmark.core.run_paths import RunPaths
from benchmark.planning.local import run_local
from benchmark.planning.plan import plan
from benchmark.runs.record import load_model_file
from methods.cfa import (
    PgdAtCfa,
    TradesCfa,
    class_eps,
    class_trades_weight,
    fawa_passes,
    fawa_update,
)

CPU = torch.device("cpu")


def test_class_eps_by_hand():
    t = torch.tensor([0.2, 0.6, 0.0])
    # (0.5 + t) * 0.1
    assert torch.allclose(class_eps(t, 0.5, 0.1), torch.tensor([0.07, 0.11, 0.05]))


def test_class_trades_weight_by_hand():
    t = torch.tensor([0.2, 0.6])
    # beta_k = (0.5 + t) * 6 = 4.2, 6.6; b = beta_k / (1 + beta_k)
    got = class_trades_weight(t, 0.5, 6.0, 2)
    assert torch.allclose(got, torch.tensor([4.2 / 5.2, 6.6 / 7.6], dtype=torch.float64))
    # before calibration every class has beta / (1 + beta)
    assert torch.allclose(class_trades_weight(None, 0.5, 6.0, 3),
                          torch.full((3,), 6 / 7, dtype=torch.float64))


def test_fawa_gate_passes_at_equality():
    assert fawa_passes(0.24, 0.24) and fawa_passes(0.3, 0.24)
    assert not fawa_passes(0.2399, 0.24)


def test_fawa_update_copies_then_averages_floats_and_copies_counters():
    first = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    avg = fawa_update(None, first, 0.88)
    assert torch.equal(avg["w"], first["w"]) and avg["w"] is not first["w"]
    second = {"w": torch.tensor([2.0, 0.0]), "n": torch.tensor(7)}
    avg = fawa_update(avg, second, 0.88)
    assert torch.allclose(avg["w"], torch.tensor([0.88 * 1 + 0.12 * 2, 0.88 * 2 + 0.12 * 0]))
    assert avg["n"].dtype == torch.int64 and int(avg["n"]) == 7


def _ctx(worst: list[float], epochs: int = 4) -> TrainContext:
    protocol = Protocol(dataset="toy", preset="toy", model="toy", epochs=epochs, eps=0.3,
                        alpha=0.1, train_steps=2)
    x = torch.rand(6, 1, 2, 2)
    y = torch.arange(6) % 3
    answers = iter(worst)
    return TrainContext(protocol=protocol, num_classes=3, device=CPU, counter=PassCounter(),
                        val_loader=TensorLoader(x, y, 6, device=CPU),
                        validator=lambda m: {"robust_worst": next(answers)})


def test_training_robust_accuracy_sets_next_epochs_eps_and_fawa_follows_the_gate():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    method = PgdAtCfa(lambda_eps=0.5, threshold=0.24, decay=0.88, calibrate_from=1)
    ctx = _ctx([0.1, 0.3, 0.5])
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    # epoch 0: nothing calibrated, eps is the protocol's
    ctx.epoch = 0
    method.on_epoch_start(model, ctx)
    assert method.example_eps(y, ctx) == 0.3
    # the step's adversarial logits: class 0 both right, class 1 one right, class 2 none
    logits = torch.tensor([[5.0, 0, 0], [5, 0, 0], [0, 5, 0], [5, 0, 0], [5, 0, 0], [0, 5, 0]])
    method.count(logits, y)
    log = method.on_epoch_end(model, ctx)  # gate: worst 0.1 < 0.24, no average
    assert log["cfa_train_robust"] == [1.0, 0.5, 0.0]
    assert log["cfa_fawa_passed"] == 0 and method.kept_weights(model) is None
    # epoch 1: eps_k = (0.5 + t_k) * 0.3 per example
    ctx.epoch = 1
    start = method.on_epoch_start(model, ctx)
    assert start["cfa_eps"] == pytest.approx([0.45, 0.3, 0.15])
    assert torch.allclose(method.example_eps(y, ctx).double(),
                          torch.tensor([0.45, 0.45, 0.3, 0.3, 0.15, 0.15], dtype=torch.float64))
    method.count(logits, y)
    first = {k: v.clone() for k, v in model.state_dict().items()}
    method.on_epoch_end(model, ctx)  # worst 0.3 passes: the average is a copy
    assert all(torch.equal(method.kept_weights(model)[k], first[k]) for k in first)
    with torch.no_grad():
        model[1].weight.add_(1.0)
    method.on_epoch_start(model, ctx)
    method.count(logits, y)
    method.on_epoch_end(model, ctx)  # worst 0.5 passes: EMA with decay 0.88
    expected = 0.88 * first["1.weight"] + 0.12 * model[1].weight
    assert torch.allclose(method.kept_weights(model)["1.weight"], expected)
    assert method.state_dict()["fawa_updates"] == 2


def test_trades_cfa_loss_is_the_class_weighted_trades_mix(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    method = TradesCfa(calibrate_from=1)
    method.load_state_dict({"train_robust": torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)})
    ctx = _ctx([])
    ctx.epoch = 2
    x = torch.rand(6, 1, 2, 2)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    x_adv = torch.rand(6, 1, 2, 2)
    seen = {}

    def fake_attack(model, x, y, **kw):
        seen.update(kw)
        return type("R", (), {"x_adv": x_adv})()

    monkeypatch.setattr(ctx, "attack", fake_attack)
    method.on_epoch_start(model, ctx)
    loss = method.loss(model, x, y, ctx)
    clean, adv = model(x), model(x_adv)
    p = clean.softmax(1)
    kl = (p * (p.log() - adv.log_softmax(1))).sum(1)
    ce = -clean.log_softmax(1)[torch.arange(6), y]
    beta_k = (0.5 + torch.tensor([1.0, 0.5, 0.0])) * 6
    b = (beta_k / (1 + beta_k))[y]
    assert torch.allclose(loss, ((1 - b) * ce + b * kl).mean())
    assert seen["loss"] == "kl" and seen["start"] == "trades"
    assert torch.allclose(seen["eps"].double(), torch.tensor([0.45, 0.45, 0.3, 0.3, 0.15, 0.15],
                                                             dtype=torch.float64))


@pytest.mark.slow
def test_the_run_keeps_validates_and_saves_the_average(tmp_path: Path):
    """threshold 0: FAWA passes every epoch, so model_last is the EMA of the raw weights after
    each epoch (kept checkpoints), and model_best one of the averages."""
    waves = plan(dataset="fmnist", preset="smoke", methods=["pgd_at_cfa"], seeds=[0],
                 results=str(tmp_path), show_progress=False, overrides={"epochs": 3},
                 method_overrides={"pgd_at_cfa": {"threshold": 0.0}})
    waves = [[replace(job, keep_epochs=(1, 2, 3)) for job in wave] for wave in waves]
    assert run_local(waves) == []
    run = tmp_path / "fmnist/smoke/pgd_at_cfa/seed0"
    raw = [load_state(run / f"ckpt_epoch{k}.pt")["model"] for k in (1, 2, 3)]
    last = load_state(run / "model_last.pt")["model"]
    for key, value in last.items():
        if not value.is_floating_point():
            continue
        expected = raw[0][key]
        for nxt in raw[1:]:
            expected = 0.88 * expected + 0.12 * nxt[key]
        assert torch.allclose(value, expected, atol=1e-6), key
    assert any(not torch.equal(v, raw[-1][k]) for k, v in last.items())  # not the raw model
    state = load_state(run / "ckpt_last.pt")["method"]
    assert state["fawa_updates"] == 3
    # a damaged model_last.pt is rebuilt from the average the checkpoint keeps, not the raw model
    (run / "model_last.pt").write_bytes(b"damaged")
    rebuilt = load_model_file(RunPaths.of(tmp_path, "fmnist", "smoke", "pgd_at_cfa", 0),
                              "last")["model"]
    assert all(torch.equal(rebuilt[k], last[k]) for k in last)


def test_t_k_follows_the_official_cw_log_on_imbalanced_data():
    """official CW_log: t_k = C * correct_k / N; on balanced counts it is the class accuracy,
    on imbalanced ones it is (C n_k / N) * acc_k (here n = 6, 3, 1; N = 10; C = 3)."""
    from methods.cfa import class_t

    hits = torch.tensor([3.0, 3.0, 1.0], dtype=torch.float64)
    seen = torch.tensor([6.0, 3.0, 1.0], dtype=torch.float64)
    official = class_t(hits, seen, "official", None)
    assert official.tolist() == pytest.approx([0.9, 0.9, 0.3])  # 3*3/10, 3*3/10, 3*1/10
    assert official.tolist() == pytest.approx((3 * seen / 10 * hits / seen).tolist())
    assert class_t(hits, seen, "accuracy", None).tolist() == pytest.approx([0.5, 1.0, 1.0])
    balanced = torch.tensor([4.0, 4.0, 4.0], dtype=torch.float64)
    assert torch.equal(class_t(hits, balanced, "official", None),
                       class_t(hits, balanced, "accuracy", None))
    # a class unseen this epoch: "accuracy" keeps its previous value, "official" gives 0
    unseen = torch.tensor([6.0, 4.0, 0.0], dtype=torch.float64)
    previous = torch.tensor([0.2, 0.2, 0.7], dtype=torch.float64)
    assert class_t(hits * torch.tensor([1, 1, 0.0], dtype=torch.float64), unseen, "accuracy",
                   previous)[2] == 0.7
