"""Turn user-given values (--set strings, YAML scalars and lists) into a field's declared type.

Protocol fields and method hyperparameters are dataclass fields with type hints; every override
goes through `coerce`, so `trades.beta=6` and YAML `beta: 6` both become 6.0 (one run key), and a
value that does not fit (`epochs: 2.5`, `begin_epoch=one`) is a one-line error, never a late
traceback.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from benchmark.common.errors import UserError

NONE_WORDS = ("none", "null")
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


def field_types(cls: type) -> dict[str, Any]:
    """{field name: type hint} of a dataclass (Any where a hint cannot be resolved)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - a contributor's unresolvable hint: no checking
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """(the hint without None, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        allows_none = len(args) < len(typing.get_args(hint))
        return (args[0] if len(args) == 1 else Any), allows_none
    return hint, hint is Any


def _scalar(value: Any, kind: Any) -> Any:
    """One value as `kind` (bool, int, float, str); ValueError if it does not fit."""
    text = value.strip() if isinstance(value, str) else None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text is not None:
            return int(text)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if text is not None:
            return float(text)
    elif kind is str:
        if isinstance(value, str):
            return value
    else:
        return value  # Any or a type we do not check
    raise ValueError


def _tuple(value: Any, hint: Any) -> tuple:
    """tuple[X, ...] or tuple[X, Y] from a list/tuple, or from "a,b" / "(a, b)" / "[a, b]" /
    "e:f,e:f" strings."""
    args = typing.get_args(hint)
    items = value
    if isinstance(value, str):
        text = value.strip()
        if text[:1] + text[-1:] in ("()", "[]"):
            text = text[1:-1]
        items = [v.strip().strip("'\"") for v in text.split(",") if v.strip()]
        if args and typing.get_origin(args[0]) is tuple:  # pairs written "e:f"
            items = [v.split(":") for v in items]
    if not isinstance(items, (list, tuple)):
        raise ValueError
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce_value(v, args[0]) for v in items)
    if args and len(args) != len(items):
        raise ValueError
    return tuple(coerce_value(v, a) for v, a in zip(items, args or [Any] * len(items),
                                                    strict=True))


def coerce_value(value: Any, hint: Any) -> Any:
    """`value` as `hint`; ValueError when it does not fit."""
    kind, allows_none = _split_optional(hint)
    if value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS):
        if allows_none:
            return None
        raise ValueError
    if typing.get_origin(kind) is tuple or kind is tuple:
        return _tuple(value, kind)
    return _scalar(value, kind)


def _type_name(hint: Any) -> str:
    if typing.get_args(hint):  # int | None, tuple[str, ...]
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", str(hint))


def coerce(value: Any, hint: Any, name: str) -> Any:
    """`value` as the declared type `hint` of field `name`, or a one-line UserError."""
    try:
        return coerce_value(value, hint)
    except (ValueError, TypeError):
        raise UserError(f"bad value {value!r} for {name} (expected {_type_name(hint)})") \
            from None
