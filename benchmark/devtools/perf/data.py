"""The data timed: the dataset and preset chosen, real or random images, the timed subset."""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from benchmark.core.datasets import DATASETS, load_splits
from benchmark.core.datasets.base import Splits
from benchmark.core.protocol import Protocol


def workload(args: argparse.Namespace, device: torch.device) -> tuple[str, str, bool]:
    """(dataset, preset, synthetic): on a GPU, or with --synthetic, FMNIST is replaced by
    CIFAR-10 (same preset name) on random images of CIFAR shape."""
    synthetic = args.synthetic or (device.type == "cuda" and args.dataset == "fmnist")
    dataset = "cifar10" if synthetic and args.dataset == "fmnist" else args.dataset
    return dataset, args.preset, synthetic


def synthetic_splits(dataset: str, protocol: Protocol, seed: int = 0) -> Splits:
    """Random uint8 images of the dataset's shape and balanced labels, sized like the preset
    (no download): for timing only."""
    info = DATASETS.get(dataset)
    gen = torch.Generator().manual_seed(seed)
    c = info.num_classes

    def make(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(c).repeat_interleave(per_class)
        return torch.randint(0, 256, (len(y), *info.shape), dtype=torch.uint8, generator=gen), y

    train_x, train_y = make(protocol.train_per_class or 500)
    val_x, val_y = make(protocol.val_per_class)
    test_x, test_y = make(protocol.test_per_class or 100)
    return Splits(info, train_x, train_y, val_x, val_y, test_x, test_y)


def workload_splits(dataset: str, protocol: Protocol, synthetic: bool) -> Splits:
    """The preset's splits: random images (`synthetic`) or the dataset's own, seed 0."""
    if synthetic:
        return synthetic_splits(dataset, protocol)
    return load_splits(dataset, seed=0, val_per_class=protocol.val_per_class,
                       train_per_class=protocol.train_per_class,
                       test_per_class=protocol.test_per_class)


def train_subset(splits: Splits, n: int, seed: int = 0) -> Splits:
    """The first `n` training images (a shuffled, class-mixed subset): one timed epoch."""
    order = torch.randperm(len(splits.train_y), generator=torch.Generator().manual_seed(seed))
    keep = order[:n]
    return replace(splits, train_x=splits.train_x[keep], train_y=splits.train_y[keep])
