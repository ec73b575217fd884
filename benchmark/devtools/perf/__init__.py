"""`make perf`: the harness's own training epoch and evaluator, timed against bare PyTorch.

    python -m benchmark.devtools.perf [--dataset fmnist --preset quick] [--device cuda] [--rounds 5]

Times the code the benchmark runs, never a copy: `Trainer.train_steps` (one epoch of the real
method, loader, augmentation, pass counting and checks) against a minimal PyTorch PGD-AT loop
written here for the same work (same batches, same optimizer), and against the fastest bare loop
found for this hardware; `validate` and the checkpoint writes of `Trainer`; `Evaluator` per
attack; the harness's per-class AutoAttack against one plain pyautoattack run on the same points.
Variants run interleaved over `--rounds` rounds from the same start weights, so background load
hits them alike; every ratio is a median of per-round ratios measured in this one run. With
`--device cuda` (or `--synthetic`) the data are random images of CIFAR shape for the CIFAR-10
preset's model, so a GPU machine measures without any download. Writes results/perf.json.
"""

from __future__ import annotations

from benchmark.devtools.perf.bare import bare_epoch, bare_setup
from benchmark.devtools.perf.cli import main
from benchmark.devtools.perf.data import synthetic_splits, train_subset, workload
from benchmark.devtools.perf.evaluation import measure_evaluation
from benchmark.devtools.perf.harness import start_weights, timing_trainer
from benchmark.devtools.perf.machine import machine
from benchmark.devtools.perf.measure import measure
from benchmark.devtools.perf.ratios import GOALS
from benchmark.devtools.perf.report import print_report
from benchmark.devtools.perf.timing import Timer, sync
from benchmark.devtools.perf.training import (
    BARE_VARIANTS,
    TRAIN_VARIANTS,
    accuracy_of_speed_paths,
    measure_training,
)

__all__ = [
    "BARE_VARIANTS", "GOALS", "TRAIN_VARIANTS", "Timer", "accuracy_of_speed_paths",
    "bare_epoch", "bare_setup", "machine", "main", "measure", "measure_evaluation",
    "measure_training", "print_report", "start_weights", "sync", "synthetic_splits",
    "timing_trainer", "train_subset", "workload",
]
