"""`make gpu-check`: minutes on one GPU that prove the CIFAR path and measure it.

    python -m benchmark.devtools.gpucheck [--device cuda:N] [--tiny] [--data-dir DIR] [--out FILE]

Each step runs the harness's own code on CIFAR-shaped random images (no download) and is
checked (docs/speed.md, "The GPU check"):
- training: `Trainer.train_steps` (PGD-AT with the preset's PGD-10) of preact_resnet18 and
  wrn_34_10 in fp32, bf16 autocast, channels_last and torch.compile: images/s, peak memory;
- one epoch of every core method (and warm-start base) at the preset's settings: images/s;
- the trainer against a bare PyTorch loop on the same batches (interleaved rounds, median);
- the evaluator (clean, PGD, CW, AutoAttack) with cifar10 quick's and full's settings (full:
  standard AutoAttack) on 10 points per class of a `RobustOracle`: every attack must leave it at
  100 %, and runs its whole budget on every point (upper-bound seconds per point);
- a run killed after its first epoch resumes from its checkpoint (the first epoch's log line
  survives; on a CPU the final weights equal an uninterrupted run's);
- if CIFAR-10 is on disk (`--data-dir`, $FAIRBENCH_DATA or data/), one training epoch on it.
From these it projects `make bench DATASET=cifar10` (core methods, one seed) on quick and
full, writes the JSON (device, versions, every number, passed/failed/skipped per step), prints a
table and exits 1 if a step failed. `--tiny` runs the same steps at a tiny size (a few images,
batch 4, 3 training attack steps, 1 evaluation step, AutoAttack reduced to APGD-CE + APGD-T
with 2 iterations, torch.compile with its eager backend, no kernel compiler needed): it proves
the code paths on a CPU; its numbers and projections mean nothing.
"""

from __future__ import annotations

from benchmark.devtools.gpucheck.catalog import (
    CHECKED_MODELS,
    PRESETS,
    VARIANTS,
    bench_runs,
    eval_check_name,
    method_check_name,
    variant_check_name,
)
from benchmark.devtools.gpucheck.checks import (
    FULL,
    TINY,
    Budget,
    Check,
    Size,
    Skipped,
    run_check,
)
from benchmark.devtools.gpucheck.cli import main
from benchmark.devtools.gpucheck.evaluation import evaluate_check
from benchmark.devtools.gpucheck.output import print_table
from benchmark.devtools.gpucheck.projections import CIFAR10_IMAGES, projections
from benchmark.devtools.gpucheck.real_data import real_data_check
from benchmark.devtools.gpucheck.resume import resume_check
from benchmark.devtools.gpucheck.suite import WORKERS_CHECK, checked_variants, run_checks
from benchmark.devtools.gpucheck.training import (
    BARE_ROUNDS,
    harness_vs_bare,
    method_throughput,
    timed_epoch,
    variant_throughput,
)
from benchmark.devtools.gpucheck.workload import CLASSES, protocol_for, random_splits

__all__ = [
    "BARE_ROUNDS", "CHECKED_MODELS", "CIFAR10_IMAGES", "CLASSES", "FULL", "PRESETS", "TINY",
    "VARIANTS", "Check", "Size", "Skipped", "bench_runs", "eval_check_name", "evaluate_check",
    "harness_vs_bare", "main", "method_check_name", "method_throughput", "print_table",
    "projections", "protocol_for", "random_splits", "real_data_check", "resume_check",
    "run_check", "run_checks", "timed_epoch", "variant_check_name", "variant_throughput",
    "Budget", "WORKERS_CHECK", "checked_variants",
]
