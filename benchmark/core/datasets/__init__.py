"""Datasets: importing this package registers every loader module in it."""

from benchmark.common.plugins import load_plugins
from benchmark.core.datasets.base import (
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

load_plugins(__name__, __path__, skip=("base",))

__all__ = ["DATASETS", "DatasetInfo", "Splits", "TensorLoader", "augment", "balanced_indices",
           "default_data_dir", "load_splits", "to_float"]
