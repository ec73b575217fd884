"""Which steps the GPU check has and what they are called: the models and speed variants
trained, the presets evaluated, and the runs of `make bench` (each timed as a method step)."""

from __future__ import annotations

from benchmark.catalog import make_method, method_registry
from benchmark.core.protocol import Protocol

CHECKED_MODELS = ("preact_resnet18", "wrn_34_10")
VARIANTS = {  # label -> the three speed flags (the presets use "channels_last")
    "fp32": {"channels_last": False, "amp": False, "compile": False},
    "bf16": {"channels_last": False, "amp": True, "compile": False},
    "channels_last": {"channels_last": True, "amp": False, "compile": False},
    "compile": {"channels_last": True, "amp": False, "compile": True},
}
PRESETS = ("quick", "full")


def variant_check_name(model: str, variant: str) -> str:
    """The step training `model` with speed variant `variant`."""
    return f"train {model} {variant}"


def method_check_name(method: str) -> str:
    """The step training one epoch of `method`."""
    return f"train method {method}"


def eval_check_name(preset: str) -> str:
    """The step evaluating with `preset`'s attack settings."""
    return f"evaluate {preset} settings"


def bench_runs(p: Protocol) -> list[str]:
    """The runs of `make bench`: the core methods and, transitively, their warm-start bases."""
    registry = method_registry()
    runs = [n for n in registry.names() if registry.get(n).core]
    for name in runs:  # grows while it is read: bases of bases
        warm = make_method(name, p).warm_start(p)
        if warm is not None and warm[0] not in runs:
            runs.append(warm[0])
    return runs
