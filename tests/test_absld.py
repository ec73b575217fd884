"""ABSLD (methods/absld.py): the temperature update by hand (max-normalisation, clamp, the rate
decaying with the lr) and as the official code printed it, the official in-place soft labels,
the loss by hand, the attack against the shared primitive, the epoch's bookkeeping and the
state through a weights_only checkpoint."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.common.errors import UserError
from benchmark.core.attacks import PassCounter, pgd
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from benchmark.planning.plan import plan
from methods import absld as absld_module
from methods.absld import Absld, attack, class_sums, soft_kl, soft_labels, update_temperature

CPU = torch.device("cpu")


def _near(a: Tensor, b: list[float]) -> bool:
    return torch.allclose(a.double(), torch.tensor(b, dtype=torch.float64), atol=1e-6)


def test_temperature_update_by_hand_and_as_the_official_code_printed_it():
    t = torch.tensor([0.55, 1.0, 2.0, 4.98])
    loss = torch.tensor([10.0, 4.0, 7.0, 3.0])  # mean 6, gaps 4 -2 1 -3, max |gap| 4
    # 0.55 - 0.1 = 0.45 -> 0.5 (clamp), 1 + 0.05, 2 - 0.025, 4.98 + 0.075 = 5.055 -> 5 (clamp)
    assert _near(update_temperature(t, loss, 0.1, 0.5, 5.0), [0.5, 1.05, 1.975, 5.0])
    # the official update (resnet18_absld_cifar10.py l.173-189) at epoch 1 printed the same, and
    # at epoch 215, where the rate drops to 0.01 with the lr first:
    assert _near(update_temperature(t, loss, 0.01, 0.5, 5.0), [0.54, 1.005, 1.9975, 4.9875])
    nat = torch.tensor([5.0, 5.0, 6.0, 8.0])  # gaps -1 -1 0 2: scaled by 2, not by their sum
    assert _near(update_temperature(torch.ones(4), nat, 0.1, 0.5, 5.0), [1.05, 1.05, 1.0, 0.9])
    # the scale of the losses does not matter (sums or means on a balanced set: the same T)
    assert torch.equal(update_temperature(t, 3 * loss, 0.1, 0.5, 5.0),
                       update_temperature(t, loss, 0.1, 0.5, 5.0))
    # equal losses: no gap to follow (the official division gives NaN), T only clamped
    assert _near(update_temperature(t, torch.full((4,), 2.0), 0.1, 0.5, 5.0),
                 [0.55, 1.0, 2.0, 4.98])


def test_official_soft_labels_divide_twice_as_the_in_place_views_do():
    z = torch.tensor([[2.0, -1.0, 0.5], [1.0, 3.0, -2.0]])
    y = torch.tensor([1, 2])
    t_adv, t_nat = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([1.0, 4.0, 0.8])
    # the official lines 95-100 on these tensors: two detached views share z's storage
    logits = z.clone()
    new_adv, new_nat = logits.detach(), logits.detach()
    assert new_adv.data_ptr() == new_nat.data_ptr()
    for i in range(len(y)):
        new_adv[i] = new_adv[i] / t_adv[y[i]]
        new_nat[i] = new_nat[i] / t_nat[y[i]]
    # printed by the official code: z / (T_adv T_nat) = z / 8 and z / 0.4 in both views
    assert new_adv.tolist() == new_nat.tolist() == [[0.25, -0.125, 0.0625], [2.5, 7.5, -5.0]]
    soft_adv, soft_nat = soft_labels(z, y, t_adv, t_nat, "official")
    assert torch.equal(soft_adv, F.softmax(new_adv, 1)) and torch.equal(soft_nat, soft_adv)
    # "separate": each term its own temperature, z / 2 and z / 0.5; z / 4 and z / 0.8
    soft_adv, soft_nat = soft_labels(z, y, t_adv, t_nat, "separate")
    assert torch.allclose(soft_adv, F.softmax(z / torch.tensor([[2.0], [0.5]]), 1))
    assert torch.allclose(soft_nat, F.softmax(z / torch.tensor([[4.0], [0.8]]), 1))


def test_soft_kl_is_the_official_elementwise_mean_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax 1/4, 3/4
    soft = torch.tensor([[0.5, 0.5]])
    e = math.log(0.5 + 1e-5)
    hand = (0.5 * (e - math.log(0.25)) + 0.5 * (e - math.log(0.75))) / 2  # over B x C = 2
    assert float(soft_kl(logits, soft)) == pytest.approx(hand, rel=1e-6)


def _ctx(epoch: int = 0) -> tuple[TrainContext, nn.Module, Tensor, Tensor]:
    torch.manual_seed(0)
    protocol = Protocol(dataset="toy", preset="toy", model="toy", eps=0.3, alpha=0.1,
                        train_steps=2, epochs=6, lr=0.1, lr_milestones=((3, 0.1), (5, 0.01)))
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 0, 1, 1, 2, 2])
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval().requires_grad_(False)
    ctx = TrainContext(protocol=protocol, num_classes=3, device=CPU, counter=PassCounter(),
                       val_loader=TensorLoader(x, y, 6, device=CPU), epoch=epoch,
                       teacher=teacher)
    return ctx, nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), x, y


def test_loss_by_hand_and_the_epochs_bookkeeping(monkeypatch):
    ctx, model, x, y = _ctx(epoch=2)
    x_adv = torch.rand(6, 1, 2, 2)
    monkeypatch.setattr(absld_module, "attack", lambda *a, **k: x_adv)
    method = Absld(soft_labels="separate")
    t_adv, t_nat = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([4.0, 1.0, 0.8])
    method.load_state_dict({"t_adv": t_adv, "t_nat": t_nat})
    assert method.on_epoch_start(model, ctx) == {"absld_t_adv": t_adv.tolist(),
                                                 "absld_t_nat": t_nat.tolist()}
    loss = method.loss(model, x, y, ctx)
    z = ctx.teacher(x)
    q_adv, q_nat = F.softmax(z / t_adv[y][:, None], 1), F.softmax(z / t_nat[y][:, None], 1)
    adv, nat = model(x_adv), model(x)
    kl = [(q * (torch.log(q + 1e-5) - torch.log(F.softmax(s, 1)))).mean()
          for q, s in ((q_adv, adv), (q_nat, nat))]
    assert torch.allclose(loss, 5 / 6 * kl[0] + 1 / 6 * kl[1])
    # the epoch's end: class sums of CE, then T with the rate of epoch 3's lr (x0.1)
    ce_adv = F.cross_entropy(adv, y, reduction="none").detach()
    ce_nat = F.cross_entropy(nat, y, reduction="none").detach()
    sums_adv = torch.stack([ce_adv[0] + ce_adv[1], ce_adv[2] + ce_adv[3], ce_adv[4] + ce_adv[5]])
    log = method.on_epoch_end(model, ctx)
    assert log["absld_temp_rate"] == pytest.approx(0.01)
    assert log["absld_class_ce_adv"] == pytest.approx(sums_adv.tolist(), rel=1e-6)
    state = method.state_dict()
    assert torch.allclose(state["t_adv"], update_temperature(t_adv, sums_adv, 0.01, 0.5, 5.0))
    sums_nat = class_sums(ce_nat, y, 3)
    assert torch.allclose(state["t_nat"], update_temperature(t_nat, sums_nat, 0.01, 0.5, 5.0))


def test_attack_is_the_shared_trades_attack_when_the_soft_labels_are_the_models_own():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Flatten(), nn.Linear(4 * 36, 3)).train()
    x, y = torch.rand(8, 1, 6, 6), torch.randint(0, 3, (8,))
    with torch.no_grad():
        own = F.softmax(net.eval()(x), 1)
    net.train()
    torch.manual_seed(1)
    ours = attack(net, x, own, 0.3, 0.05, 5)
    torch.manual_seed(1)
    shared = pgd(net, x, y, eps=0.3, alpha=0.05, steps=5, loss="kl", start="trades").x_adv
    assert torch.equal(ours, shared) and net.training
    assert float((ours - x).abs().max()) <= 0.3 + 1e-6 and 0 <= float(ours.min())
    # against a teacher's soft labels it raises the KL to them
    soft = F.softmax(torch.randn(8, 3) * 3, 1)
    torch.manual_seed(1)
    x_adv = attack(net, x, soft, 0.3, 0.05, 5)
    with torch.no_grad():
        net.eval()
        kl = [F.kl_div(F.log_softmax(net(v), 1), soft, reduction="sum") for v in (x, x_adv)]
    assert float(kl[1]) > float(kl[0])


def test_state_survives_a_weights_only_checkpoint_and_a_smoke_step():
    ctx, model, x, y = _ctx()
    method = Absld()
    method.on_epoch_start(model, ctx)
    method.loss(model, x, y, ctx).backward()
    method.on_epoch_end(model, ctx)
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    fresh = Absld()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in method.state_dict().items())
    assert not torch.equal(method.state_dict()["t_adv"], torch.ones(3))


def test_settings_and_the_teacher_plan():
    with pytest.raises(UserError, match="temp_min"):
        Absld(temp_min=3.0, temp_max=2.0).validate(_ctx()[0].protocol)
    waves = plan(dataset="fmnist", preset="smoke", methods=["absld"], seeds=[0])
    assert [sorted(r.label for r in wave) for wave in waves] == [["trades[teacher]"], ["absld"]]
    assert waves[0][0].protocol.model == "small_cnn_wide"
