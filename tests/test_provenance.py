"""Run keys depend on what the code computes, not on where it sits: moving a file, renaming a
module, editing a comment or a docstring keep the digest; any edit of executed code changes it."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from benchmark.runs.code_digest import files_digest, source_digest
from benchmark.runs.provenance import REPO_ROOT, _harness_files, code_digests

SOURCE = '''"""Module docstring."""
import torch
from benchmark.core.losses import kl_per_example as kl


def step(x, scale=2.0):
    """Docstring."""
    # a comment
    return torch.sign(x) * scale + kl(x, x)
'''


def _same(*sources: str) -> bool:
    return len({source_digest([s]) for s in sources}) == 1


def test_comments_docstrings_and_layout_compute_nothing():
    assert _same(SOURCE,
                 SOURCE.replace("# a comment", "# another comment"),
                 SOURCE.replace('"""Docstring."""', '"""Another docstring,\n    two lines."""'),
                 SOURCE.replace('"""Module docstring."""\n', ""),
                 SOURCE.replace("return torch.sign(x) * scale", "return (torch.sign(x)\n"
                                "            * scale)"))


def test_renaming_or_moving_own_modules_keeps_the_digest():
    assert _same(SOURCE, SOURCE.replace("benchmark.core.losses", "benchmark.core.divergences"),
                 SOURCE.replace("from benchmark.core.losses", "from .losses"))


@pytest.mark.parametrize("edit", [
    ("scale=2.0", "scale=3.0"),                        # a default
    ("torch.sign(x) * scale", "torch.sign(x) / scale"),  # an operator
    ("import torch", "import numpy as torch"),          # what an external name is
    ("kl_per_example as kl", "cw_margin as kl"),        # which own function a name binds
    ("def step(x, scale=2.0):", "def step(x, scale=2.0, *, extra=None):"),
])
def test_any_edit_of_executed_code_changes_the_digest(edit):
    assert not _same(SOURCE, SOURCE.replace(*edit))


def test_the_order_of_statements_counts_and_files_are_a_set():
    a, b = "A = 1\nB = A * 2\nA = 3\n", "A = 3\nB = A * 2\nA = 1\n"
    assert source_digest([a]) != source_digest([b])
    assert source_digest([a, b]) == source_digest([b, a])


def test_the_digest_ignores_fields_a_python_version_adds_empty():
    from benchmark.runs.code_digest import _canonical

    node = ast.parse("def f(x):\n    return x\n").body[0]
    node.type_params = []  # what Python 3.12 adds to every definition
    plain = ast.parse("def f(x):\n    return x\n").body[0]
    if hasattr(plain, "type_params"):
        del plain.type_params
    assert _canonical(node) == _canonical(plain)


def test_moving_a_harness_file_keeps_the_digest_and_an_edit_changes_it(tmp_path: Path):
    core = tmp_path / "benchmark" / "core"
    shutil.copytree(REPO_ROOT / "benchmark" / "core", core)
    files = lambda: sorted(core.rglob("*.py"))  # noqa: E731
    original = files_digest(_harness_files())
    assert files_digest(files()) == original
    # move trainer.py into a subpackage under another name, and fix the imports
    (core / "loop").mkdir()
    (core / "trainer.py").rename(core / "loop" / "training_loop.py")
    for path in files():
        text = path.read_text()
        path.write_text(text.replace("benchmark.core.trainer", "benchmark.core.loop.training_loop"))
    assert files_digest(files()) == original
    attacks = core / "attacks.py"
    attacks.write_text(attacks.read_text() + "\n# a comment at the end\n")
    assert files_digest(files()) == original
    attacks.write_text(attacks.read_text().replace("def pgd(", "def pgd_renamed(", 1))
    assert files_digest(files()) != original


def test_the_run_key_names_harness_and_method_digests():
    from benchmark.catalog import method_registry

    digests = code_digests(method_registry().get("trades"))
    assert set(digests) == {"harness", "method"}
    assert code_digests(None).keys() == {"harness"}
    assert digests["harness"] == code_digests(None)["harness"]
