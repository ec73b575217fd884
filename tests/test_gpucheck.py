"""`make gpu-check ARGS="--tiny --device cpu"`: every step of the GPU check runs at a tiny size
and passes (the real-data step on CIFAR-10 files in the real format); its JSON holds the numbers
and projections; a broken step fails the check and its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fake_datasets import write_cifar10

from benchmark import gpucheck
from benchmark.gpucheck import (
    MODELS,
    PRESETS,
    TINY,
    VARIANTS,
    Check,
    RobustOracle,
    evaluate_check,
    main,
    real_data_check,
)


def test_tiny_gpu_check_passes_on_cpu(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gpucheck.json"
    data = write_cifar10(tmp_path / "data", train_per_class=12)
    assert main(["--tiny", "--device", "cpu", "--data-dir", str(data), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    names = [c["name"] for c in report["checks"]]
    assert names == [f"train {m} {v}" for m in MODELS for v in VARIANTS] + [
        "trainer vs bare loop", "evaluate quick settings", "evaluate full settings",
        "kill and resume", "real cifar10"]
    assert report["passed"] and {c["status"] for c in report["checks"]} == {"passed"}
    numbers = {c["name"]: c["numbers"] for c in report["checks"]}
    assert numbers["train wrn_34_10 bf16"]["images_per_second"] > 0
    assert numbers["train preact_resnet18 compile"]["updates"] == 2  # 8 images, batch 4
    assert numbers["trainer vs bare loop"]["ratio"] > 0
    assert numbers["evaluate full settings"]["points"] == 10
    assert numbers["real cifar10"]["images"] == TINY.train_images["preact_resnet18"]
    assert set(report["projections"]) == set(PRESETS)
    assert all(p["total_hours_at_most"] > p["training_hours"] > 0
               for p in report["projections"].values())
    assert report["machine"]["device"] == "cpu" and report["tiny"] is True
    printed = capsys.readouterr().out
    assert "gpu-check passed in" in printed and "projected cifar10 full" in printed


def test_oracle_cannot_be_fooled_but_costs_real_passes() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    images, labels = torch.rand(4, 3, 2, 2), torch.tensor([0, 2, 1, 2])
    oracle = RobustOracle(net, images, labels, 3)
    x = (images + (8 / 255) * torch.randn_like(images).sign()).requires_grad_()
    logits = oracle(x)
    assert torch.equal(logits.argmax(1), labels)
    logits[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the input


def test_an_attack_that_fools_the_oracle_fails_the_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(RobustOracle, "forward", lambda self, x: self.net(x))  # any model
    check = Check("evaluate quick settings")
    with pytest.raises(RuntimeError, match="changed predictions"):
        evaluate_check("quick", TINY, torch.device("cpu"), tmp_path)(check)


def test_no_cifar_on_disk_is_a_skip_not_a_failure(tmp_path: Path) -> None:
    with pytest.raises(gpucheck.Skipped, match="--data-dir"):
        real_data_check(TINY, torch.device("cpu"), tmp_path, tmp_path / "empty")(Check("x"))


def test_a_failed_step_fails_the_run(tmp_path: Path, monkeypatch, capsys) -> None:
    def broken(size, device, data_dir):
        return [Check("kill and resume", "failed", 1.0, {}, "RuntimeError: boom"),
                Check("real cifar10", "skipped", 0.0, {}, "no CIFAR-10")]

    monkeypatch.setattr(gpucheck, "run_checks", broken)
    out = tmp_path / "g.json"
    assert main(["--tiny", "--device", "cpu", "--out", str(out)]) == 1
    assert json.loads(out.read_text())["passed"] is False
    assert "FAILED (kill and resume)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--device", "tpu"], ["--device", "cuda:7"]])
def test_bad_device_is_one_line(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("error: ")
