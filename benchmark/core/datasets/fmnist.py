"""Fashion-MNIST: `--data-dir`, else the Debian package `dataset-fashion-mnist`, else download."""

from __future__ import annotations

import gzip
import math
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

from torchvision.datasets import FashionMNIST

from benchmark.common.errors import UserError
from benchmark.core.datasets.base import (
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


# The shape of each IDX file (uint8 data): a header of magic + big-endian int32 dims, then data.
SHAPES = {"train-images-idx3-ubyte": (60000, 28, 28), "train-labels-idx1-ubyte": (60000,),
          "t10k-images-idx3-ubyte": (10000, 28, 28), "t10k-labels-idx1-ubyte": (10000,)}


def corrupt_file(path: Path, why: str) -> UserError:
    """The one-line error for a damaged data file, naming it and the fix."""
    return UserError(
        f"fmnist file {path} is truncated or corrupt ({why}); delete or replace it "
        f"(`apt-get install --reinstall dataset-fashion-mnist` restores {DEBIAN_DIR}), "
        "or pass --data-dir DIR"
    )


def _idx_problem(path: Path, shape: tuple[int, ...]) -> str | None:
    """Why `path` is not a uint8 IDX file of `shape` (wrong header or size), or None if it is."""
    header = struct.pack(f">I{len(shape)}I", 0x800 + len(shape), *shape)
    with open(path, "rb") as fh:
        if fh.read(len(header)) != header:
            return f"IDX header is not uint8 {'x'.join(map(str, shape))}"
    size, want = path.stat().st_size, len(header) + math.prod(shape)
    return None if size == want else f"{size} bytes, expected {want}"


def _check_idx(path: Path, staged: Path, shape: tuple[int, ...]) -> None:
    """Raise the one-line error naming `path` unless `staged` (its copy) is a valid IDX file."""
    why = _idx_problem(staged, shape)
    if why:
        raise corrupt_file(path, why)


def _copy_idx(path: Path, dest: Path, shape: tuple[int, ...]) -> None:
    """Copy (gunzipping .gz) `path` to `dest` via a temp file of this process's own (processes
    staging the same file at once never share one) that never outlives a failure."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    tmp = Path(name)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        _check_idx(path, tmp, shape)
        tmp.replace(dest)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise corrupt_file(path, f"{type(err).__name__}: {err}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _stage_raw(source: Path, root: Path) -> bool:
    """Copy (extracting .gz) the four IDX files from `source` into torchvision's raw folder.

    The Debian package's .gz files do not match torchvision's md5 sums, so we extract them
    ourselves instead of going through torchvision's download-and-verify path. A truncated or
    corrupt file (bad gzip stream, IDX header or size) is a one-line UserError naming it.
    """
    raw = root / "FashionMNIST" / "raw"
    if all((raw / f).exists() for f in FILES):
        for f in FILES:
            _check_idx(raw / f, raw / f, SHAPES[f])
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
        _copy_idx(path, raw / f, SHAPES[f])
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
