"""Imagenette (10 easy ImageNet classes), 160px version, resized to a small square resolution.

Layout (torchvision's `Imagenette(size="160px")`, which also downloads it):
`<data-dir>/imagenette2-160/{train,val}/<wnid>/*.JPEG`. The `val` folder is the test set (the
validation split is held out of `train`, as for every dataset). Each image is resized to
`resolution` x `resolution` (default 32, as in the HAM code) with bilinear interpolation, aspect
ratio not kept, i.e. what `transforms.Resize((r, r))` does to a PIL image. Decoding ~13k JPEGs
takes tens of seconds, so the resized tensors are cached next to the images in
`imagenette2-160/.fairbench-<r>px.npz`, keyed by a fingerprint of the file list and sizes (any
change to the folder rebuilds the cache; a read-only data dir just skips it).

`imagenette_info(resolution, name)` builds the DatasetInfo for another resolution; only
`imagenette` (32x32, see docs/protocols.md) is registered.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import Imagenette

from benchmark.common.errors import UserError
from benchmark.core.datasets.base import (
    DATASETS,
    DatasetInfo,
    RawData,
    download_failed,
    missing_data,
    network_timeout,
)

SIZE = "160px"
FOLDER = "imagenette2-160"
SPLITS = ("train", "val")  # val is the test set
DEFAULT_RESOLUTION = 32
WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257")
CLASSES = ("tench", "English springer", "cassette player", "chain saw", "church",
           "French horn", "garbage truck", "gas pump", "golf ball", "parachute")


def fingerprint(folder: Path) -> str:
    """Hash of every (split/wnid/file, size) under the two split folders."""
    h = hashlib.sha256()
    for split in SPLITS:
        for root, dirs, files in os.walk(folder / split):
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                h.update(f"{path.relative_to(folder)}:{path.stat().st_size}\n".encode())
    return h.hexdigest()


def _resize(resolution: int) -> Callable[[Image.Image], np.ndarray]:
    def to_array(img: Image.Image) -> np.ndarray:
        img = img.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)

    return to_array


def _read_split(data_dir: Path, split: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        ds = Imagenette(str(data_dir), split=split, size=SIZE, download=False,
                        transform=_resize(resolution))
    except (RuntimeError, FileNotFoundError, KeyError) as err:
        raise UserError(f"{data_dir / FOLDER / split} is not an Imagenette split "
                        f"({type(err).__name__}: {err}); expected one folder per WordNet id "
                        f"({', '.join(WNIDS[:2])}, ...)") from None
    if tuple(ds.wnids) != WNIDS:
        raise UserError(f"{data_dir / FOLDER / split} has class folders {ds.wnids}, expected "
                        f"the 10 Imagenette WordNet ids {list(WNIDS)}")
    x = np.empty((len(ds), 3, resolution, resolution), dtype=np.uint8)
    y = np.empty(len(ds), dtype=np.int64)
    for i in range(len(ds)):
        try:
            x[i], y[i] = ds[i]
        except OSError as err:
            raise UserError(f"cannot decode an image in {data_dir / FOLDER / split} "
                            f"({type(err).__name__}: {err})") from None
    return x, y


def _save_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:  # read-only data dir: no cache
        pass


def _read(data_dir: Path, resolution: int) -> RawData:
    folder = data_dir / FOLDER
    cache = folder / f".fairbench-{resolution}px.npz"
    key = fingerprint(folder)
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["fingerprint"]) == key:
                    return tuple(torch.from_numpy(z[k].copy()) for k in
                                 ("train_x", "train_y", "test_x", "test_y"))  # type: ignore
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: rebuild it
    train_x, train_y = _read_split(data_dir, "train", resolution)
    test_x, test_y = _read_split(data_dir, "val", resolution)
    _save_cache(cache, {"train_x": train_x, "train_y": train_y, "test_x": test_x,
                        "test_y": test_y, "fingerprint": np.array(key)})
    return (torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(test_x),
            torch.from_numpy(test_y))


def check_imagenette(data_dir: Path) -> None:
    """The one-line missing-data UserError if the train or val folder is not there."""
    folder = data_dir / FOLDER
    if not all((folder / s).is_dir() for s in SPLITS):
        raise missing_data("imagenette", folder,
                           "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG of imagenette2-160")


def make_loader(resolution: int) -> Callable[[Path, bool], RawData]:
    """The DatasetInfo.load function of Imagenette at `resolution` x `resolution`."""

    def load_imagenette(data_dir: Path, download: bool) -> RawData:
        try:
            check_imagenette(data_dir)
        except UserError:
            if not download:
                raise
            try:
                with network_timeout():
                    Imagenette(str(data_dir), split="train", size=SIZE, download=True)
            except Exception as err:  # noqa: BLE001 - any network failure becomes one line
                raise download_failed("imagenette", data_dir, err) from None
        return _read(data_dir, resolution)

    return load_imagenette


def imagenette_info(resolution: int = DEFAULT_RESOLUTION, name: str = "imagenette"
                    ) -> DatasetInfo:
    """DatasetInfo of Imagenette resized to `resolution` (register it under a new name)."""
    if resolution < 8:
        raise UserError(f"Imagenette resolution must be at least 8, got {resolution}")
    return DatasetInfo(
        name=name, classes=CLASSES, shape=(3, resolution, resolution), crop_padding=4, flip=True,
        load=make_loader(resolution), check=check_imagenette,
        source=f"--data-dir/{FOLDER}/{{train,val}}/<wnid>/ (torchvision Imagenette 160px, "
               f"resized to {resolution}x{resolution}), else --download",
    )


DATASETS.add("imagenette", imagenette_info())

__all__ = ["CLASSES", "WNIDS", "check_imagenette", "fingerprint", "imagenette_info",
           "make_loader"]
