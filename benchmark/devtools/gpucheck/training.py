"""The training-speed steps: each model and speed variant, one epoch of every `make bench`
method, and the trainer against a bare PyTorch loop on the same batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmark.common.errors import RunFailed
from benchmark.core.trainer import EpochSteps, Trainer
from benchmark.devtools.gpucheck.catalog import VARIANTS
from benchmark.devtools.gpucheck.checks import Check, Size, Skipped
from benchmark.devtools.gpucheck.workload import protocol_for, random_splits
from benchmark.devtools.perf import GOALS, Timer, bare_epoch, bare_setup, timing_trainer

BARE_ROUNDS = 3                                      # timed rounds of trainer vs bare loop


def timed_epoch(trainer: Trainer, epoch: int) -> EpochSteps:
    """Training epoch `epoch` of `trainer` (its seconds, peak memory, updates, method log)."""
    fwd, ctx, counter = trainer.epoch_context()
    try:
        steps = trainer.train_steps(epoch, fwd, ctx, counter)
    finally:
        counter.detach()
    if steps.updates == 0:  # a non-finite loss already raised RunFailed in train_steps
        raise RuntimeError(f"epoch {epoch} made no update")
    return steps


def measure_throughput(check: Check, trainer: Trainer, first_epoch: int) -> None:
    """A warm-up epoch (compilation happens there), then a timed one; the timed epoch's
    numeric method log too (e.g. the fraction HAM dropped, which sets its cost)."""
    t0 = time.perf_counter()
    timed_epoch(trainer, first_epoch)
    check.numbers["warmup_seconds"] = time.perf_counter() - t0
    steps = timed_epoch(trainer, first_epoch + 1)
    n = len(trainer.splits.train_y)
    check.numbers.update(images_per_second=n / steps.seconds,
                         peak_memory_mb=steps.peak_memory_mb, images=n, updates=steps.updates,
                         **{k: v for k, v in steps.method_log.items()
                            if isinstance(v, int | float) and not isinstance(v, bool)})


def variant_throughput(model: str, variant: str, size: Size, device: torch.device, root: Path
                       ) -> Callable[[Check], None]:
    """The step timing PGD-AT of `model` with speed variant `variant`."""
    def work(check: Check) -> None:
        """PGD-AT of `model` with the variant's speed flags."""
        p = protocol_for("quick", size, model, **VARIANTS[variant])
        splits = random_splits(p, size.train_images[model])
        measure_throughput(check, timing_trainer("pgd_at", p, splits, device, root / variant),
                           0)
    return work


def method_throughput(method: str, size: Size, device: torch.device, root: Path
                      ) -> Callable[[Check], None]:
    """The step timing one epoch of `method`."""
    def work(check: Check) -> None:
        """`method` on preact_resnet18 at the preset's settings, at its own first epochs, from
        random weights on random labels. A method's own guard that stops it there (e.g. DAFA's
        class weight <= 0 after a collapsed warm-up) skips the step: random images say nothing
        about the method."""
        p = protocol_for("quick", size)
        splits = random_splits(p, size.train_images["preact_resnet18"])
        trainer = timing_trainer(method, p, splits, device, root)
        try:
            measure_throughput(check, trainer, trainer.method.begin(p))
        except RunFailed as err:
            if "non-finite" in str(err):
                raise  # the harness's own check: a real failure
            raise Skipped(f"{method}'s own check stopped it on random images: {err}") from err
    return work


def harness_vs_bare(size: Size, device: torch.device, root: Path) -> Callable[[Check], None]:
    """The step timing the trainer against a bare loop."""
    def work(check: Check) -> None:
        """Interleaved rounds of a PGD-AT epoch through `Trainer` and through a bare loop on the
        same batches; the median per-round ratio (round 0 warms up and is dropped)."""
        p = protocol_for("quick", size)
        splits = random_splits(p, size.train_images["preact_resnet18"])
        timer = Timer(device)
        rounds = 1 if size.tiny else BARE_ROUNDS  # --tiny proves the path; it times nothing
        for r in range(rounds + 1):
            if r == 1:
                timer.clear()
            trainer = timing_trainer("pgd_at", p, splits, device, root)
            fwd, ctx, counter = trainer.epoch_context()
            timer.time("harness", lambda t=trainer, f=fwd, c=ctx, k=counter:
                       t.train_steps(0, f, c, k))
            counter.detach()
            model, opt, loader = bare_setup(p, splits, device, trainer.model.state_dict(),
                                            p.channels_last)
            timer.time("bare", lambda m=model, o=opt, ld=loader:
                       bare_epoch(m, o, ld, p, channels_last=p.channels_last))
        check.numbers.update(ratio=timer.ratio("harness", "bare"),
                             goal=GOALS["harness_vs_bare"], rounds=rounds,
                             harness_seconds=timer.median("harness"),
                             bare_seconds=timer.median("bare"))
    return work
