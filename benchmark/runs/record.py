"""A run's evaluation and record: evaluate a checkpoint (once for identical weights), rebuild a
damaged model file, and write record.json last."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from benchmark.common.errors import UserError, warn
from benchmark.common.fileio import (
    atomic_torch_save,
    atomic_write_json,
    load_state,
    read_json,
)
from benchmark.core.evaluation.evaluator import EvalSet, Evaluator, weights_digest
from benchmark.core.evaluation.suite import eval_key, eval_settings
from benchmark.core.protocol import Protocol
from benchmark.core.run_paths import RunPaths
from benchmark.core.train_state import TrainSummary
from benchmark.runs.schema import CheckpointEval, RunRecord, RunSpec


def eval_cost(evals: dict[str, CheckpointEval], eval_files: dict[str, str]) -> dict[str, Any]:
    """Evaluation seconds (each distinct eval file once: identical best and last weights are
    evaluated once) and the peak memory of any attack, both as recorded when computed (so a
    resumed or reused evaluation reports what it cost then)."""
    seen: dict[str, float] = {}
    peaks = [0.0]
    for name, entry in evals.items():
        key = Path(eval_files[name]).name.split("-", 1)[-1]  # <checkpoint>-<eval key>.json
        seen[key] = sum(entry.seconds.values())
        peaks += list(entry.peak_memory_mb.values())
    return {"seconds": sum(seen.values()), "peak_memory_mb": max(peaks) or None}


def load_model_file(paths: RunPaths, name: str) -> dict[str, Any]:
    """model_best.pt / model_last.pt of a trained run. A damaged one is rebuilt from
    ckpt_last.pt when that holds the same weights (always for `last`; for `best` when the best
    epoch was the last); otherwise one line saying the run must be retrained."""
    path = getattr(paths, name)
    try:
        return load_state(path)
    except Exception as err:  # noqa: BLE001 - a damaged file: rebuild it or say so
        why = type(err).__name__
    try:
        ckpt = load_state(paths.ckpt)
        epoch, best = ckpt["state"]["epoch"], ckpt["state"]["best_epoch"]
    except Exception:  # noqa: BLE001
        ckpt, epoch, best = None, None, None
    if ckpt is not None and (name == "last" or best == epoch):
        kept = ckpt.get("kept")  # a method's kept weights (e.g. CFA's average) when it has them
        state = {"model": kept if kept is not None else ckpt["model"], "epoch": epoch}
        atomic_torch_save(path, state)
        warn(f"{path} was damaged ({why}); rebuilt it from {paths.ckpt.name} (same weights)")
        return state
    raise UserError(f"{path} is damaged ({why}) and cannot be rebuilt (its epoch was not "
                    f"kept); delete {paths.root} to retrain this run")


def evaluate_checkpoint(evaluator: Evaluator, model: nn.Module, data: EvalSet, paths: RunPaths,
                        name: str, epoch: int | None) -> tuple[CheckpointEval, str]:
    """Evaluate one model into eval/<name>-<eval key>.json (reusing an identical twin's file);
    returns the record's eval entry and the file's path relative to the run."""
    key = eval_key(evaluator.protocol, weights_digest(model))
    out = paths.eval_dir / f"{name}-{key}.json"
    twin = next((p for p in paths.eval_dir.glob(f"*-{key}.json") if p != out), None)
    if not out.exists() and twin is not None:
        try:
            if "autoattack" in read_json(twin)["attacks"]:
                shutil.copyfile(twin, out)  # identical weights (best == last): evaluate once
        except (UserError, KeyError, TypeError):
            pass  # a damaged twin: evaluate afresh
    result = evaluator.evaluate(model, data, out)
    entry = CheckpointEval.from_dict({**result["attacks"], "epoch": epoch,
                                      "seconds": result["seconds"],
                                      "peak_memory_mb": result.get("peak_memory_mb", {})})
    return entry, str(out.relative_to(paths.root))


def write_record(paths: RunPaths, spec: RunSpec, classes: Sequence[str], env: dict[str, Any],
                 train: TrainSummary, evals: dict[str, CheckpointEval],
                 eval_files: dict[str, str],
                 protocol: Protocol, history: list[dict[str, Any]],
                 source: dict[str, Any] | None = None,
                 eval_cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build record.json from its parts (the one place a record is made) and write it last."""
    record = RunRecord(
        spec=spec, classes=list(classes), env=env, train=train.as_dict(), eval=dict(evals),
        eval_files=eval_files, eval_settings=eval_settings(protocol), history=history,
        source=source, eval_cost=eval_cost)
    atomic_write_json(paths.record, record.as_dict())
    return record.as_dict()

