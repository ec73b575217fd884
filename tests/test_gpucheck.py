"""`make gpu-check ARGS="--tiny --device cpu"`: every step of the GPU check runs at a tiny size
and passes (the real-data step on CIFAR-10 files in the real format); a broken evaluation or
resume path fails its step; the projections by hand; the JSON and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fake_datasets import write_cifar10

from benchmark.catalog import get_protocol
from benchmark.core.trainer import Trainer
from benchmark.devtools import gpucheck
from benchmark.devtools.gpucheck import (
    CHECKED_MODELS,
    PRESETS,
    TINY,
    VARIANTS,
    WORKERS_CHECK,
    Check,
    bench_runs,
    checked_variants,
    eval_check_name,
    evaluate_check,
    main,
    method_check_name,
    method_throughput,
    projections,
    real_data_check,
    resume_check,
    variant_check_name,
)
from benchmark.devtools.gpucheck import cli as gpucheck_cli
from benchmark.devtools.oracle import RobustOracle

CPU = torch.device("cpu")


def test_tiny_gpu_check_passes_on_cpu(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gpucheck.json"
    data = write_cifar10(tmp_path / "data", train_per_class=12)
    assert main(["--tiny", "--device", "cpu", "--data-dir", str(data), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    runs = bench_runs(get_protocol("cifar10", "quick"))
    assert {"pgd_at", "trades", "ham"} <= set(runs)
    names = [c["name"] for c in report["checks"]]
    variants = [variant_check_name(m, v) for m, v in checked_variants(TINY)]
    assert names == variants[:1] + ["plan make bench"] + [method_check_name(m) for m in runs] + [
        eval_check_name(p) for p in PRESETS] + ["kill and resume", "real cifar10",
                                                WORKERS_CHECK] + variants[1:] + [
        "trainer vs bare loop"]
    assert variant_check_name("wrn_34_10", "fp32") in names  # --tiny: the second model in fp32
    assert len(variants) == len(VARIANTS) + len(CHECKED_MODELS) - 1
    assert report["passed"] and {c["status"] for c in report["checks"]} == {"passed"}
    numbers = {c["name"]: c["numbers"] for c in report["checks"]}
    assert numbers[variant_check_name("wrn_34_10", "fp32")]["images_per_second"] > 0
    assert numbers[WORKERS_CHECK]["preact_resnet18_two_workers_speedup"] > 0
    assert numbers[WORKERS_CHECK]["small_cnn_quick_runs_per_hour_one_worker"] > 0
    assert numbers[variant_check_name("preact_resnet18", "compile")]["updates"] == 2  # 8 / 4
    assert 0 <= numbers[method_check_name("ham")]["ham_dropped_fraction"] <= 1  # sets its cost
    assert numbers["trainer vs bare loop"]["ratio"] > 0
    assert numbers[eval_check_name("full")]["points"] == 10
    assert numbers["kill and resume"]["max_weight_difference"] == 0      # exact on a CPU
    assert numbers["real cifar10"]["images"] == TINY.train_images["preact_resnet18"]
    assert set(report["projections"]) == set(PRESETS)
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


def test_an_attack_that_fools_the_model_fails_the_step(tmp_path: Path, monkeypatch) -> None:
    # right only on the exact clean images: clean accuracy stays 100 %, every attack fools it
    def exact_only(self, x):
        d = torch.cdist(x.detach().flatten(1).float(), self.images).min(dim=1)
        right = torch.nn.functional.one_hot(self.labels[d.indices], self.num_classes)
        wrong = torch.nn.functional.one_hot((self.labels[d.indices] + 1) % self.num_classes,
                                            self.num_classes)
        return 1e-3 * self.net(x) + 10.0 * torch.where(d.values[:, None] < 1e-6, right, wrong)

    monkeypatch.setattr(RobustOracle, "forward", exact_only)
    with pytest.raises(RuntimeError, match=r"^pgd20, cw, autoattack changed predictions"):
        evaluate_check("quick", TINY, CPU, tmp_path)(Check("x"))


def test_a_resume_that_restarts_fails_the_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Trainer, "_own_checkpoints", lambda self: [])  # ignores its checkpoint
    with pytest.raises(RuntimeError, match="did not restore the weights, the optimizer state"):
        resume_check(TINY, CPU, tmp_path)(Check("kill and resume"))


def test_cifar_missing_is_a_skip_unless_asked_for(tmp_path: Path) -> None:
    with pytest.raises(gpucheck.Skipped, match="--data-dir"):
        real_data_check(TINY, CPU, tmp_path, tmp_path / "empty", False)(Check("x"))
    with pytest.raises(Exception, match="cifar10 data not found"):
        real_data_check(TINY, CPU, tmp_path, tmp_path / "empty", True)(Check("x"))


def test_projection_by_hand() -> None:
    # every run at 100 images/s; PGD 0.001 s per point and step, clean 0.001, CW 0.03 and
    # AutoAttack 0.5 s per point
    per_point = {"pgd_steps": 20, "clean_seconds_per_point": 0.001,
                 "pgd20_seconds_per_point": 0.02, "cw_seconds_per_point": 0.03,
                 "autoattack_seconds_per_point": 0.5, "autoattack": "x"}
    runs = bench_runs(get_protocol("cifar10", "quick"))
    checks = [Check(method_check_name(m), "passed", numbers={"images_per_second": 100.0})
              for m in runs] + [Check(eval_check_name(p), "passed", numbers=per_point)
                                for p in PRESETS]
    quick = projections(checks)["quick"]
    # cifar10 quick: 8000 training images; epochs pgd_at 20 + trades 20 + ham 12 (from 8) +
    # trades_dafa 8 (from 12) + faal 2 = 62; 100 validation points per class, PGD-10
    assert quick["epochs"] == {"faal": 2, "ham": 12, "pgd_at": 20, "trades": 20,
                               "trades_dafa": 8}
    assert quick["training_hours"] == pytest.approx(62 * 8000 / 100 / 3600)
    assert quick["validation_hours_at_most"] == pytest.approx(62 * 1000 * 10 * 0.001 / 3600)
    # 5 runs x (best, last); 1000 test points (clean+PGD+CW), 300 AutoAttack points
    assert quick["evaluation_hours_at_most"] == pytest.approx(
        10 * (1000 * 0.051 + 300 * 0.5) / 3600)
    full = projections(checks)["full"]
    # full: 50000 - 3000 validation = 47000 training images, 10000 test and AutoAttack points
    assert full["training_hours"] == pytest.approx(
        sum(full["epochs"].values()) * 47000 / 100 / 3600)
    assert full["evaluation_hours_at_most"] == pytest.approx(
        10 * (10000 * 0.051 + 10000 * 0.5) / 3600)
    failed = [c if c.name != method_check_name("ham") else Check(c.name, "failed") for c in checks]
    assert projections(failed) == {}       # a missing measurement: no projection at all


def test_a_spent_budget_skips_the_steps_left(tmp_path: Path, capsys) -> None:
    """The budget is read between steps: the first step runs, every later one is skipped (not
    failed), the JSON is written and the check passes."""
    out = tmp_path / "g.json"
    assert main(["--tiny", "--device", "cpu", "--budget", "0.001", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    statuses = [c["status"] for c in report["checks"]]
    assert statuses[0] == "passed" and set(statuses[1:]) == {"skipped"} and len(statuses) > 10
    assert "time budget of 0 s spent" in report["checks"][1]["error"]
    assert report["passed"] and report["budget_seconds"] == 0.001
    assert main(["--tiny", "--budget", "-1"]) == 2


def test_a_failed_step_fails_the_run(tmp_path: Path, monkeypatch, capsys) -> None:
    def broken(size, device, data_dir, required, budget=None):
        return [Check("kill and resume", "failed", 1.0, {}, "RuntimeError: boom"),
                Check("real cifar10", "skipped", 0.0, {}, "no CIFAR-10")]

    monkeypatch.setattr(gpucheck_cli, "run_checks", broken)  # what main() calls
    out = tmp_path / "g.json"
    assert main(["--tiny", "--device", "cpu", "--out", str(out)]) == 1
    assert json.loads(out.read_text())["passed"] is False
    assert "FAILED (kill and resume)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--device", "tpu"], ["--device", "cuda:7"]])
def test_bad_device_is_one_line(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("error: ")


def test_a_method_stopped_by_its_own_guard_on_random_images_is_skipped(tmp_path: Path,
                                                                        monkeypatch) -> None:
    import methods.dafa as dafa

    monkeypatch.setattr(dafa, "class_weights", lambda p, lam, rule="current": -torch.ones(len(p)))
    with pytest.raises(gpucheck.Skipped, match="trades_dafa's own check stopped it"):
        method_throughput("trades_dafa", TINY, CPU, tmp_path)(Check("x"))
