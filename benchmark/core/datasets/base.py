"""Dataset registry, class-balanced splits and tensor batching with on-device augmentation.

A dataset loader returns the raw train and test sets as uint8 NCHW tensors plus labels; everything
else (validation split, class-balanced subsets, augmentation, batching) is shared here, so every
dataset gets identical treatment.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.common.errors import UserError
from benchmark.common.registry import Registry

if TYPE_CHECKING:
    from benchmark.core.protocol import Protocol

RawData = tuple[Tensor, Tensor, Tensor, Tensor]  # train_x (uint8 NCHW), train_y, test_x, test_y


@dataclass(frozen=True)
class DatasetInfo:
    """What the harness must know about a dataset, and how to read it from disk."""

    name: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]
    crop_padding: int
    flip: bool
    load: Callable[[Path, bool], RawData]  # (data_dir, download) -> raw tensors
    source: str  # one line for README / `fairbench list datasets`
    # Cheap check that the files are there (raises the one-line missing-data UserError); lets
    # `fairbench run` stop before planning anything when data is missing and --download is off.
    check: Callable[[Path], None] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def default_data_dir() -> Path:
    return Path(os.environ.get("FAIRBENCH_DATA", "data"))


@contextmanager
def network_timeout(seconds: float = 10.0) -> Iterator[None]:
    """Bound every socket operation (torchvision downloads) so an offline machine never hangs."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def missing_data(name: str, directory: Path, expected: str) -> UserError:
    return UserError(
        f"{name} data not found in {directory} (expected {expected}); put the files there, "
        f"pass --data-dir DIR, or add --download on a machine with internet"
    )


def download_failed(name: str, directory: Path, err: Exception) -> UserError:
    return UserError(
        f"could not download {name} into {directory} ({type(err).__name__}); "
        f"no network? put the files there yourself or pass --data-dir DIR"
    )


@dataclass
class Splits:
    """Train / class-balanced validation / test tensors of one dataset (uint8 images)."""

    info: DatasetInfo
    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor


def balanced_indices(y: Tensor, per_class: int, num_classes: int, generator: torch.Generator
                     ) -> Tensor:
    """`per_class` random indices of each class (sorted); error if a class has too few."""
    picks = []
    for c in range(num_classes):
        idx = (y == c).nonzero().flatten()
        if len(idx) < per_class:
            raise UserError(
                f"class {c} has {len(idx)} examples, fewer than the {per_class} per class asked; "
                f"lower the per-class count with --set"
            )
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.cat(picks).sort().values


def first_per_class(y: Tensor, per_class: int | None, num_classes: int) -> Tensor:
    """The first `per_class` indices of each class: a fixed, seed-free evaluation subset."""
    if per_class is None:
        return torch.arange(len(y))
    picks = [(y == c).nonzero().flatten()[:per_class] for c in range(num_classes)]
    return torch.cat(picks).sort().values


def load_splits(name: str, *, seed: int, val_per_class: int, train_per_class: int | None = None,
                test_per_class: int | None = None, data_dir: Path | None = None,
                download: bool = False) -> Splits:
    """Load a dataset and split it; the validation split is a pure function of `seed`.

    Validation is held out of the training set (class-balanced). `train_per_class` keeps a
    class-balanced training subset (CPU presets); `test_per_class` keeps the first examples of each
    class of the test set, identical for every seed and method.
    """
    info = DATASETS.get(name)
    directory = Path(data_dir or default_data_dir())
    try:
        train_x, train_y, test_x, test_y = info.load(directory, download)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - unreadable files become one line
        raise UserError(f"cannot read the {name} files under {directory} ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}); delete or replace "
                        f"them") from None
    train_y, test_y = train_y.long(), test_y.long()
    gen = torch.Generator().manual_seed(seed)
    val_idx = balanced_indices(train_y, val_per_class, info.num_classes, gen)
    rest = torch.ones(len(train_y), dtype=torch.bool)
    rest[val_idx] = False
    rest_idx = rest.nonzero().flatten()
    if train_per_class is not None:
        sub = balanced_indices(train_y[rest_idx], train_per_class, info.num_classes, gen)
        rest_idx = rest_idx[sub]
    test_idx = first_per_class(test_y, test_per_class, info.num_classes)
    return Splits(info, train_x[rest_idx], train_y[rest_idx], train_x[val_idx], train_y[val_idx],
                  test_x[test_idx], test_y[test_idx])


def to_float(x: Tensor) -> Tensor:
    """uint8 images -> float in [0, 1]."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def augment(x: Tensor, padding: int, flip: bool, generator: torch.Generator | None = None
            ) -> Tensor:
    """Random crop with zero padding and optional horizontal flip, vectorized over the batch."""
    n, _, h, w = x.shape
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
        cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows, cols]
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)[:, None, None, None]
        x = torch.where(mask, x.flip(3), x)
    return x


class TensorLoader:
    """Batches of (float images in [0,1], labels) from in-memory tensors; no worker processes.

    With `augment_with=(padding, flip)` each batch is augmented on its device. Shuffling uses its
    own generator, so an epoch's order is a pure function of (seed, epoch).
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, *, device: torch.device,
                 shuffle: bool = False, augment_with: tuple[int, bool] | None = None,
                 seed: int = 0, drop_last: bool = False) -> None:
        self.x, self.y = x.to(device), y.to(device)
        self.batch_size, self.device = batch_size, device
        self.shuffle, self.augment_with, self.seed = shuffle, augment_with, seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self.y)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = to_float(self.x[idx])
            if self.augment_with is not None:
                x = augment(x, *self.augment_with, generator=gen)
            yield x, self.y[idx]


def protocol_splits(protocol: Protocol, seed: int, data_dir: Path | None = None,
                    download: bool = False) -> Splits:
    """The splits a run of `protocol` trains, validates and is evaluated on (its dataset and
    points per class)."""
    return load_splits(protocol.dataset, seed=seed, val_per_class=protocol.val_per_class,
                       train_per_class=protocol.train_per_class,
                       test_per_class=protocol.test_per_class, data_dir=data_dir,
                       download=download)
