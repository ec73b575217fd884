"""Every registry of the harness with its plugins loaded, and the lookups that combine them.

Plugin folders register themselves when imported (methods/, benchmark/presets/,
benchmark/core/datasets/); this module imports them on first use, so the harness's own modules
never import a plugin and no plugin imports this module.
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmark.common.errors import UserError
from benchmark.common.registry import Registry
from benchmark.core.datasets import DATASETS, DatasetInfo
from benchmark.core.method import METHODS, Method, build_method
from benchmark.core.models import MODELS
from benchmark.core.protocol import PRESETS, Protocol, apply_overrides, preset_key

METHOD_PACKAGE = "methods"            # one file per training method
PRESET_PACKAGE = "benchmark.presets"  # one file of presets per dataset


def method_registry() -> Registry[type[Method]]:
    """The method registry, with every file of methods/ registered."""
    importlib.import_module(METHOD_PACKAGE)
    return METHODS


def preset_registry() -> Registry[Protocol]:
    """The preset registry ("<dataset>/<preset>"), with every preset module registered."""
    importlib.import_module(PRESET_PACKAGE)
    return PRESETS


def dataset_registry() -> Registry[DatasetInfo]:
    return DATASETS


def model_registry() -> Registry[Any]:
    return MODELS


def make_method(name: str, protocol: Protocol, overrides: dict[str, Any] | None = None) -> Method:
    """The registered method `name` with the preset's defaults and `overrides`, validated."""
    return build_method(method_registry().get(name), protocol, overrides)


def get_protocol(dataset: str, preset: str, overrides: dict[str, Any] | None = None) -> Protocol:
    """A preset's protocol with `overrides` applied, checked against its dataset and model."""
    key = preset_key(dataset, preset)
    if key not in preset_registry():
        have = [k.split("/")[1] for k in PRESETS.names() if k.startswith(dataset + "/")]
        if not have:
            DATASETS.get(dataset)  # unknown dataset: one-line error naming the datasets
            raise UserError(f"dataset {dataset!r} has no presets yet")
        raise UserError(f"unknown preset {preset!r} for {dataset}; available: {', '.join(have)}")
    protocol = apply_overrides(PRESETS.get(key), overrides or {})
    MODELS.get(protocol.model)  # unknown model: one-line error before any work
    if protocol.teacher_model is not None:
        MODELS.get(protocol.teacher_model)
    return protocol.validate_for(DATASETS.get(dataset).num_classes)
