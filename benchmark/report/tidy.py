"""The report's tidy tables in one unit (accuracy in %), for CSV files and the Python API.

`load_results` is the public entry point (also `from benchmark import load_results`):

    from benchmark import load_results
    res = load_results("results/reference", "fmnist", "reference")
    aa = res.runs.query("attack == 'autoattack' and checkpoint == 'best'")
    aa.groupby("method")[["avg", "worst"]].mean().sort_values("worst")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.report.collect import Collection, collect
from benchmark.report.expected import MissingRun

# accuracy-like columns (fractions in records) shown in % everywhere
PERCENT_COLUMNS = {
    "runs": ("avg", "overall", "worst", "std", "worst10"),
    "per_class": ("accuracy", "boundary_error"),
    "epochs": ("val_clean_avg", "val_clean_worst", "val_robust_avg", "val_robust_worst"),
}


def in_percent(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """A copy of `frame` with its accuracy columns (PERCENT_COLUMNS[kind]) times 100."""
    out = frame.copy()
    for col in PERCENT_COLUMNS[kind]:
        if col in out:
            out[col] = out[col] * 100
    return out


@dataclass(frozen=True)
class Results:
    """Finished runs of one dataset/preset as tidy DataFrames, accuracies in %.

    runs: one row per run x checkpoint (best, last) x attack (clean, pgd20, cw, autoattack):
      avg (class mean), overall (pointwise), worst, worst_class, std, worst10, epoch, and cost
      columns (train_seconds, train_passes, ..., eval_seconds_total).
    per_class: one row per run x checkpoint x attack x class: accuracy, n, boundary_error.
    epochs: one row per run x epoch: lr, loss and the validation numbers.
    missing: expected runs without a record (state and detail).
    """

    runs: pd.DataFrame
    per_class: pd.DataFrame
    epochs: pd.DataFrame
    missing: list[MissingRun]
    classes: list[str]


def tidy(coll: Collection) -> Results:
    return Results(in_percent(coll.metrics, "runs"), in_percent(coll.per_class, "per_class"),
                   in_percent(coll.history, "epochs"), list(coll.missing), coll.classes)


def load_results(results: str | Path = "results", dataset: str = "fmnist",
                 preset: str = "quick") -> Results:
    """Read `<results>/<dataset>/<preset>/*/seed*/record.json` into tidy DataFrames (%)."""
    return tidy(collect(Path(results), dataset, preset))
