"""CIFAR-10 and CIFAR-100 in torchvision's on-disk layout; torchvision downloads them.

Files (names from torchvision's CIFAR10 / CIFAR100 classes): `<data-dir>/cifar-10-batches-py/`
(`data_batch_1..5`, `test_batch`, `batches.meta`) and `<data-dir>/cifar-100-python/` (`train`,
`test`, `meta`). We read the pickled batches ourselves instead of through torchvision's dataset
classes, for two reasons: torchvision insists on the official md5 sums (so a re-pickled or test
copy is reported as "corrupted"), and it unpickles with the plain `pickle` module, which runs
whatever code a doctored file asks for. Our unpickler only builds numpy arrays, lists, dicts and
strings. Class names are the official ones; the files' own meta list must agree with them.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100

from benchmark.common.errors import UserError
from benchmark.core.datasets.base import (
    DATASETS,
    DatasetInfo,
    RawData,
    download_failed,
    missing_data,
    network_timeout,
)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)

# The only globals a CIFAR batch (or a numpy array pickled by any numpy / pickle protocol) needs.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global except those needed to rebuild numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR pickle (Python 2 or 3), keys as str; a UserError if it is not a plain batch."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as err:  # noqa: BLE001 - any unreadable file becomes one line
        raise UserError(f"cannot read {path} as a CIFAR batch ({type(err).__name__}: {err}); "
                        f"delete it and pass --download, or copy the original file") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a CIFAR batch (a pickled dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _files(tv: type[CIFAR10]) -> list[str]:
    return [name for name, _ in tv.train_list + tv.test_list] + [tv.meta["filename"]]


def _read_split(folder: Path, names: list[str], label_key: str) -> tuple[torch.Tensor,
                                                                        torch.Tensor]:
    xs, ys = [], []
    for name in names:
        batch = read_pickle(folder / name)
        if "data" not in batch or label_key not in batch:
            raise UserError(f"{folder / name} lacks the keys 'data' and {label_key!r}")
        xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key], dtype=np.int64).reshape(-1))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _read(root: Path, name: str, tv: type[CIFAR10], classes: tuple[str, ...]) -> RawData:
    folder = root / tv.base_folder
    label_key = "labels" if tv is CIFAR10 else "fine_labels"
    train_x, train_y = _read_split(folder, [n for n, _ in tv.train_list], label_key)
    test_x, test_y = _read_split(folder, [n for n, _ in tv.test_list], label_key)
    meta = read_pickle(folder / tv.meta["filename"])
    names = tuple(str(c) for c in meta.get(tv.meta["key"], ()))
    if names != classes:
        raise UserError(f"{folder / tv.meta['filename']} lists classes {names[:3]}..., not the "
                        f"official {name} classes {classes[:3]}...; is this really {name}?")
    for y in (train_y, test_y):
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise UserError(f"{folder}: labels outside 0..{len(classes) - 1}")
    return train_x, train_y, test_x, test_y


def _checker(name: str, tv: type[CIFAR10]) -> Callable[[Path], None]:
    def check(data_dir: Path) -> None:
        folder = data_dir / tv.base_folder
        if not all((folder / f).exists() for f in _files(tv)):
            raise missing_data(name, folder, ", ".join(_files(tv)))

    check.__name__ = f"check_{name}"
    check.__doc__ = f"The one-line missing-data UserError if {name}'s files are not all there."
    return check


check_cifar10 = _checker("cifar10", CIFAR10)
check_cifar100 = _checker("cifar100", CIFAR100)


def _loader(name: str, tv: type[CIFAR10], classes: tuple[str, ...],
            check: Callable[[Path], None]) -> Callable[[Path, bool], RawData]:
    def load(data_dir: Path, download: bool) -> RawData:
        try:
            check(data_dir)
        except UserError:
            if not download:
                raise
            try:
                with network_timeout():
                    tv(str(data_dir), train=True, download=True)
            except Exception as err:  # noqa: BLE001 - any network failure becomes one line
                raise download_failed(name, data_dir, err) from None
        return _read(data_dir, name, tv, classes)

    load.__name__ = f"load_{name}"
    load.__doc__ = f"{name}: raw uint8 NCHW tensors from <data_dir>/{tv.base_folder}."
    return load


load_cifar10 = _loader("cifar10", CIFAR10, CIFAR10_CLASSES, check_cifar10)
load_cifar100 = _loader("cifar100", CIFAR100, CIFAR100_CLASSES, check_cifar100)

DATASETS.add("cifar10", DatasetInfo(
    name="cifar10", classes=CIFAR10_CLASSES, shape=(3, 32, 32), crop_padding=4, flip=True,
    load=load_cifar10, check=check_cifar10,
    source=f"--data-dir/{CIFAR10.base_folder} (torchvision layout), else --download",
))
DATASETS.add("cifar100", DatasetInfo(
    name="cifar100", classes=CIFAR100_CLASSES, shape=(3, 32, 32), crop_padding=4, flip=True,
    load=load_cifar100, check=check_cifar100,
    source=f"--data-dir/{CIFAR100.base_folder} (torchvision layout), else --download",
))

__all__ = ["CIFAR100_CLASSES", "CIFAR10_CLASSES", "check_cifar10", "check_cifar100", "load_cifar10",
           "load_cifar100", "read_pickle"]
