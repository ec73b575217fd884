"""Datasets: importing this package registers every loader module in it."""

import importlib
import pkgutil

from benchmark.datasets.base import (
    DATASETS,
    DatasetInfo,
    Splits,
    TensorLoader,
    augment,
    balanced_indices,
    default_data_dir,
    load_splits,
    to_float,
)

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["DATASETS", "DatasetInfo", "Splits", "TensorLoader", "augment", "balanced_indices",
           "default_data_dir", "load_splits", "to_float"]
