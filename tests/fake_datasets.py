"""Tiny files in the real on-disk formats of CIFAR-10/100 (pickles), SVHN (.mat) and
Imagenette (JPEG folders), for the loaders' tests and the GPU check's real-data step."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from benchmark.core.datasets.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES
from benchmark.core.datasets.imagenette import WNIDS


def _cifar_rows(labels: np.ndarray, start: int) -> np.ndarray:
    """(N, 3072) uint8 rows: R = 20 * label, G = pixel index % 256, B = image index % 256."""
    n = len(labels)
    img = np.empty((n, 3, 32, 32), dtype=np.uint8)
    img[:, 0] = (20 * labels % 256)[:, None, None]
    img[:, 1] = (np.arange(1024) % 256).reshape(32, 32)
    img[:, 2] = ((start + np.arange(n)) % 256)[:, None, None]
    return img.reshape(n, 3072)


def dump_pickle(obj: object, path: Path, protocol: int = 2) -> None:
    """Protocol 2 as the official (Python 2) files; Python 3 copies use newer ones."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def write_cifar10(root: Path, train_per_class: int = 10, test_per_class: int = 3) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = np.tile(np.arange(10), train_per_class)
    start = 0
    for i, part in enumerate(np.array_split(labels, 5), 1):
        dump_pickle({"batch_label": f"training batch {i} of 5", "labels": part.tolist(),
                    "data": _cifar_rows(part, start),
                    "filenames": [f"img{start + j}.png" for j in range(len(part))]},
                    folder / f"data_batch_{i}")
        start += len(part)
    test = np.tile(np.arange(10), test_per_class)
    dump_pickle({"batch_label": "testing batch 1 of 1", "labels": test.tolist(),
                "data": _cifar_rows(test, 200), "filenames": []}, folder / "test_batch")
    dump_pickle({"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": 10, "num_vis": 3072},
                folder / "batches.meta")
    return root


def write_cifar100(root: Path, train_per_class: int = 3, test_per_class: int = 2) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, per in (("train", train_per_class), ("test", test_per_class)):
        fine = np.tile(np.arange(100), per)
        dump_pickle({"filenames": [], "batch_label": name, "fine_labels": fine.tolist(),
                    "coarse_labels": (fine // 5).tolist(), "data": _cifar_rows(fine, 0)},
                    folder / name, pickle.HIGHEST_PROTOCOL)
    dump_pickle({"fine_label_names": list(CIFAR100_CLASSES),
                "coarse_label_names": [f"super{i}" for i in range(20)]}, folder / "meta", 4)
    return root


def write_svhn(root: Path, n_train: int = 60, n_test: int = 30) -> Path:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        digits = np.arange(n) % 10
        x = np.zeros((32, 32, 3, n), dtype=np.uint8)
        x[:, :, 0, :] = (20 * digits)[None, None, :]
        x[:, :, 1, :] = (np.arange(32) * 8)[None, :, None]  # increases left to right
        y = np.where(digits == 0, 10, digits).reshape(-1, 1).astype(np.uint8)
        savemat(str(root / f"{name}_32x32.mat"), {"X": x, "y": y})
    return root


def write_imagenette(root: Path, n_train: int = 5, n_val: int = 2) -> Path:
    from PIL import Image

    for split, n in (("train", n_train), ("val", n_val)):
        for c, wnid in enumerate(WNIDS):
            folder = root / "imagenette2-160" / split / wnid
            folder.mkdir(parents=True)
            for i in range(n):
                img = Image.new("RGB", (48, 40), (25 * c, 100, 10 * i))
                img.save(folder / f"{wnid}_{i}.JPEG", quality=95)
    return root
