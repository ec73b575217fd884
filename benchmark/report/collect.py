"""Run records -> tidy pandas DataFrames, plus the runs that are missing or unfinished.

The report reads files only: `results/<dataset>/<preset>/<method>/seed<k>/record.json` for
finished runs, and the other files of a run directory to say how far an unfinished run got.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.common.errors import UserError
from benchmark.core.evaluation.suite import ATTACKS as EVAL_ATTACKS_NAMES
from benchmark.core.metrics import AttackResult
from benchmark.core.train_state import EpochLog
from benchmark.report.expected import MissingRun, find_runs, order_methods
from benchmark.report.views import view_labels
from benchmark.runs.job import is_teacher_variant
from benchmark.runs.schema import CHECKPOINTS, RunRecord
from benchmark.tuning.tune_file import TuneFile, read_tune, tune_path

ATTACKS = EVAL_ATTACKS_NAMES  # the evaluator's registry (core/evaluation/suite.py)
VAL_KEYS = ("clean_avg", "clean_worst", "robust_avg", "robust_worst")
COST_KEYS = {  # metrics column -> (record section, key): training and evaluation cost
    "train_seconds": ("train", "seconds"),
    "train_passes": ("train", "passes"),
    "train_seconds_with_warm_start": ("train", "seconds_with_warm_start"),
    "train_passes_with_warm_start": ("train", "passes_with_warm_start"),
    "warm_start_seconds": ("train", "warm_start_seconds"),
    "warm_start_passes": ("train", "warm_start_passes"),
    "train_peak_memory_mb": ("train", "peak_memory_mb"),
    "eval_seconds_total": ("eval_cost", "seconds"),
    "eval_peak_memory_mb": ("eval_cost", "peak_memory_mb"),
}


@dataclass
class Collection:
    """Everything the report needs from one dataset/preset, as DataFrames."""

    dataset: str
    preset: str
    records: list[RunRecord]
    metrics: pd.DataFrame      # run x checkpoint x attack: summaries and cost columns
    per_class: pd.DataFrame    # run x checkpoint x attack x class (long form)
    history: pd.DataFrame      # run x epoch: validation numbers
    val_per_class: pd.DataFrame  # run x epoch x class: validation robust accuracy, n (long)
    state: pd.DataFrame        # run x epoch x method-state key x element (long form)
    missing: list[MissingRun]
    expected: dict[str, list[int]] = field(default_factory=dict)  # method -> seeds
    tune: TuneFile | None = None  # what `fairbench tune` tried and selected (tune.json)

    @property
    def methods(self) -> list[str]:
        """Every expected method, the baseline first, then by name."""
        return order_methods(self.expected)

    @property
    def unranked(self) -> list[str]:
        """Rows shown but never bold: the distillation teachers (another model, a dependency
        of the students, not a method under comparison)."""
        return sorted({r.label for r in self.records if is_teacher_variant(r.spec.variant)})

    @property
    def views(self) -> dict[str, list[str]]:
        """View -> labels (views.py); {} when the runs were not tuned (one view)."""
        return view_labels(self.tune, list(self.expected))

    @property
    def classes(self) -> list[str]:
        return list(self.records[0].classes)


def run_name(method: str, seed: int) -> str:
    return f"{method}/seed{seed}"


def _num(value: Any) -> float:
    """A float, NaN for None or anything non-numeric."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def overall_accuracy(res: AttackResult) -> float:
    """Pointwise accuracy over all evaluated points (what SVHN papers report): the per-class
    accuracies weighted by their point counts; NaN without counts."""
    n, acc = res.n_per_class or [], res.per_class or []
    if not n or len(n) != len(acc) or not sum(n):
        return math.nan
    return sum(_num(a) * k for a, k in zip(acc, n, strict=True) if k) / sum(n)


def metrics_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run x checkpoint x attack with avg / worst / std / worst10 / worst_class and
    cost columns (training cost is the run's, repeated on each row)."""
    rows = []
    for rec in records:
        costs = {col: _num((getattr(rec, section) or {}).get(key))
                 for col, (section, key) in COST_KEYS.items()}
        for ckpt in CHECKPOINTS:
            ev = rec.eval.get(ckpt)
            if ev is None:
                continue
            for attack in ATTACKS:
                res = ev.attacks.get(attack)
                if res is None:
                    continue
                rows.append({
                    "run": run_name(rec.label, rec.seed), "method": rec.label,
                    "seed": rec.seed, "checkpoint": ckpt, "attack": attack,
                    "avg": _num(res.avg), "overall": overall_accuracy(res),
                    "balanced": len(set(res.n_per_class or [])) <= 1,
                    "worst": _num(res.worst), "std": _num(res.std), "worst10": _num(res.worst10),
                    "worst_class": res.worst_class, "n_classes": len(res.per_class),
                    "epoch": ev.epoch, "eval_seconds": _num(ev.seconds.get(attack)),
                    **costs,
                })
    return pd.DataFrame(rows, columns=[
        "run", "method", "seed", "checkpoint", "attack", "avg", "overall", "balanced", "worst",
        "std", "worst10",
        "worst_class", "n_classes", "epoch", "eval_seconds", *COST_KEYS])


def per_class_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Every per-class number: run, method, seed, checkpoint, attack, class, accuracy, n and
    boundary error (clean-correct but adversarially wrong; NaN for clean)."""
    rows = []
    for rec in records:
        classes = rec.classes
        for ckpt in CHECKPOINTS:
            for attack in ATTACKS:
                res = rec.result(ckpt, attack)
                if res is None:
                    continue
                n = res.n_per_class or [None] * len(classes)
                bndy = res.boundary_error or [None] * len(classes)
                for i, name in enumerate(classes):
                    rows.append({
                        "run": run_name(rec.label, rec.seed), "method": rec.label,
                        "seed": rec.seed, "checkpoint": ckpt, "attack": attack,
                        "class_index": i, "class": name, "accuracy": _num(res.per_class[i]),
                        "n": n[i], "boundary_error": _num(bndy[i]),
                    })
    return pd.DataFrame(rows, columns=["run", "method", "seed", "checkpoint", "attack",
                                       "class_index", "class", "accuracy", "n", "boundary_error"])


def _begin_epoch(rec: RunRecord) -> int:
    return int((rec.spec.warm_start or {}).get("epoch", 0) or 0)


def _history_lines(rec: RunRecord, by_run: dict[tuple[Any, int], RunRecord]
                   ) -> list[tuple[dict[str, Any], bool]]:
    """(epoch log, from the base run) of a run: a warm-started run starts with its base run's
    log line at the begin epoch, when that run is among the records."""
    seed, begin = rec.seed, _begin_epoch(rec)
    base = by_run.get(((rec.spec.warm_start or {}).get("method"), seed))
    start = [h for h in (base.history if base else []) if h.get("epoch") == begin]
    return [(h, True) for h in start[:1]] + [(h, False) for h in rec.history]


def history_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Validation numbers per run and epoch (absolute epochs). A warm-started run gets one extra
    row at its begin epoch, taken from its base run's log when that run is among the records."""
    by_run = {(r.label, r.seed): r for r in records}
    rows = []
    for rec in records:
        method, seed, begin = rec.label, rec.seed, _begin_epoch(rec)
        for line, from_base in _history_lines(rec, by_run):
            val = line.get("val") or {}
            rows.append({
                "run": run_name(method, seed), "method": method, "seed": seed,
                "epoch": int(line["epoch"]), "lr": _num(line.get("lr")),
                "loss": _num(line.get("loss")), "begin_epoch": begin, "from_base": from_base,
                **{f"val_{k}": _num(val.get(k)) for k in VAL_KEYS},
            })
    return pd.DataFrame(rows, columns=["run", "method", "seed", "epoch", "lr", "loss",
                                       "begin_epoch", "from_base", *(f"val_{k}" for k in VAL_KEYS)])


def val_class_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Validation robust accuracy per run, epoch and class with its points per class (the
    protocol's val_per_class; the split is class-balanced): what the curves' intervals need."""
    by_run = {(r.label, r.seed): r for r in records}
    rows = []
    for rec in records:
        method, seed = rec.label, rec.seed
        n = rec.spec.protocol.get("val_per_class")
        for line, _ in _history_lines(rec, by_run):
            accs = _numeric_list((line.get("val") or {}).get("robust_per_class"))
            rows += [{"run": run_name(method, seed), "method": method, "seed": seed,
                      "epoch": int(line["epoch"]), "class_index": i, "accuracy": acc, "n": n}
                     for i, acc in enumerate(accs or [])]
    return pd.DataFrame(rows, columns=["run", "method", "seed", "epoch", "class_index",
                                       "accuracy", "n"])


def _numeric_list(value: Any) -> list[float] | None:
    if isinstance(value, list) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    return None


def state_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Method state logged per epoch (history keys that are not standard): long form with
    `index` = element of a list (per-class multipliers, ...) or -1 for a scalar."""
    rows = []
    for rec in records:
        for line in rec.history:
            log = EpochLog.from_dict(line)
            for key, value in log.method.items():
                values = _numeric_list(value)
                if values is not None:
                    items = list(enumerate(values))
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    items = [(-1, float(value))]
                else:
                    continue
                rows += [{"run": run_name(rec.label, rec.seed), "method": rec.label,
                          "seed": rec.seed, "epoch": int(log.epoch), "key": key,
                          "index": i, "value": v} for i, v in items]
    return pd.DataFrame(rows, columns=["run", "method", "seed", "epoch", "key", "index", "value"])


def collect(results: Path, dataset: str, preset: str) -> Collection:
    """Read every run of dataset/preset; UserError if none has finished."""
    records, missing, expected = find_runs(results, dataset, preset)
    if not records:
        unfinished = f" ({len(missing)} unfinished)" if missing else ""
        raise UserError(f"no finished runs for {dataset}/{preset} in {results}{unfinished}; "
                        f"run `fairbench run --dataset {dataset} --preset {preset}` first")
    return Collection(dataset, preset, records, metrics_frame(records), per_class_frame(records),
                      history_frame(records), val_class_frame(records), state_frame(records),
                      missing, expected, read_tune(tune_path(Path(results), dataset, preset)))
