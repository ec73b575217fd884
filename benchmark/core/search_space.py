"""Search spaces: what a method may tune, declared in its own file, typed and range-checked like
its hyperparameters.

A method declares `search_space = {"beta": LogRange(1, 12)}` over its own main knobs (those its
paper tunes); every method also gets the harness's `lr_factor` f (LR_FACTOR): its learning rates
times f and its weight decay divided by f. For SGD with momentum and weight decay that trains
exactly as the method's loss multiplied by f would (the step is -f lr (g + wd/f w) =
-lr (f g + wd w), and the momentum buffer scales with it), so a method whose official loss has
another scale is trained at its own effective step instead of the shared one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from benchmark.common.coerce import coerce, field_types
from benchmark.common.settings import field_ranges

LR_FACTOR_KEY = "lr_factor"
SIGNIFICANT = 3  # sampled numbers are rounded to 3 significant digits (labels show them whole)


def _round(value: float) -> float:
    if value == 0:
        return 0.0
    return round(value, SIGNIFICANT - 1 - math.floor(math.log10(abs(value))))


@dataclass(frozen=True)
class LogRange:
    """Values from `low` to `high`, spread evenly on a log scale (integers if `integer`)."""

    low: float
    high: float
    integer: bool = False

    def value(self, u: float) -> float | int:
        """The value at quantile u in [0, 1)."""
        x = self.low * (self.high / self.low) ** u
        return int(round(x)) if self.integer else _round(x)

    def problems(self) -> list[str]:
        if not (0 < self.low < self.high and math.isfinite(self.high)):
            return [f"LogRange needs 0 < low < high, got {self.low}..{self.high}"]
        return []

    def ends(self) -> tuple[Any, ...]:
        return self.low, self.high


@dataclass(frozen=True)
class Choice:
    """One of a few values, each equally likely."""

    values: tuple[Any, ...]

    def value(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def problems(self) -> list[str]:
        return [] if self.values else ["Choice needs at least one value"]

    def ends(self) -> tuple[Any, ...]:
        return self.values


Dimension = LogRange | Choice
LR_FACTOR = LogRange(1 / 8, 8.0)  # absorbs a 7x loss scale either way (TRADES+CFA ~1/5, WAT ~2)


def dimensions(method_cls: type) -> dict[str, Dimension]:
    """The method's whole search space: the learning-rate factor, then its own knobs."""
    return {LR_FACTOR_KEY: LR_FACTOR, **getattr(method_cls, "search_space", {})}


def space_problems(method_cls: type) -> list[str]:
    """Why a method's declared search space is invalid: a key that is not one of its
    hyperparameters, an empty or inverted range, or an end outside the field's declared range."""
    name = getattr(method_cls, "name", method_cls.__name__)
    types, ranges = field_types(method_cls), field_ranges(method_cls)
    problems = []
    for key, dim in getattr(method_cls, "search_space", {}).items():
        if key not in types:
            problems.append(f"{name}.search_space names {key!r}, not a hyperparameter of it")
            continue
        problems += [f"{name}.search_space[{key!r}]: {p}" for p in dim.problems()]
        for end in dim.ends():
            value = coerce(end, types[key], f"{name}.{key}")
            if key in ranges and (why := ranges[key].problem(value)):
                problems.append(f"{name}.search_space[{key!r}] reaches {end!r}, which {why}")
    return problems


def configuration(method_cls: type, point: tuple[float, ...]) -> dict[str, Any]:
    """The configuration at a point of the unit cube (one coordinate per dimension)."""
    dims = dimensions(method_cls)
    return {key: dim.value(u) for (key, dim), u in zip(dims.items(), point, strict=True)}


def default_configuration(method_cls: type) -> dict[str, Any]:
    """lr_factor 1 and the method's own defaults: always the first configuration tried."""
    defaults = {f.name: f.default for f in dataclasses.fields(method_cls)}
    own = {key: defaults.get(key) for key in getattr(method_cls, "search_space", {})}
    return {LR_FACTOR_KEY: 1.0, **own}
