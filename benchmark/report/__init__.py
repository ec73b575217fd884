"""Reports from run records (being built)."""

from pathlib import Path
from typing import Sequence


def build_report(results: Path, dataset: str, preset: str, out: Path | None = None,
                 formats: Sequence[str] = ("latex", "md", "csv")) -> dict[str, Path]:
    raise NotImplementedError
