"""The work a step does: cifar10 protocols at the check's size, random CIFAR-shaped images,
and torch.compile without a kernel compiler for `--tiny`."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch

from benchmark.catalog import get_protocol
from benchmark.core.datasets import DATASETS
from benchmark.core.datasets.base import Splits
from benchmark.core.protocol import Protocol
from benchmark.devtools.gpucheck.checks import Size
from benchmark.devtools.perf import synthetic_splits, train_subset

CLASSES = DATASETS.get("cifar10").num_classes


@contextlib.contextmanager
def eager_compile(enabled: bool) -> Iterator[None]:
    """While `enabled`, torch.compile uses its eager backend: the compile code path without a
    kernel compiler (CPUs, tests)."""
    if not enabled:
        yield
        return
    original = torch.compile
    torch.compile = lambda model, **kw: original(model, backend="eager")  # type: ignore
    try:
        yield
    finally:
        torch.compile = original  # type: ignore


def protocol_for(preset: str, size: Size, model: str = "preact_resnet18",
                 **changes: Any) -> Protocol:
    """cifar10 `preset`'s protocol with this check's points per class; tiny: batch 2, 3 training
    attack steps (HAM's early check needs them), 1 validation/evaluation step, 2-iteration
    APGD-CE + APGD-T."""
    p = replace(get_protocol("cifar10", preset), model=model, val_per_class=size.per_class,
                test_per_class=size.per_class, aa_per_class=size.per_class)
    if size.tiny:
        p = replace(p, batch_size=2, eval_batch_size=16, train_steps=3, val_steps=1,
                    eval_pgd_steps=1, eval_cw_steps=1, aa_version="custom",
                    aa_attacks=("apgd-ce", "apgd-t"), aa_iters=2, aa_targets=2)
    return replace(p, **changes)


def random_splits(p: Protocol, n_train: int) -> Splits:
    """Random CIFAR-shaped images: `n_train` shuffled training images, the protocol's others."""
    per_class = math.ceil(n_train / CLASSES)
    return train_subset(synthetic_splits("cifar10", replace(p, train_per_class=per_class)),
                        n_train)
