"""The two views of a tuned comparison: each method at its protocol defaults, and at the
configuration `fairbench tune` selected on validation with the same budget for every method.
The table shows each view in its own panels and ranks rows only within a panel, so a tuned
configuration never competes with another method's defaults; the scatter plot gets one figure
per view for the same reason."""

from __future__ import annotations

from collections.abc import Sequence

from benchmark.runs.schema import label_method
from benchmark.tuning.tune_file import TuneFile

VIEW_TITLES = {"defaults": "protocol defaults", "tuned": "tuned (equal budget)"}


def view_labels(tune: TuneFile | None, labels: Sequence[str]) -> dict[str, list[str]]:
    """View -> the labels it shows, in the given order; {} without a decided search (one view).

    A plain run (`trades`) is its method's defaults; a selected label is the tuned view, so a
    method whose default configuration won its search appears in both. Anything else (a
    teacher, a `fairbench run` variant) is shown with the defaults."""
    if tune is None or not (selected := set(tune.selections().values())):
        return {}
    return {"defaults": [lb for lb in labels if lb not in selected or lb in tune.methods],
            "tuned": [lb for lb in labels if lb in selected]}


def without_tuned_row(tune: TuneFile | None, labels: Sequence[str]) -> list[str]:
    """Methods shown with their defaults but absent from the tuned view: a search not decided
    (cut short, or every configuration failed) or a method `fairbench tune` did not search."""
    decided = tune.selections() if tune is not None else {}
    return [lb for lb in labels if "[" not in lb and lb not in decided] if decided else []


def same_colour(views: dict[str, list[str]]) -> dict[str, str]:
    """Each tuned label -> its method's plain label, so the figures draw a method in one colour
    in both views (`figure_style.method_colors`); {} without views."""
    return {lb: label_method(lb) for lb in views.get("tuned", [])}


def views_of(views: dict[str, list[str]], label: str) -> str:
    """The views showing `label`, joined by "+" ("defaults+tuned"); "" without views."""
    return "+".join(v for v, labels in views.items() if label in labels)
