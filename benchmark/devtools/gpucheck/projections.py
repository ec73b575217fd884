"""Hours of `make bench DATASET=cifar10` (core methods, one seed) projected per preset from the
measured steps."""

from __future__ import annotations

from typing import Any

from benchmark.catalog import get_protocol, make_method
from benchmark.common.errors import UserError
from benchmark.core.evaluation.evaluator import ATTACKS
from benchmark.core.protocol import Protocol
from benchmark.devtools.gpucheck.catalog import (
    PRESETS,
    bench_runs,
    eval_check_name,
    method_check_name,
)
from benchmark.devtools.gpucheck.checks import Check
from benchmark.devtools.gpucheck.workload import CLASSES

CIFAR10_IMAGES = {"train": 50_000, "test": 10_000}   # the dataset's own split sizes


def project_preset(p: Protocol, runs: list[str], passed: dict[str, dict[str, Any]],
                   ev: dict[str, Any]) -> dict[str, Any]:
    """The projection for protocol `p`'s `runs`, from the passed steps' numbers and the
    evaluation step's `ev` (seconds per point, upper bounds)."""
    train_images = p.train_per_class * CLASSES if p.train_per_class else \
        CIFAR10_IMAGES["train"] - CLASSES * p.val_per_class
    methods = {m: make_method(m, p) for m in runs}
    epochs = {m: method.end_epoch(p) - method.begin(p) for m, method in methods.items()}
    training = sum(epochs[m] * train_images
                   / passed[method_check_name(m)]["images_per_second"] for m in runs)
    pgd_step = ev["pgd20_seconds_per_point"] / ev["pgd_steps"]
    validation = sum(epochs.values()) * CLASSES * p.val_per_class * p.val_steps * pgd_step
    test_points = CLASSES * p.test_per_class if p.test_per_class else CIFAR10_IMAGES["test"]
    aa_points = CLASSES * p.aa_per_class if p.aa_per_class else test_points
    per_checkpoint = (test_points * sum(ev[f"{a}_seconds_per_point"] for a in ATTACKS
                                        if a != "autoattack")
                      + aa_points * ev["autoattack_seconds_per_point"])
    evaluation = 2 * len(runs) * per_checkpoint
    return {"runs": runs, "epochs": epochs, "training_hours": training / 3600,
            "validation_hours_at_most": validation / 3600,
            "evaluation_hours_at_most": evaluation / 3600,
            "total_hours_at_most": (training + validation + evaluation) / 3600,
            "autoattack": ev["autoattack"]}


def projections(checks: list[Check]) -> dict[str, Any]:
    """Hours of `make bench DATASET=cifar10` (core methods, one seed) per preset: training
    from each run's measured images/s x its epochs; validation (PGD-`val_steps` after every
    epoch) and evaluation (best and last checkpoint of every run) from the measured seconds per
    point, which are upper bounds (every point robust through every attack)."""
    passed = {c.name: c.numbers for c in checks if c.status == "passed"}
    out: dict[str, Any] = {}
    for preset in PRESETS:
        p = get_protocol("cifar10", preset)
        try:
            runs = bench_runs(p)
        except UserError:
            continue  # reported by the "plan make bench" step
        ev = passed.get(eval_check_name(preset))
        if ev is None or any(method_check_name(m) not in passed for m in runs):
            continue  # a step it needs failed: no projection rather than a wrong one
        out[preset] = project_preset(p, runs, passed, ev)
    return out
