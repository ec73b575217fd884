"""Fashion-MNIST: `--data-dir`, else the Debian package `dataset-fashion-mnist`, else download."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from torchvision.datasets import FashionMNIST

from benchmark.datasets.base import (
    DATASETS,
    DatasetInfo,
    RawData,
    download_failed,
    missing_data,
    network_timeout,
)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _stage_raw(source: Path, root: Path) -> bool:
    """Copy (extracting .gz) the four IDX files from `source` into torchvision's raw folder.

    The Debian package's .gz files do not match torchvision's md5 sums, so we extract them
    ourselves instead of going through torchvision's download-and-verify path.
    """
    raw = root / "FashionMNIST" / "raw"
    if all((raw / f).exists() for f in FILES):
        return True
    found = {}
    for f in FILES:
        for candidate in (source / f, source / f"{f}.gz", source / "FashionMNIST" / "raw" / f):
            if candidate.exists():
                found[f] = candidate
                break
    if len(found) < len(FILES):
        return False
    raw.mkdir(parents=True, exist_ok=True)
    for f, path in found.items():
        tmp = raw / f"{f}.tmp"
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(raw / f)
    return True


def _as_tensors(root: Path) -> RawData:
    train = FashionMNIST(str(root), train=True, download=False)
    test = FashionMNIST(str(root), train=False, download=False)
    return (train.data.unsqueeze(1), train.targets.clone(),
            test.data.unsqueeze(1), test.targets.clone())


def check_fmnist(data_dir: Path) -> None:
    """The one-line missing-data error unless the IDX files are in data_dir or DEBIAN_DIR."""
    if not (_stage_raw(data_dir, data_dir) or _stage_raw(DEBIAN_DIR, data_dir)):
        raise missing_data("fmnist", data_dir,
                           "FashionMNIST/raw/ IDX files, or `apt-get install "
                           f"dataset-fashion-mnist` for {DEBIAN_DIR}")


def load_fmnist(data_dir: Path, download: bool) -> RawData:
    if _stage_raw(data_dir, data_dir) or _stage_raw(DEBIAN_DIR, data_dir):
        return _as_tensors(data_dir)
    if not download:
        check_fmnist(data_dir)
    try:
        with network_timeout():
            FashionMNIST(str(data_dir), train=True, download=True)
            FashionMNIST(str(data_dir), train=False, download=True)
    except Exception as err:  # noqa: BLE001 - any network failure becomes one line
        raise download_failed("fmnist", data_dir, err) from None
    return _as_tensors(data_dir)


DATASETS.add("fmnist", DatasetInfo(
    name="fmnist", classes=CLASSES, shape=(1, 28, 28), crop_padding=2, flip=True,
    load=load_fmnist, check=check_fmnist,
    source=f"--data-dir, else {DEBIAN_DIR} (Debian dataset-fashion-mnist), else --download",
))

__all__ = ["check_fmnist", "load_fmnist"]
