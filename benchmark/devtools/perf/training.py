"""Training measurements: the harness's epoch and speed paths against the bare loops, and what
each speed path costs in accuracy."""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from benchmark.core.datasets import TensorLoader
from benchmark.core.datasets.base import Splits
from benchmark.core.protocol import Protocol
from benchmark.core.trainer import validate
from benchmark.devtools.perf.bare import bare_epoch, bare_setup
from benchmark.devtools.perf.harness import timing_trainer
from benchmark.devtools.perf.timing import Timer

TRAIN_VARIANTS: dict[str, dict[str, Any]] = {  # label -> (method, protocol overrides)
    "harness": {"method": "pgd_at"},                 # the preset as it is (channels_last on)
    "harness+contiguous": {"method": "pgd_at", "overrides": {"channels_last": False}},
    "harness+bf16": {"method": "pgd_at", "overrides": {"amp": True}},
    "ham": {"method": "ham"},
}
BARE_VARIANTS: dict[str, dict[str, bool]] = {
    "bare": {},
    "bare+channels_last": {"channels_last": True},
    "bare+channels_last+frozen": {"channels_last": True, "freeze_in_attack": True},
    "bare+frozen": {"freeze_in_attack": True},
}


def time_harness_variants(timer: Timer, passes: dict[str, float], protocol: Protocol,
                          splits: Splits, device: torch.device,
                          start: dict[str, torch.Tensor], root: Path, round_: int) -> None:
    """One round of every harness variant's epoch (and, after the plain harness's, its
    validation and checkpoint writes); forward+backward passes per example into `passes`."""
    for label, spec in TRAIN_VARIANTS.items():
        p = replace(protocol, **spec.get("overrides", {}))
        trainer = timing_trainer(spec["method"], p, splits, device, root, start)
        model, ctx, counter = trainer.epoch_context()
        steps = timer.time(label, lambda t=trainer, m=model, c=ctx, k=counter, e=round_:
                           t.train_steps(e, m, c, k))
        counter.detach()
        passes[label] = (steps.forward + steps.backward) / len(splits.train_y)
        if label == "harness":
            trainer.state.epoch = 1
            timer.time("validation", lambda t=trainer: validate(
                t.model, t.splits, t.protocol, t.device))
            timer.time("checkpoint", trainer.save_checkpoints)
        del trainer, model, ctx, counter  # no variant's memory lives on into the next
        gc.collect()


def time_bare_variants(timer: Timer, protocol: Protocol, splits: Splits, device: torch.device,
                       start: dict[str, torch.Tensor], round_: int) -> None:
    """One round of every bare loop's epoch, each from `start` with a fresh model."""
    for label, flags in BARE_VARIANTS.items():
        torch.manual_seed(round_)
        model, opt, loader = bare_setup(protocol, splits, device, start,
                                        flags.get("channels_last", False))
        timer.time(label, lambda m=model, o=opt, ld=loader, f=flags:
                   bare_epoch(m, o, ld, protocol, **f))
        del model, opt, loader
        gc.collect()


def measure_training(protocol: Protocol, splits: Splits, device: torch.device,
                     start: dict[str, torch.Tensor], rounds: int, root: Path
                     ) -> tuple[Timer, dict[str, Any]]:
    """Interleaved rounds of the harness variants, the bare loops and the bare data pipeline;
    the timer and the passes per example of each harness variant."""
    timer = Timer(device)
    passes: dict[str, float] = {}
    loader_for_data = TensorLoader(splits.train_x, splits.train_y, protocol.batch_size,
                                   device=device, shuffle=True, seed=0,
                                   augment_with=(splits.info.crop_padding, splits.info.flip))
    for r in range(rounds + 1):  # round 0 warms up (first calls, allocator) and is dropped
        if r == 1:
            timer.clear()
        time_harness_variants(timer, passes, protocol, splits, device, start, root, r)
        time_bare_variants(timer, protocol, splits, device, start, r)
        timer.time("data", lambda: [None for _ in loader_for_data])
    return timer, {"passes_per_example": passes}


def accuracy_of_speed_paths(protocol: Protocol, splits: Splits, device: torch.device,
                            start: dict[str, torch.Tensor], epochs: int, root: Path
                            ) -> dict[str, dict[str, float]]:
    """Validation accuracy after `epochs` full PGD-AT epochs from the same start weights, with
    the preset's settings and each speed path switched: what the speed costs in accuracy."""
    out = {}
    for label in ("harness", "harness+contiguous", "harness+bf16"):
        p = replace(protocol, **TRAIN_VARIANTS[label].get("overrides", {}))
        trainer = timing_trainer("pgd_at", p, splits, device, root / label, start)
        model, ctx, counter = trainer.epoch_context()
        for epoch in range(epochs):
            trainer.train_steps(epoch, model, ctx, counter)
        counter.detach()
        val = validate(trainer.model, splits, p, device)
        out[label] = {"clean_avg": val["clean_avg"], "robust_avg": val["robust_avg"],
                      "robust_worst": val["robust_worst"]}
    return out
