"""Every measurement of `make perf` in order, and the report (the JSON) built from them."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmark.catalog import get_protocol
from benchmark.common.device import resolve_device
from benchmark.common.memory import peak_mb
from benchmark.core.datasets.base import Splits
from benchmark.core.protocol import Protocol
from benchmark.devtools.perf.data import train_subset, workload, workload_splits
from benchmark.devtools.perf.evaluation import measure_evaluation
from benchmark.devtools.perf.harness import start_weights
from benchmark.devtools.perf.machine import machine, rss_now
from benchmark.devtools.perf.ratios import GOALS, accuracy_difference, ratios
from benchmark.devtools.perf.timing import Timer
from benchmark.devtools.perf.training import accuracy_of_speed_paths, measure_training


@dataclass
class TimedWorkload:
    """What is timed: the dataset and preset, their protocol, splits and timed subset."""

    dataset: str
    preset: str
    synthetic: bool
    protocol: Protocol
    splits: Splits     # the preset's splits (evaluation, accuracy)
    subset: Splits     # the training images of one timed epoch


@dataclass
class Measurements:
    """The timers and numbers of one `make perf` run."""

    start_desc: str
    train: Timer
    train_extra: dict[str, Any]
    evaluation: Timer
    eval_extra: dict[str, Any]
    accuracy: dict[str, dict[str, float]]


def run_measurements(args: argparse.Namespace, work: TimedWorkload, device: torch.device
                     ) -> Measurements:
    """Start weights, then training, evaluation and (unless 0 epochs) accuracy, in a
    temporary directory."""
    protocol, splits, subset = work.protocol, work.splits, work.subset
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        start, start_desc = start_weights(protocol, subset, device, args.init,
                                          args.warmup_epochs, root)
        train, train_extra = measure_training(protocol, subset, device, start, args.rounds,
                                              root)
        evaluation, eval_extra = measure_evaluation(protocol, splits, device, start,
                                                    args.rounds, args.eval_per_class, root)
        acc = accuracy_of_speed_paths(protocol, splits, device, start, args.accuracy_epochs,
                                      root) if args.accuracy_epochs else {}
    return Measurements(start_desc, train, train_extra, evaluation, eval_extra, acc)


def build_report(args: argparse.Namespace, device: torch.device, work: TimedWorkload,
                 baseline_mb: float, m: Measurements) -> dict[str, Any]:
    """The JSON report: machine, date, workload, ratios and goals, medians and peaks."""
    protocol = work.protocol
    full_batches = -(-len(work.splits.train_y) // protocol.batch_size)
    timed_batches = -(-len(work.subset.train_y) // protocol.batch_size)
    train, evaluation, acc = m.train, m.evaluation, m.accuracy
    epoch_full = train.median("harness") * full_batches / timed_batches
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(device), "dataset": work.dataset, "preset": work.preset,
        "data": "synthetic (random images of the dataset's shape)" if work.synthetic
        else "real",
        "model": protocol.model, "batch_size": protocol.batch_size,
        "timed_epoch_batches": timed_batches, "full_epoch_batches": full_batches,
        "rounds": args.rounds, "start_weights": m.start_desc, "goals": GOALS,
        "ratios": ratios(train, evaluation, m.train_extra["passes_per_example"],
                         protocol.channels_last, epoch_full),
        "median_seconds": {k: train.median(k) for k in train.seconds}
        | {k: evaluation.median(k) for k in evaluation.seconds},
        "peak_memory_mb": train.peak | evaluation.peak,
        "baseline_memory_mb": baseline_mb,
        "accuracy_epochs": args.accuracy_epochs, "accuracy": acc,
        "accuracy_difference_vs_default": accuracy_difference(acc),
        "evaluation": m.eval_extra, **m.train_extra,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement for the command line's `args`: the report."""
    device = resolve_device(args.device)
    dataset, preset, synthetic = workload(args, device)
    protocol = get_protocol(dataset, preset)
    splits = workload_splits(dataset, protocol, synthetic)
    baseline_mb = peak_mb(device) if device.type == "cuda" else rss_now()
    subset = train_subset(splits, args.batches * protocol.batch_size)
    work = TimedWorkload(dataset, preset, synthetic, protocol, splits, subset)
    return build_report(args, device, work, baseline_mb, run_measurements(args, work, device))
