"""Compile a LaTeX document with pdflatex (the test is skipped without it) and return its log,
for tests that check a table fits a one-column article (an overfull box says it does not)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def pdflatex_log(folder: Path, document: str) -> str:
    """Compile `folder/document` (a .tex file there); assert it compiled, return its log."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (Debian: texlive-latex-base, "
                    "texlive-latex-recommended)")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document],
                          cwd=folder, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (folder / document).with_suffix(".pdf").stat().st_size > 0
    return (folder / document).with_suffix(".log").read_text(errors="replace")
