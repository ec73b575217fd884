"""The two views of a tuned comparison: each method at its protocol defaults, and at the
configuration `fairbench tune` selected on validation with the same budget for every method.
The table shows each view in its own panels and ranks rows only within a panel, so a tuned
configuration never competes with another method's defaults."""

from __future__ import annotations

from collections.abc import Sequence

from benchmark.tuning.tune_file import TuneFile

VIEW_TITLES = {"defaults": "protocol defaults", "tuned": "tuned (equal budget)"}


def view_labels(tune: TuneFile | None, labels: Sequence[str]) -> dict[str, list[str]]:
    """View -> the labels it shows, in the given order; {} without a decided search (one view).

    A plain run (`trades`) is its method's defaults; a selected label is the tuned view, so a
    method whose default configuration won its search appears in both. Anything else (a
    teacher, a `fairbench run` variant) is shown with the defaults."""
    selected = set(tune.selections().values()) if tune is not None else set()
    if not selected:
        return {}
    plain = set(tune.methods) if tune is not None else set()
    return {"defaults": [lb for lb in labels if lb not in selected or lb in plain],
            "tuned": [lb for lb in labels if lb in selected]}


def views_of(views: dict[str, list[str]], label: str) -> str:
    """The views showing `label`, joined by "+" ("defaults+tuned"); "" without views."""
    return "+".join(v for v, labels in views.items() if label in labels)
