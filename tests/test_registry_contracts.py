"""The contract every registered dataset, model and preset keeps, enumerated from the
registries (as tests/test_method_contract.py does for methods): a new file is checked with no
edit here, and a dataset without a tiny fake in its real on-disk format fails until it has one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fake_datasets import write_cifar10, write_cifar100, write_imagenette, write_svhn

from benchmark.catalog import dataset_registry, make_method, model_registry, preset_registry
from benchmark.common.errors import UserError
from benchmark.core.datasets import load_splits
from benchmark.core.models import build_model
from benchmark.planning.plan import plan

# dataset -> a writer of tiny files in its real on-disk format (None: the installed real data)
FAKE_FILES = {"cifar10": write_cifar10, "cifar100": write_cifar100, "svhn": write_svhn,
              "imagenette": write_imagenette, "fmnist": None}
DATASETS = dataset_registry().names()
MODELS = model_registry().names()
PRESETS = preset_registry().names()


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_loads_class_balanced_splits_of_its_declared_shape(name: str, tmp_path: Path):
    assert name in FAKE_FILES, f"{name}: add a writer of tiny files in its on-disk format"
    info = dataset_registry().get(name)
    assert info.num_classes == len(set(info.classes)) >= 2 and len(info.shape) == 3
    assert info.source and info.check is not None  # `fairbench run` checks files first
    writer = FAKE_FILES[name]
    data_dir = writer(tmp_path) if writer is not None else None
    splits = load_splits(name, seed=0, val_per_class=1, train_per_class=1, test_per_class=1,
                         data_dir=data_dir)
    for x, y in ((splits.train_x, splits.train_y), (splits.val_x, splits.val_y),
                 (splits.test_x, splits.test_y)):
        assert tuple(x.shape[1:]) == info.shape and len(x) == len(y)
        assert torch.bincount(y, minlength=info.num_classes).tolist() == [1] * info.num_classes
        assert x.dtype == torch.uint8 or (x.min() >= 0 and x.max() <= 1)


@pytest.mark.parametrize("name", MODELS)
def test_model_builds_for_some_dataset_and_gives_logits(name: str):
    fn = model_registry().get(name)
    assert (fn.__doc__ or "").strip(), f"{name}: a docstring (`fairbench list models`)"
    built = 0
    for dataset in DATASETS:
        info = dataset_registry().get(dataset)
        try:
            model = build_model(name, info.num_classes, info.shape).eval()
        except UserError:
            continue  # this model does not take this dataset's shape (one line says so)
        with torch.no_grad():
            logits = model(torch.rand(2, *info.shape))
        assert logits.shape == (2, info.num_classes) and torch.isfinite(logits).all()
        built += 1
    assert built, f"{name} takes no registered dataset's shape"


@pytest.mark.parametrize("key", PRESETS)
def test_preset_is_consistent_and_plans_every_method(key: str, tmp_path: Path):
    protocol = preset_registry().get(key).validate()
    assert key == f"{protocol.dataset}/{protocol.preset}"
    info = dataset_registry().get(protocol.dataset)
    build_model(protocol.model, info.num_classes, info.shape)  # the model takes the data
    for method, defaults in protocol.method_defaults.items():
        make_method(method, protocol)  # a registered method with real hyperparameters
        assert defaults
    methods = [m for m in _methods() if not m.startswith("_")]
    waves = plan(dataset=protocol.dataset, preset=protocol.preset, methods=methods, seeds=[0],
                 results=str(tmp_path))
    planned = {run.job.method for wave in waves for run in wave}
    assert set(methods) <= planned  # every method runs under every preset, bases resolved


def _methods() -> list[str]:
    from benchmark.catalog import method_registry

    return method_registry().names()
