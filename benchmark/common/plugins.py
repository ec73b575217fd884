"""The one plugin loader: import every module of a plugin folder (methods/, benchmark/presets/,
benchmark/core/datasets/), so that each file registers itself. A file that cannot be imported is
one line naming it, its line and the fix, never a traceback."""

from __future__ import annotations

import importlib
import os
import pkgutil
import traceback
from collections.abc import Iterable

from benchmark.common.errors import UserError


def _why(err: Exception, filename: str) -> str:
    """`SyntaxError at line N: msg` (or the exception's type, its line in `filename`, message)."""
    if isinstance(err, SyntaxError):
        line, msg = err.lineno, err.msg
    else:
        lines = [f.lineno for f in traceback.extract_tb(err.__traceback__)
                 if f.filename == filename]
        line, msg = (lines[-1] if lines else "?"), str(err)
    return " ".join(f"{type(err).__name__} at line {line}: {msg}".split())


def load_plugins(package_name: str, path: Iterable[str], skip: Iterable[str] = ()) -> None:
    """Import every module of the package whose name does not start with `_` (nor is in
    `skip`); a module that fails to import is a one-line UserError."""
    folder = package_name.replace(".", "/")
    for mod in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if mod.name.startswith("_") or mod.name in set(skip):
            continue
        try:
            importlib.import_module(f"{package_name}.{mod.name}")
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - any import failure becomes one line
            filename = os.path.join(getattr(mod.module_finder, "path", ""), f"{mod.name}.py")
            raise UserError(f"{folder}/{mod.name}.py cannot be imported ({_why(err, filename)}); "
                            f"fix it or move it out of {folder}/") from None
