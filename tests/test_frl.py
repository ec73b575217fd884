"""FRL: multiplier math against hand-computed values, variant switches, and exact resume."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from torch import Tensor, nn

from benchmark.catalog import make_method
from benchmark.common.errors import UserError
from benchmark.core.attacks import PassCounter, pgd
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.method import TrainContext
from benchmark.core.protocol import Protocol
from methods._frl_math import (
    a1_at,
    class_weights,
    project,
    radius_multipliers,
    update_multipliers,
    violations,
    weighted_trades_loss,
)
from methods.frl import FRL, FrlRM, FrlRW, FrlRWRM, class_errors

CPU = torch.device("cpu")
D = torch.float64


def t(values: list[float]) -> Tensor:
    return torch.tensor(values, dtype=D)


# --- pure math ------------------------------------------------------------------------------
def test_violations_and_projection():
    torch.testing.assert_close(violations(t([0.1, 0.2, 0.6]), 0.1), t([-0.3, -0.2, 0.2]))
    # under the limit: only clipped at 0
    torch.testing.assert_close(project(t([0.1, -0.2, 0.1]), 0.5), t([0.1, 0.0, 0.1]))
    # over the limit after clipping: rescaled to sum exactly lim
    out = project(t([-0.1, 0.2, 0.5]), 0.5)
    torch.testing.assert_close(out, t([0.0, 0.2 / 0.7 * 0.5, 0.5 / 0.7 * 0.5]))
    assert out.sum().item() == pytest.approx(0.5)


def test_multiplier_update_by_hand():
    g_nat = violations(t([0.1, 0.2, 0.6]), 0.1)    # [-0.3, -0.2, 0.2]
    g_bndy = violations(t([0.3, 0.3, 0.6]), 0.1)   # [-0.2, -0.2, 0.1]
    phi = {"phi_nat": t([0.0, 0.3, 0.3]), "phi_bndy": t([0.0, 0.0, 0.0]),
           "phi_rm": t([0.0, 0.1, 0.0])}
    out = update_multipliers(phi, g_nat, g_bndy, a1=0.5, a2=1.0, lim=0.5,
                             active=("phi_nat", "phi_bndy", "phi_rm"))
    # phi_nat: [0, .3, .3] + .5 * g = [-.15, .2, .4] -> clip [0, .2, .4] (sum .6) -> rescale to .5
    torch.testing.assert_close(out["phi_nat"], t([0.0, 1 / 6, 1 / 3]))
    # phi_bndy: 2 * .5 * g_bndy = [-.2, -.2, .1] -> clip [0, 0, .1] (sum .1 <= .5)
    torch.testing.assert_close(out["phi_bndy"], t([0.0, 0.0, 0.1]))
    # phi_rm: not projected, may go negative
    torch.testing.assert_close(out["phi_rm"], t([-0.2, -0.1, 0.1]))
    # inactive multipliers do not move
    frozen = update_multipliers(phi, g_nat, g_bndy, a1=0.5, a2=1.0, lim=0.5,
                                active=("phi_nat", "phi_rm"))
    torch.testing.assert_close(frozen["phi_bndy"], phi["phi_bndy"])
    torch.testing.assert_close(frozen["phi_rm"], out["phi_rm"])


def test_class_weights_by_hand():
    w = class_weights(t([0.0, 1 / 6, 1 / 3]))
    # 1/3 + phi - 0.5 / 3
    torch.testing.assert_close(w, t([1 / 6, 1 / 3, 1 / 2]))
    assert w.sum().item() == pytest.approx(1.0)
    uniform = torch.full((4,), 0.25, dtype=D)
    torch.testing.assert_close(class_weights(torch.zeros(4, dtype=D)), uniform)
    # any projected multiplier (sum <= lim < 1) gives positive weights
    worst = class_weights(project(t([5.0, 0.0, 0.0, 0.0]), 0.5))
    assert torch.all(worst > 0)


def test_radius_multipliers_are_clamped():
    m = radius_multipliers(t([-1.0, 0.0, 0.1, 1.0]), cap=2.5)
    torch.testing.assert_close(m, t([0.98, 1.0, math.exp(0.2), 2.5]))
    assert radius_multipliers(t([5.0]), cap=3.0).item() == 3.0


def test_weighted_trades_loss_by_hand():
    clean = torch.tensor([[2.0, 0.0], [0.5, 1.0], [0.0, 0.0]], dtype=D)
    adv = torch.tensor([[1.0, 1.0], [0.0, 2.0], [1.0, -1.0]], dtype=D)
    y = torch.tensor([0, 1, 0])
    w_nat, w_bndy, beta = t([0.2, 0.8]), t([0.7, 0.3]), 1.5

    def softmax(z: list[float]) -> list[float]:
        e = [math.exp(v) for v in z]
        return [v / sum(e) for v in e]

    ce, kl = [], []
    for c, a, label in zip(clean.tolist(), adv.tolist(), y.tolist(), strict=True):
        p, q = softmax(c), softmax(a)
        ce.append(-math.log(p[label]))
        kl.append(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True)))
    wn = [w_nat[label].item() for label in y.tolist()]
    wb = [w_bndy[label].item() for label in y.tolist()]
    expected = (sum(w * v for w, v in zip(wn, ce, strict=True)) / sum(wn)
                + beta * sum(w * v for w, v in zip(wb, kl, strict=True)) / sum(wb))
    got = weighted_trades_loss(clean, adv, y, w_nat, w_bndy, beta)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_a1_halving():
    assert a1_at(0.05, 0, 40) == 0.05
    assert a1_at(0.05, 39, 40) == 0.05
    assert a1_at(0.05, 40, 40) == 0.025
    assert a1_at(0.05, 85, 40) == 0.0125
    assert a1_at(0.05, 500, 0) == 0.05


# --- estimation and the method hooks --------------------------------------------------------
def threshold_model(k: float = 4.0) -> nn.Module:
    """Two classes decided by x0 alone: class 0 iff x0 > 0.5."""
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[k, 0.0], [-k, 0.0]]))
        lin.bias.copy_(torch.tensor([-k / 2, k / 2]))
    return nn.Sequential(nn.Flatten(), lin)


def test_class_errors_by_hand():
    # class 0: robust, boundary error, natural error; class 1: robust, boundary error
    x = torch.tensor([[v, 0.5] for v in (0.9, 0.7, 0.1, 0.05, 0.35)]).reshape(-1, 1, 1, 2)
    y = torch.tensor([0, 0, 0, 1, 1])
    model = threshold_model().train()
    nat, bndy = class_errors(model, TensorLoader(x, y, 2, device=CPU), 2, eps=0.3, alpha=0.075,
                             steps=20)
    torch.testing.assert_close(nat, t([1 / 3, 0.0]))
    torch.testing.assert_close(bndy, t([1 / 3, 1 / 2]))
    assert model.training  # mode restored


C = 3


def toy_setup(epochs: int = 6) -> tuple[nn.Module, TrainContext]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, C))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(60, 1, 4, 4, generator=g)
    y = torch.arange(60) % C
    protocol = Protocol(dataset="toy", preset="toy", model="toy", val_per_class=20, epochs=epochs,
                        eps=0.3, alpha=0.1, train_steps=3)
    ctx = TrainContext(protocol=protocol, num_classes=C, device=CPU,
                       counter=PassCounter().attach(model),
                       val_loader=TensorLoader(x, y, 25, device=CPU))
    return model, ctx


def run_epochs(method: FRL, model: nn.Module, ctx: TrainContext, n: int) -> list[dict]:
    begin = method.warm_start(ctx.protocol)[1]
    logs = []
    for k in range(n):
        ctx.epoch = begin + k
        torch.manual_seed(100 + ctx.epoch)
        logs.append(method.on_epoch_start(model, ctx))
    return logs


def test_frl_rw_keeps_radius_and_frl_rm_keeps_phi_bndy():
    model, ctx = toy_setup()
    rw = run_epochs(FrlRW(tau1=0.0, tau2=0.0), model, ctx, 3)[-1]
    assert rw["eps_mult"] == [1.0] * C and rw["phi_rm"] == [0.0] * C
    assert sum(rw["phi_bndy"]) > 0 and sum(rw["phi_nat"]) > 0
    assert rw["w_bndy"] != [1 / C] * C

    rm = run_epochs(FrlRM(tau1=0.0, tau2=0.0), model, ctx, 3)[-1]
    assert rm["phi_bndy"] == [0.0] * C and rm["w_bndy"] == pytest.approx([1 / C] * C)
    assert rm["eps_mult"] != [1.0] * C and max(rm["eps_mult"]) > 1
    assert sum(rm["phi_nat"]) > 0

    rwrm = run_epochs(FrlRWRM(tau1=0.0, tau2=0.0), model, ctx, 3)[-1]
    assert sum(rwrm["phi_bndy"]) > 0 and max(rwrm["eps_mult"]) > 1
    for log in (rw, rm, rwrm):
        assert sum(log["w_nat"]) == pytest.approx(1.0) and min(log["w_nat"]) > 0
        assert min(log["eps_mult"]) >= 0.98
        assert all(0 <= e <= 1 for e in log["val_nat_err"] + log["val_bndy_err"])
        json.dumps(log)  # loggable as is


def test_estimation_counts_as_training_passes():
    model, ctx = toy_setup()
    ctx.counter.forward = ctx.counter.backward = 0
    run_epochs(FrlRWRM(), model, ctx, 1)
    n = 60  # clean forward + 20 PGD steps + adversarial forward per validation point
    assert ctx.counter.forward == n * (1 + 20 + 1) and ctx.counter.backward == n * 20


def test_state_survives_state_dict_bit_for_bit():
    model, ctx = toy_setup()
    method = FrlRWRM(tau1=0.0, tau2=0.0, a1=0.3, a2=0.7)
    run_epochs(method, model, ctx, 2)
    state = method.state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    loaded = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    resumed = FrlRWRM(tau1=0.0, tau2=0.0, a1=0.3, a2=0.7)
    resumed.load_state_dict(loaded)
    for key, value in state.items():
        assert torch.equal(resumed.state_dict()[key], value) and value.dtype == torch.float64
    assert any(v.abs().sum() > 0 for v in state.values())
    # the next epoch is identical for the original and the resumed method
    ctx.epoch = 7
    torch.manual_seed(7)
    a = method.on_epoch_start(model, ctx)
    torch.manual_seed(7)
    b = resumed.on_epoch_start(model, ctx)
    assert a == b


def test_loss_uses_per_class_radius_and_weights():
    model, ctx = toy_setup()
    method = FrlRWRM(tau1=0.0, tau2=0.0, a2=2.0)
    run_epochs(method, model, ctx, 2)
    s = method.state_dict()
    assert not torch.allclose(s["eps_mult"], torch.ones(C, dtype=D))
    x, y = next(iter(ctx.val_loader))
    model.train()
    torch.manual_seed(5)
    loss = method.loss(model, x, y, ctx)
    torch.manual_seed(5)
    eps = ctx.eps * s["eps_mult"].float()[y]
    x_adv = pgd(model, x, y, eps=eps, alpha=eps.max() / 4, steps=ctx.steps, loss="kl",
                start="trades").x_adv  # official HEAD: one step, max_i(eps_i) / 4
    dist = (x_adv - x).abs().flatten(1).max(1).values
    assert torch.all(dist <= eps + 1e-6)
    expected = weighted_trades_loss(model(x), model(x_adv), y, s["w_nat"].float(),
                                    s["w_bndy"].float(), 1.5)
    torch.testing.assert_close(loss, expected)


def test_defaults_and_registration():
    protocol = Protocol(dataset="toy", preset="toy", model="toy", val_per_class=1, epochs=120)
    rw, rm, rwrm = (make_method(n, protocol) for n in ("frl_rw", "frl_rm", "frl_rwrm"))
    assert (rw.tau1, rw.tau2, rw.a1, rw.a2, rw.cap) == (0.1, 0.1, 0.05, 0.1, 2.5)
    assert (rwrm.tau1, rwrm.tau2, rwrm.a1, rwrm.a2, rwrm.cap) == (0.07, 0.07, 0.05, 0.2, 3.0)
    assert (rm.tau1, rm.a2, rm.cap) == (0.1, 0.1, 2.5)
    assert all(m.lim == 0.5 and m.beta == 1.5 and m.a1_halve_every == 40 for m in (rw, rm, rwrm))
    assert rwrm.warm_start(protocol) == ("trades", 80)
    assert make_method("frl_rm", protocol, {"begin_epoch": "70"}).warm_start(protocol) == \
        ("trades", 70)
    assert not (FrlRWRM.core or FrlRW.core or FrlRM.core)  # one word away: METHODS="core frl_*"
    assert all(type(m).finetunes for m in (rw, rm, rwrm))
    with pytest.raises(UserError):
        make_method("frl_rw", protocol, {"lim": "1.5"})


def test_step_size_rules():
    from methods.frl import step_sizes

    eps = torch.tensor([0.1, 0.2, 0.4])
    m = eps / 0.1
    assert torch.allclose(torch.as_tensor(step_sizes(eps, m, 0.25, "batch_max", 0.01)),
                          torch.tensor(0.1))                    # official: max(eps_i) / 4
    assert torch.allclose(step_sizes(eps, m, 0.25, "per_example", 0.01),
                          torch.tensor([0.025, 0.05, 0.1]))     # eps_i / 4
    assert torch.allclose(step_sizes(eps, m, None, "batch_max", 0.01),
                          torch.tensor([0.01, 0.02, 0.04]))     # protocol alpha * m(i)
