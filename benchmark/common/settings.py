"""Declared valid ranges of protocol fields and method hyperparameters, and the one validator.

A field declares its range where it is defined:

    eps: float = setting(8 / 255, gt=0, le=1)
    reweight: str = setting("uniform", choices=("uniform", "gair"))

`check_settings` checks every declared range of a dataclass instance (and that every float is
finite), so `--set eps=-0.1`, `eps=nan` or `trades.beta=-1` is refused in one line before any
directory is created. A subclass that only changes a default (`tau1: float = 0.07`) keeps the
range its parent declared.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from benchmark.common.errors import UserError

RANGE_KEY = "range"


@dataclass(frozen=True)
class Range:
    """Bounds (inclusive ge/le, exclusive gt/lt), allowed choices, or a custom rule.

    For a tuple value, bounds and choices apply to each element; `rule` sees the whole value and
    returns a problem description or None.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    rule: Callable[[Any], str | None] | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        low = f"> {self.gt:g}" if self.gt is not None else \
            (f">= {self.ge:g}" if self.ge is not None else "")
        high = f"< {self.lt:g}" if self.lt is not None else \
            (f"<= {self.le:g}" if self.le is not None else "")
        return " and ".join(p for p in (low, high) if p) or "valid"

    def _element_ok(self, v: Any) -> bool:
        if self.choices is not None:
            return v in self.choices
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return True
        return not ((self.gt is not None and not v > self.gt)
                    or (self.ge is not None and not v >= self.ge)
                    or (self.lt is not None and not v < self.lt)
                    or (self.le is not None and not v <= self.le))

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of range, or None if it is fine."""
        if value is None:
            return None  # None-able fields are checked by their type (coerce)
        items = value if isinstance(value, (tuple, list)) else (value,)
        bad = [v for v in items if not self._element_ok(v)]
        if bad:
            return f"must be {self.describe()}" + (f" (bad: {bad[0]!r})" if len(items) > 1 else "")
        return self.rule(value) if self.rule is not None else None


def setting(default: Any, *, gt: float | None = None, ge: float | None = None,
            lt: float | None = None, le: float | None = None,
            choices: Iterable[Any] | None = None,
            rule: Callable[[Any], str | None] | None = None) -> Any:
    """A dataclass field with a default and its declared valid range."""
    rng = Range(gt, ge, lt, le, tuple(choices) if choices is not None else None, rule)
    return field(default=default, metadata={RANGE_KEY: rng})


def field_ranges(cls: type) -> dict[str, Range]:
    """{field: Range} of a dataclass, looking up the MRO for fields whose default was overridden
    without repeating the range."""
    ranges: dict[str, Range] = {}
    for f in dataclasses.fields(cls):
        for klass in cls.__mro__:
            declared = getattr(klass, "__dataclass_fields__", {}).get(f.name)
            if declared is not None and RANGE_KEY in declared.metadata:
                ranges[f.name] = declared.metadata[RANGE_KEY]
                break
    return ranges


def _non_finite(value: Any) -> bool:
    items = value if isinstance(value, (tuple, list)) else (value,)
    flat = [x for v in items for x in (v if isinstance(v, (tuple, list)) else (v,))]
    return any(isinstance(x, float) and not math.isfinite(x) for x in flat)


def check_settings(obj: Any, prefix: str = "") -> list[str]:
    """Every problem of a dataclass instance's values: non-finite floats, declared ranges."""
    ranges = field_ranges(type(obj))
    problems = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if _non_finite(value):
            problems.append(f"{name}={value!r} must be finite")
        elif f.name in ranges and (why := ranges[f.name].problem(value)):
            problems.append(f"{name}={value!r} {why}")
    return problems


def validate_settings(obj: Any, prefix: str = "") -> None:
    """Raise one UserError naming every out-of-range value of `obj`."""
    problems = check_settings(obj, prefix)
    if problems:
        raise UserError("; ".join(problems) + " (fix with --set or the preset)")


def milestones_rule(value: Any) -> str | None:
    """lr_milestones: (epoch >= 0, factor > 0) pairs."""
    for epoch, factor in value:
        if epoch < 0 or not factor > 0:
            return "must be (epoch >= 0, factor > 0) pairs, e.g. 60:0.1,90:0.01"
    return None
