"""Training methods: one file per method. Importing this package registers every file in it."""

from __future__ import annotations

import importlib
import os
import pkgutil
import traceback
from collections.abc import Iterable

from benchmark.errors import UserError


def _why(err: Exception, filename: str) -> str:
    """`SyntaxError at line N: msg` (or the exception's type, its line in `filename`, message)."""
    if isinstance(err, SyntaxError):
        line, msg = err.lineno, err.msg
    else:
        lines = [f.lineno for f in traceback.extract_tb(err.__traceback__)
                 if f.filename == filename]
        line, msg = (lines[-1] if lines else "?"), str(err)
    return " ".join(f"{type(err).__name__} at line {line}: {msg}".split())


def import_all(package_name: str, path: Iterable[str]) -> None:
    """Import every module of the package not starting with `_`; a broken one is a UserError."""
    folder = package_name.replace(".", "/")
    for mod in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{package_name}.{mod.name}")
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - any import failure becomes one line
            filename = os.path.join(getattr(mod.module_finder, "path", ""), f"{mod.name}.py")
            raise UserError(f"{folder}/{mod.name}.py cannot be imported ({_why(err, filename)}); "
                            f"fix it or move it out of {folder}/") from None


import_all(__name__, __path__)
