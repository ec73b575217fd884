"""The base of every file schema: a dataclass that writes plain JSON (`as_dict`) and reads it
back (`from_dict`), refusing data that lacks a required key (the file is then reported as
damaged, never half-read)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T", bound="Schema")


class SchemaError(ValueError):
    """A file's JSON does not hold what its schema requires."""


class Schema:
    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: Any) -> T:
        if not isinstance(data, dict):
            raise SchemaError(f"expected a JSON object for {cls.__name__}")
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise SchemaError(f"{cls.__name__} lacks {', '.join(missing)}")
        names = {f.name for f in fields}
        return cls(**{k: v for k, v in data.items() if k in names})
