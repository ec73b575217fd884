"""Import robustbench despite its PyPI packaging trap: keep this alias here and nowhere else.

robustbench 1.1.1 does `import autoattack`, but its dependency as published on PyPI
(`pyautoattack` 0.2.0) installs the module `pyautoattack`. Registering the two module names
before the first robustbench import makes every robustbench import work. robustbench also needs
`pkg_resources`, hence `setuptools<81` in pyproject.toml.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def _alias_autoattack() -> None:
    if "autoattack" not in sys.modules:
        sys.modules["autoattack"] = importlib.import_module("pyautoattack")
        sys.modules["autoattack.state"] = importlib.import_module("pyautoattack.state")


def import_robustbench(module: str = "robustbench") -> ModuleType:
    """Import `robustbench` (or one of its submodules) after aliasing `autoattack`."""
    _alias_autoattack()
    return importlib.import_module(module)
