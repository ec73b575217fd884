"""Selection on validation only: each tried configuration is scored from its recorded validation
history, so changing the criterion never retrains (and never reads the test set).

A configuration's score is the criterion's value at the epoch its run selected as its best
checkpoint (the protocol's `select_on`): the checkpoint that would be evaluated and reported.
Criteria (the protocol's `tune_criterion`):
- robust_avg: validation robust accuracy, mean over classes;
- robust_worst: validation robust accuracy of the worst class;
- robust_avg_worst (default): the mean of the two. A fairness benchmark asks for both: the
  average alone can pick a configuration that gives up the worst class (what fair-AT methods
  exist to lift), and the worst class alone is one class's validation points (100 on FMNIST
  quick), so it is noisy and blind to a collapse of the others.
Ties go to the earlier configuration (the default is the first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

CRITERIA: dict[str, Callable[[dict[str, Any]], float]] = {
    "robust_avg": lambda val: float(val["robust_avg"]),
    "robust_worst": lambda val: float(val["robust_worst"]),
    "robust_avg_worst": lambda val: (float(val["robust_avg"]) + float(val["robust_worst"])) / 2,
}


def selected_line(history: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch log line of the run's best checkpoint (the last line marked best)."""
    best = [line for line in history if line.get("best")]
    return best[-1] if best else None


def evidence(line: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a selection reads of a run's best-checkpoint line (tune.json's `evidence`)."""
    return {"epoch": line["epoch"], "val": line["val"]} if line is not None else None


def line_score(line: dict[str, Any] | None, criterion: str) -> float | None:
    """The criterion of one validation line (None: no line)."""
    return CRITERIA[criterion](line["val"]) if line is not None else None


def score(history: Sequence[dict[str, Any]], criterion: str) -> float | None:
    """The criterion at the run's best checkpoint; None for a run without one."""
    return line_score(selected_line(history), criterion)


def select(scores: Sequence[float | None]) -> int | None:
    """Index of the best score (ties: the earliest); None if no configuration has one."""
    best: int | None = None
    for i, value in enumerate(scores):
        if value is not None and (best is None or value > scores[best]):  # type: ignore[operator]
            best = i
    return best
