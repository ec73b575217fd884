"""Model shapes (PreAct ResNet-18, WRN-34-10, small CNN on 32x32) and the speed paths (bf16
autocast, channels_last) agreeing with float32 on CPU. No timing thresholds: speed is measured
as ratios by `make perf`, never asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from untrained import untrained

from benchmark.core.models import build_model
from benchmark.runs.job import Job
from benchmark.runs.run import run_job


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("classes", [10, 100])
def test_preact_resnet18_shape(classes: int) -> None:
    model = build_model("preact_resnet18", classes, (3, 32, 32)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, classes)
    assert 11.0e6 < _params(model) < 11.3e6


def test_wrn_34_10_shape() -> None:
    torch.manual_seed(0)
    model = build_model("wrn_34_10", 10, (3, 32, 32)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert 46.0e6 < _params(model) < 46.3e6


def test_small_cnn_on_rgb32() -> None:
    """The smoke presets of the 32x32 datasets use small_cnn on 3x32x32 inputs."""
    model = build_model("small_cnn", 10, (3, 32, 32)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_small_cnn_starts_as_trades_small_cnn() -> None:
    """He-normal convolutions with zero biases, a zero output layer, default hidden linears (so
    every input gets the same logits until the first update)."""
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, (1, 28, 28)).requires_grad_(False)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 4 and len(linears) == 3
    for conv in convs:
        fan_in = conv.weight[0].numel()
        assert float(conv.weight.std()) == pytest.approx((2 / fan_in) ** 0.5, rel=0.1)
        assert not conv.bias.any()
    for hidden in linears[:2]:  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = hidden.weight.shape[1] ** -0.5
        assert float(hidden.weight.abs().max()) <= bound and float(hidden.weight.std()) > 0
    assert not linears[2].weight.any() and not linears[2].bias.any()
    with torch.no_grad():
        assert not model.eval()(torch.rand(3, 1, 28, 28)).any()


def _fixed(name: str, shape: tuple[int, int, int]) -> tuple[torch.nn.Module, torch.Tensor]:
    model = untrained(name, shape)
    return model, torch.rand(64, *shape)


@pytest.mark.parametrize("name,shape", [("preact_resnet18", (3, 32, 32)),
                                        ("small_cnn", (1, 28, 28))])
def test_bf16_autocast_agrees_with_float32(name: str, shape: tuple[int, int, int]) -> None:
    model, x = _fixed(name, shape)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16
    low = low.float()
    assert (low.argmax(1) == ref.argmax(1)).float().mean() >= 0.9
    assert (low - ref).abs().max() <= 0.05 * ref.abs().max()


@pytest.mark.parametrize("name,shape", [("preact_resnet18", (3, 32, 32)),
                                        ("small_cnn", (1, 28, 28))])
def test_channels_last_agrees_with_float32(name: str, shape: tuple[int, int, int]) -> None:
    model, x = _fixed(name, shape)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(out.argmax(1), ref.argmax(1))
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_bf16_autocast_gradients_agree() -> None:
    """Training with amp backpropagates through autocast: input gradients (what PGD uses) keep
    their sign on most pixels."""
    model, x = _fixed("small_cnn", (1, 28, 28))
    y = torch.arange(64) % 10
    grads = []
    for amp in (False, True):
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(xi).float(), y)
        grads.append(torch.autograd.grad(loss, xi)[0])
    nonzero = grads[0].abs() > 1e-3 * grads[0].abs().max()
    agree = (grads[0].sign() == grads[1].sign())[nonzero].float().mean()
    assert agree >= 0.9


@pytest.mark.slow
def test_trainer_speed_paths_run(tmp_path: Path) -> None:
    """The trainer's amp + channels_last paths train, checkpoint and evaluate end to end."""
    record = run_job(Job("fmnist", "smoke", "pgd_at", 0, results=str(tmp_path),
                         overrides={"amp": True, "channels_last": True}, device="cpu",
                         show_progress=False).resolve())
    assert record["spec"]["protocol"]["amp"] and record["spec"]["protocol"]["channels_last"]
    clean = record["eval"]["best"]["clean"]
    assert 0.0 <= clean["avg"] <= 1.0 and len(clean["per_class"]) == 10
