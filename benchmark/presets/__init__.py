"""Presets: importing this package registers every preset module in it (one per dataset;
`_` modules are shared helpers)."""

from benchmark.common.plugins import load_plugins

load_plugins(__name__, __path__)
