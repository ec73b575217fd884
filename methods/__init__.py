"""Training methods: one file per method. Importing this package registers every file in it."""

from benchmark.common.plugins import load_plugins

load_plugins(__name__, __path__)
