"""One generic registry: register / get / list, with fnmatch patterns."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import reprlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from benchmark.common.errors import UserError

T = TypeVar("T")


def origin(obj: object) -> str:
    """Where `obj` is defined: its source file (relative to the cwd if under it), else its repr."""
    try:
        path = Path(inspect.getfile(obj)).resolve()  # type: ignore[arg-type]
    except TypeError:  # instances and builtins have no file
        return reprlib.repr(obj)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


class Registry(Generic[T]):
    """Maps names to objects of one kind (datasets, models, methods, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under `name` (duplicates are an error)."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Register `obj` as `name`; another object under the same name is a one-line UserError."""
        if name in self._items and self._items[name] is not obj:
            raise UserError(f"duplicate {self.kind} name {name!r}: {origin(self._items[name])} and "
                            f"{origin(obj)}; rename one")
        self._items[name] = obj

    def get(self, name: str) -> T:
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(
                f"unknown {self.kind} {name!r}{hint}; available: {', '.join(self.names())}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def match(self, patterns: str | list[str]) -> list[str]:
        """Names matching any of the fnmatch patterns, in the given order; unmatched is an error."""
        if isinstance(patterns, str):
            patterns = [p for p in patterns.replace(",", " ").split() if p]
        out: list[str] = []
        for pattern in patterns:
            hits = [n for n in self.names() if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                self.get(pattern)  # raises the one-line error with a suggestion
            out.extend(h for h in hits if h not in out)
        return out

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
