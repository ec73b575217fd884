"""Every step of the GPU check, in order, each reported whatever the others do."""

from __future__ import annotations

import tempfile
from pathlib import Path

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
from benchmark.devtools.gpucheck.checks import Check, Size, run_check
from benchmark.devtools.gpucheck.evaluation import evaluate_check
from benchmark.devtools.gpucheck.real_data import real_data_check
from benchmark.devtools.gpucheck.resume import resume_check
from benchmark.devtools.gpucheck.training import (
    harness_vs_bare,
    method_throughput,
    variant_throughput,
)
from benchmark.devtools.gpucheck.workload import eager_compile


def run_checks(size: Size, device: torch.device, data_dir: Path, data_required: bool
               ) -> list[Check]:
    """Training variants, the `make bench` plan and its methods, trainer vs bare loop,
    evaluation per preset, kill and resume, real CIFAR-10: their outcomes in this order."""
    checks: list[Check] = []
    with tempfile.TemporaryDirectory() as tmp, eager_compile(size.tiny):
        root = Path(tmp)
        for model in CHECKED_MODELS:
            for variant in VARIANTS:
                run_check(variant_check_name(model, variant), checks,
                          variant_throughput(model, variant, size, device, root / model))
        runs: list[str] = []
        run_check("plan make bench", checks, lambda c: runs.extend(bench_runs(
            get_protocol("cifar10", "quick"))))
        for method in runs:
            run_check(method_check_name(method), checks,
                      method_throughput(method, size, device, root / "methods"))
        run_check("trainer vs bare loop", checks, harness_vs_bare(size, device, root / "ratio"))
        for preset in PRESETS:
            run_check(eval_check_name(preset), checks,
                      evaluate_check(preset, size, device, root))
        run_check("kill and resume", checks, resume_check(size, device, root))
        run_check("real cifar10", checks,
                  real_data_check(size, device, root / "real", data_dir, data_required))
    return checks
