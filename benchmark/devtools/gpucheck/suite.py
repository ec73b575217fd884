"""Every step of the GPU check, in order, each reported whatever the others do."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmark.catalog import get_protocol
from benchmark.devtools.gpucheck.catalog import (
    CHECKED_MODELS,
    PRESETS,
    VARIANTS,
    bench_runs,
    eval_check_name,
    method_check_name,
    variant_check_name,
)
from benchmark.devtools.gpucheck.checks import Budget, Check, Size, run_check
from benchmark.devtools.gpucheck.evaluation import evaluate_check
from benchmark.devtools.gpucheck.real_data import real_data_check
from benchmark.devtools.gpucheck.resume import resume_check
from benchmark.devtools.gpucheck.training import (
    harness_vs_bare,
    method_throughput,
    variant_throughput,
)
from benchmark.devtools.gpucheck.workers import workers_check
from benchmark.devtools.gpucheck.workload import eager_compile

WORKERS_CHECK = "workers per gpu"


def checked_variants(size: Size) -> list[tuple[str, str]]:
    """(model, speed variant) pairs trained: all of them; --tiny trains the models after the
    first in fp32 only (their variants take the same code path as the first model's)."""
    return [(m, v) for i, m in enumerate(CHECKED_MODELS) for v in VARIANTS
            if not (size.tiny and i > 0 and v != next(iter(VARIANTS)))]


def run_checks(size: Size, device: torch.device, data_dir: Path, data_required: bool,
               budget: Budget | None = None) -> list[Check]:
    """Every step, the most telling first (so a spent `budget` skips the least): one training
    variant, the `make bench` plan and its methods, evaluation per preset, kill and resume, real
    CIFAR-10, workers per GPU, the other speed variants, trainer vs bare loop."""
    checks: list[Check] = []
    first = (CHECKED_MODELS[0], next(iter(VARIANTS)))
    with tempfile.TemporaryDirectory() as tmp, eager_compile(size.tiny):
        root = Path(tmp)

        def step(name: str, work: Any) -> None:
            run_check(name, checks, work, budget)

        step(variant_check_name(*first), variant_throughput(*first, size, device, root / "v"))
        runs: list[str] = []
        step("plan make bench", lambda c: runs.extend(bench_runs(get_protocol("cifar10",
                                                                               "quick"))))
        for method in runs:
            step(method_check_name(method), method_throughput(method, size, device,
                                                              root / "methods"))
        for preset in PRESETS:
            step(eval_check_name(preset), evaluate_check(preset, size, device, root))
        step("kill and resume", resume_check(size, device, root))
        step("real cifar10", real_data_check(size, device, root / "real", data_dir,
                                             data_required))
        step(WORKERS_CHECK, workers_check(size, device))
        for model, variant in checked_variants(size):
            if (model, variant) != first:
                step(variant_check_name(model, variant),
                     variant_throughput(model, variant, size, device, root / model))
        step("trainer vs bare loop", harness_vs_bare(size, device, root / "ratio"))
    return checks
