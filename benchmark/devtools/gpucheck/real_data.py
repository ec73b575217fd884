"""The real-data step: one PGD-AT epoch on CIFAR-10 images from disk, skipped when absent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from benchmark.common.errors import UserError
from benchmark.core.datasets import DATASETS, load_splits
from benchmark.devtools.gpucheck.checks import Check, Size, Skipped
from benchmark.devtools.gpucheck.training import measure_throughput
from benchmark.devtools.gpucheck.workload import protocol_for
from benchmark.devtools.perf import timing_trainer, train_subset


def real_data_check(size: Size, device: torch.device, root: Path, data_dir: Path,
                    required: bool) -> Callable[[Check], None]:
    """The step training on the CIFAR-10 files in `data_dir`."""
    def work(check: Check) -> None:
        """One PGD-AT epoch on real CIFAR-10 images from disk (skipped when absent, unless the
        user pointed --data-dir at it)."""
        try:
            DATASETS.get("cifar10").check(data_dir)
        except UserError as err:
            if required:
                raise
            raise Skipped(f"no CIFAR-10 in {data_dir} (optional: pass --data-dir to also "
                          f"train on the real images)") from err
        p = protocol_for("quick", size)
        splits = load_splits("cifar10", seed=0, val_per_class=p.val_per_class,
                             data_dir=data_dir)
        splits = train_subset(splits, size.train_images["preact_resnet18"])
        check.numbers["data_dir"] = str(data_dir)
        measure_throughput(check, timing_trainer("pgd_at", p, splits, device, root), 0)
    return work
