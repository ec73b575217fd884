"""SVHN (cropped digits): `train_32x32.mat` / `test_32x32.mat` directly in `--data-dir`.

That is torchvision's layout (its SVHN class expects the files in the root it is given), and
torchvision downloads them. We read the .mat files with scipy ourselves, because torchvision
rejects any copy whose md5 differs from the official one. The files store X as (32, 32, 3, N)
uint8 and y as (N, 1) with label 10 for the digit 0; we map 10 -> 0 so class k is digit k.
Training augmentation is crop only: a flipped digit is not the same digit (2/5, 6/9 ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import SVHN

from benchmark.common.errors import UserError
from benchmark.core.datasets.base import (
    DATASETS,
    DatasetInfo,
    RawData,
    download_failed,
    missing_data,
    network_timeout,
)

CLASSES = tuple(str(d) for d in range(10))
SPLITS = ("train", "test")


def _filename(split: str) -> str:
    return SVHN.split_list[split][1]  # train_32x32.mat / test_32x32.mat


def read_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels 0..9 from one SVHN .mat file."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), variable_names=["X", "y"])
        x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).astype(np.int64).reshape(-1)
    except Exception as err:  # noqa: BLE001 - any unreadable file becomes one line
        raise UserError(f"cannot read {path} as an SVHN .mat file ({type(err).__name__}); "
                        f"delete it and pass --download, or copy the original file") from None
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise UserError(f"{path}: X has shape {x.shape}, expected (32, 32, 3, {len(y)})")
    y = np.where(y == 10, 0, y)
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise UserError(f"{path}: labels outside 1..10")
    images = np.ascontiguousarray(x.astype(np.uint8, copy=False).transpose(3, 2, 0, 1))
    return torch.from_numpy(images), torch.from_numpy(y)


def _missing(data_dir: Path) -> list[str]:
    return [s for s in SPLITS if not (data_dir / _filename(s)).exists()]


def check_svhn(data_dir: Path) -> None:
    """The one-line missing-data UserError if a .mat file is not there."""
    if _missing(data_dir):
        raise missing_data("svhn", data_dir, " and ".join(_filename(s) for s in SPLITS))


def load_svhn(data_dir: Path, download: bool) -> RawData:
    """SVHN train and test sets as raw uint8 NCHW tensors (the `extra` split is not used)."""
    missing = _missing(data_dir)
    if missing and not download:
        check_svhn(data_dir)
    if missing:
        try:
            with network_timeout():
                for split in missing:
                    SVHN(str(data_dir), split=split, download=True)
        except Exception as err:  # noqa: BLE001 - any network failure becomes one line
            raise download_failed("svhn", data_dir, err) from None
    train_x, train_y = read_mat(data_dir / _filename("train"))
    test_x, test_y = read_mat(data_dir / _filename("test"))
    return train_x, train_y, test_x, test_y


DATASETS.add("svhn", DatasetInfo(
    name="svhn", classes=CLASSES, shape=(3, 32, 32), crop_padding=4, flip=False,
    load=load_svhn, check=check_svhn,
    source="--data-dir/{train,test}_32x32.mat (torchvision layout), else --download",
))

__all__ = ["check_svhn", "load_svhn", "read_mat"]
