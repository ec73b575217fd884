"""Read the official-recipe facts a method's docstring states, for tests/test_recipes.py.

A docstring states each recipe as a header and `key value` facts separated by `;`:

    Official recipe, cifar10 (owner/repo@commit, file and where):
        model wrn_34_10; epochs 100; lr 0.1; lr_milestones 75:0.1 90:0.01; eps 8/255; beta 6

Keys are the recipe's protocol fields, the method's hyperparameters, and `base.NAME` for the
warm-start base's; numbers may be fractions (8/255), milestones `EPOCH:FACTOR`, tuples
numbers separated by spaces.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

HEADER = re.compile(r"Official recipe, (\w+) \((.+?)\):\n", re.DOTALL)


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"(\d+:[\d.e-]+\s*)+", text):
        return tuple((int(e), float(f)) for e, f in (m.split(":") for m in text.split()))
    try:
        numbers = [float(Fraction(part)) for part in text.split()]
    except ValueError:
        return text
    return numbers[0] if len(numbers) == 1 else tuple(numbers)


def _indented(lines: list[str]) -> list[str]:
    """The facts: the indented lines right after the header."""
    out = []
    for line in lines:
        if not line.startswith((" ", "\t")):
            break
        out.append(line)
    return out


def stated_recipes(doc: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """{dataset: (source, {key: value})} for every recipe the docstring states."""
    out = {}
    for match in HEADER.finditer(doc):
        lines = doc[match.end():].split("\n")
        body = " ".join(line for line in _indented(lines))
        facts = {}
        for item in filter(None, (part.strip() for part in " ".join(body.split()).split(";"))):
            key, _, value = item.partition(" ")
            facts[key] = _value(value.strip())
        source = re.sub(r"-\n\s*", "-", match.group(2))  # a name wrapped at a hyphen
        out[match.group(1)] = (" ".join(source.split()), facts)
    return out


def same(a: Any, b: Any) -> bool:
    """Equal as the recipe and the docstring write them (numbers to 1e-9, milestones too)."""
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
