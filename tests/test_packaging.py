"""Dependencies: pyproject.toml declares ranges for torch and torchvision (an installed torch in
range is kept), constraints.txt pins every dependency exactly (what make install and CI use),
and the installed versions are the pinned ones."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"],
                                      *project["optional-dependencies"]["dev"]]]


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {re.sub(r"[-_.]+", "-", name).lower(): v for name, v in pins}


def test_torch_is_a_range_not_a_pin():
    by_name = {r.name: r for r in _requirements()}
    for name in ("torch", "torchvision"):
        assert not any(s.operator == "==" for s in by_name[name].specifier), name
        assert by_name[name].specifier.contains(_pins()[name])


def test_every_dependency_is_pinned_and_installed_at_its_pin():
    pins = _pins()
    for req in _requirements():
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{req.name} has no exact version in constraints.txt"
        assert req.specifier.contains(pins[name]), f"{req.name}: {pins[name]} not in {req}"
        assert version(req.name).split("+")[0] == pins[name], f"{req.name} installed != pinned"
