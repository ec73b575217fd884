"""run_job: one (dataset, preset, method, seed) run, idempotent, resumable, one writer.

Under the run's lock: claim the directory (spec.json), train (or resume, or skip if trained),
evaluate the best-on-validation and last checkpoints, and write record.json last. Running a
finished job again does nothing; a failed one writes failed.json and is retried on a rerun.
`fairbench eval` reuses `evaluate_checkpoint` and `write_record`.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.common.device import resolve_device
from benchmark.common.errors import UserError, warn
from benchmark.common.fileio import (
    atomic_write_json,
    load_state,
    read_json,
    read_jsonl,
)
from benchmark.common.schema import SchemaError
from benchmark.core.datasets.base import Splits, protocol_splits
from benchmark.core.evaluation.evaluator import EvalSet, Evaluator
from benchmark.core.models import build_model
from benchmark.core.run_paths import RunPaths
from benchmark.core.train_state import EpochLog, TrainSummary
from benchmark.core.trainer import Trainer
from benchmark.runs.claim import claim_spec
from benchmark.runs.environment import environment
from benchmark.runs.failure import record_failure
from benchmark.runs.job import Run
from benchmark.runs.lock import RunLock
from benchmark.runs.lock_file import LockHeld
from benchmark.runs.provenance import file_sha256
from benchmark.runs.record import eval_cost, evaluate_checkpoint, load_model_file, write_record
from benchmark.runs.schema import CHECKPOINTS, LockInfo, RunRecord


def run_job(run: Run, *, block: bool = True,
            on_wait: Callable[[LockInfo], None] | None = None) -> dict[str, Any] | None:
    """Train and evaluate one run under its lock; returns its record (None for a job that does
    not evaluate: it trains and validates, and is never evaluated on the test set). Idempotent and
    resumable.

    block=False raises LockHeld when another live process holds the run. A run that goes wrong
    writes failed.json (and error.txt for a crash) and re-raises; rerunning retries it.
    """
    paths = run.paths
    lock = RunLock(paths.root)
    if block:
        lock.wait(on_wait=on_wait)
    elif (owner := lock.acquire()) is not None:
        raise LockHeld(owner)
    try:
        note = claim_spec(paths, run.spec)
        if note:
            warn(f"{run.name}: {note}")
        if paths.record.exists():
            try:
                return RunRecord.from_dict(read_json(paths.record)).as_dict()
            except (UserError, SchemaError) as err:
                warn(f"{paths.record} is damaged ({err}); rebuilding it from the run's files")
        paths.failed.unlink(missing_ok=True)  # a rerun retries a failed run
        try:
            return _train_and_evaluate(run, lock)
        except BaseException as err:
            record_failure(paths, err)
            raise
    finally:
        lock.release()


def epoch_line(name: str, line: EpochLog, end: int) -> str:
    """One plain line per epoch for logs (no carriage returns)."""
    val = line.val or {}
    return (f"{name}: epoch {line.epoch}/{end}: loss {line.loss:.3f}, validation robust "
            f"{100 * val.get('robust_avg', float('nan')):.1f} % (worst class "
            f"{100 * val.get('robust_worst', float('nan')):.1f} %), {line.seconds:.1f} s")


def warm_start_checkpoint(run: Run) -> Path | None:
    """The base's checkpoint this run starts from (None for a run from scratch)."""
    if run.base is None:
        return None
    base_paths, epoch = run.base.paths, run.begin_epoch
    warm_ckpt = base_paths.epoch_ckpt(epoch)
    if not run.paths.ckpt.exists() and not warm_ckpt.exists():
        if base_paths.done.exists() or base_paths.record.exists():
            raise UserError(f"{run.base.name} finished without a checkpoint at epoch "
                            f"{epoch}; delete {base_paths.root} to retrain it, or set "
                            f"{run.job.method}.begin_epoch to one it kept")
        raise UserError(f"{run.name} warm-starts from {run.base.name}, which has not reached "
                        f"epoch {epoch}; run it first (`fairbench run` plans this for you)")
    return warm_ckpt


def load_data(run: Run) -> Splits:
    job = run.job
    return protocol_splits(run.protocol, job.seed,
                           Path(job.data_dir) if job.data_dir else None, job.download)


def _train(run: Run, splits: Splits, device: torch.device, lock: RunLock) -> None:
    """Train (or resume) until train_done.json exists; a fresh copy of the resolved method
    trains, so the Run itself never carries training state."""
    warm_ckpt = warm_start_checkpoint(run)

    def between_epochs(line: EpochLog) -> None:
        lock.check()  # LockLost if another process took the run over
        lock.touch()
        if run.job.epoch_lines:
            print(epoch_line(run.name, line, run.end_epoch), file=sys.stderr, flush=True)

    Trainer(method=copy.deepcopy(run.method), protocol=run.protocol, splits=splits,
            paths=run.paths, seed=run.job.seed, device=device, keep_epochs=set(run.keep_epochs),
            warm_start_ckpt=warm_ckpt, show_progress=run.job.show_progress,
            after_epoch=between_epochs, teacher=teacher_model(run, splits, device)).run()


def teacher_model(run: Run, splits: Splits, device: torch.device) -> nn.Module | None:
    """The frozen teacher (eval mode, no gradients): the teacher run's model_best.pt (chosen
    on validation), or the given checkpoint file; None for a method without one."""
    spec = run.spec.teacher
    if spec is None:
        return None
    if run.teacher is not None:
        name, state = run.teacher.protocol.model, load_model_file(run.teacher.paths, "best")
    else:
        path = Path(run.method.teacher_file)
        name, state = spec["model"], load_state(path)
        if file_sha256(path) != spec["sha256"]:
            raise UserError(f"{path} changed since this run was planned; rerun the command (a "
                            f"new file is a new run)")
    model = build_model(name, splits.info.num_classes, splits.info.shape)
    try:
        model.load_state_dict(state.get("model", state))
    except RuntimeError as err:
        detail = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), str(err))
        raise UserError(f"the teacher checkpoint does not fit {name} ({detail[:160]}); set "
                        f"teacher_model to its model") from None
    return model.to(device).eval().requires_grad_(False)


def teacher_check(run: Run) -> None:
    """A teacher run that has not finished: one line before any work."""
    if run.teacher is not None and not run.teacher.paths.best.exists():
        raise UserError(f"{run.name} learns from {run.teacher.name}, which has not finished; "
                        f"run it first (`fairbench run` plans this for you)")


def with_teacher_cost(run: Run, train: TrainSummary) -> TrainSummary:
    """The teacher run's training cost, added to the cost including dependencies."""
    if run.teacher is None or not run.teacher.paths.done.exists():
        return train
    teacher = TrainSummary.from_dict(read_json(run.teacher.paths.done))
    seconds = teacher.seconds_with_warm_start or teacher.seconds or 0.0
    passes = teacher.passes_with_warm_start or teacher.passes or 0
    return replace(train, teacher_seconds=seconds, teacher_passes=passes,
                   seconds_with_warm_start=(train.seconds_with_warm_start or 0.0) + seconds,
                   passes_with_warm_start=(train.passes_with_warm_start or 0) + passes)


def with_training_env(env: dict[str, Any], paths: RunPaths) -> dict[str, Any]:
    """The evaluation's environment, and under `training` the one training ran in (env.json)
    when it differs (another commit, machine or package: a run evaluated in a later session)."""
    try:
        trained = read_json(paths.env)
    except (UserError, OSError, ValueError):
        return env
    return env if not isinstance(trained, dict) or trained == env else {**env, "training": trained}


def _train_and_evaluate(run: Run, lock: RunLock) -> dict[str, Any] | None:
    paths, protocol = run.paths, run.protocol
    if paths.done.exists() and not run.job.evaluate:
        return None  # trained; this job never evaluates
    warm_start_checkpoint(run)  # a missing base checkpoint: one line before any work
    teacher_check(run)
    device = resolve_device(run.job.device)
    env = environment(device)
    splits = load_data(run)
    if not paths.done.exists():
        atomic_write_json(paths.env, env)  # where (the last launch of) training ran
        _train(run, splits, device, lock)
    if not run.job.evaluate:
        return None
    env = with_training_env(env, paths)
    train = with_teacher_cost(run, TrainSummary.from_dict(read_json(paths.done)))
    model = build_model(protocol.model, splits.info.num_classes, splits.info.shape)
    data = EvalSet(splits.test_x, splits.test_y, splits.info.classes)
    evals, eval_files = {}, {}
    for name in CHECKPOINTS:
        evaluator = Evaluator(protocol.for_checkpoint(name), device,
                              show_progress=run.job.show_progress)
        ckpt = load_model_file(paths, name)
        model.load_state_dict(ckpt["model"])
        evals[name], eval_files[name] = evaluate_checkpoint(evaluator, model, data, paths, name,
                                                            ckpt.get("epoch"))
    history = [EpochLog.from_dict(line).as_dict() for line in read_jsonl(paths.log)]
    return write_record(paths, run.spec, splits.info.classes, env, train, evals, eval_files,
                        protocol, history, eval_cost=eval_cost(evals, eval_files))
