"""Presets: importing this package registers every preset module in it (one per dataset)."""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name.startswith("_"):
        continue  # shared helpers, not a dataset's presets
    importlib.import_module(f"{__name__}.{_mod.name}")
