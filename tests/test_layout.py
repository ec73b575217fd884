"""The layout keeps its rules: small modules with short functions, no import cycle (imports
inside functions included), and one plugin loader for methods, presets and datasets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmark", "methods")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, name: str) -> set[str]:
    """Project modules imported anywhere in the file (module level or inside a function)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:  # `from pkg import module` names the module itself
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _parents(name: str) -> set[str]:
    """A module's enclosing packages: importing it runs their __init__ first, which is not an
    edge of the code's own design (a package may import its submodules)."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_module_is_over_300_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: k for n, k in long.items() if k > MAX_MODULE_LINES} == {}


def test_no_function_is_over_50_lines():
    long = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{name}.{node.name}"] = length
    assert long == {}


def test_no_import_cycle_even_inside_functions():
    graph = {name: _imports(path, name) - _parents(name) for name, path in MODULES.items()}
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", ["methods", "benchmark.presets", "benchmark.core.datasets"])
def test_plugin_folders_use_the_one_loader(package: str):
    init = MODULES[package].read_text()
    assert "load_plugins(" in init and "importlib" not in init and "pkgutil" not in init


def test_the_harness_never_imports_a_plugin_module():
    """Plugins import the harness; the harness reaches them only through the catalog's loader
    (so a broken plugin file is one line, and no cycle runs through a plugin)."""
    plugins = {n for n in MODULES if n.startswith(("methods", "benchmark.presets."))}
    for name, path in MODULES.items():
        if name.startswith(("methods", "benchmark.presets")):
            continue
        assert not (_imports(path, name) & plugins), name


# Packages from the bottom up: a module imports only from its own layer or the ones below.
LAYERS = (("benchmark.common",), ("benchmark.core",), ("benchmark.catalog", "benchmark.presets"),
          ("benchmark.runs",), ("benchmark.planning",), ("benchmark.tuning",),
          ("benchmark.report",), ("benchmark.cli", "benchmark.devtools", "benchmark"))


def _layer(name: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes if p != "benchmark"):
            return i
    return len(LAYERS) - 1 if name == "benchmark" or name.startswith("benchmark.") else None


def test_imports_go_down_the_layers():
    upward = []
    for name, path in MODULES.items():
        mine = _layer(name)
        if mine is None:  # methods/ (plugins) import the harness freely
            continue
        for target in _imports(path, name) - _parents(name):
            theirs = _layer(target)
            if theirs is not None and theirs > mine:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_the_cli_starts_without_torch_or_any_plugin():
    """Commands import what they need when they run, inside the CLI's one-line error handling:
    `fairbench --help` stays fast and a broken plugin file (a dataset loader too) is one line."""
    import subprocess
    import sys

    code = ("import sys, benchmark.cli.main; print(sorted(m for m in ('torch', 'methods', "
            "'benchmark.core.datasets', 'benchmark.presets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "[]"
