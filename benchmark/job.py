"""run_job: one (dataset, preset, method, seed) run, idempotent, resumable, one writer.

Under the run's lock: claim the directory (spec.json), train (or resume, or skip if trained),
evaluate the best-on-validation and last checkpoints, and write record.json last. Running a
finished job again does nothing; a failed one writes failed.json and is retried on a rerun.
`fairbench eval` reuses `evaluate_checkpoint` and `write_record`.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from benchmark.datasets.base import Splits, load_splits
from benchmark.errors import RunFailed, UserError, warn
from benchmark.evaluate import (
    EvalSet,
    Evaluator,
    eval_key,
    eval_settings,
    load_state,
    weights_digest,
)
from benchmark.lock import LockHeld, LockInfo, LockLost, RunLock
from benchmark.method import Method, load_methods, make_method
from benchmark.models import build_model, resolve_device
from benchmark.protocols import Protocol, get_protocol
from benchmark.provenance import code_digests
from benchmark.records import (
    RunPaths,
    RunSpec,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    claim_spec,
    compare_spec,
    environment,
    read_json,
    read_jsonl,
)
from benchmark.schema import (
    EpochLog,
    Failure,
    RunRecord,
    SchemaError,
    TrainSummary,
    variant_label,
)
from benchmark.train import Trainer

CHECKPOINTS = ("best", "last")


@dataclass(frozen=True)
class Job:
    """What to run; plain data so it pickles for submitit."""

    dataset: str
    preset: str
    method: str
    seed: int
    results: str = "results"
    overrides: dict[str, Any] = field(default_factory=dict)         # protocol fields
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # {method: hparams}
    data_dir: str | None = None
    download: bool = False
    keep_epochs: tuple[int, ...] = ()
    device: str | None = None
    show_progress: bool = True
    base: str | None = None          # name of the job this one warm-starts from (set by plan)
    variant: str = ""                # what this run's settings differ by ("beta=3", a --tag)
    variant_protocol: bool = False   # the variant changes protocol fields (bases share it)
    epoch_lines: bool = False        # one line per epoch on stderr (output is not a terminal)

    @property
    def label(self) -> str:
        """The run's name in tables and its directory: `trades` or `trades[beta=3]`."""
        return variant_label(self.method, self.variant)

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.preset}/{self.label}/seed{self.seed}"

    def protocol(self) -> Protocol:
        return get_protocol(self.dataset, self.preset, self.overrides)

    def make_method(self) -> Method:
        return make_method(self.method, self.protocol(), self.method_overrides.get(self.method))

    def paths(self) -> RunPaths:
        return RunPaths.of(Path(self.results), self.dataset, self.preset, self.label, self.seed)


def default_keep_epochs(method_name: str, protocol: Protocol) -> set[int]:
    """Begin epochs at which registered methods warm-start from `method_name` (with defaults)."""
    keep = set()
    for other in load_methods().names():
        try:
            warm = make_method(other, protocol).warm_start(protocol)
        except UserError:  # a method this protocol cannot run (e.g. ham.drop_step > steps)
            continue
        if warm and warm[0] == method_name:
            keep.add(warm[1])
    return keep


def base_job(job: Job, method: Method, protocol: Protocol) -> tuple[Job, int] | None:
    """The job this job warm-starts from, and the begin epoch (None if it trains from scratch)."""
    warm = method.warm_start(protocol)
    if warm is None:
        return None
    base, epoch = warm
    end = method.end_epoch(protocol)
    if not 0 <= epoch < end:  # at least one epoch of the method's own training
        raise UserError(f"{job.method}: begin epoch {epoch} leaves no epoch to train (it must be "
                        f"in 0..{end - 1}); raise epochs or set "
                        f"{job.method}.begin_epoch lower")
    if epoch > protocol.epochs:
        raise UserError(f"{job.method}: begin epoch {epoch} is past {base}'s last epoch "
                        f"{protocol.epochs}; set {job.method}.begin_epoch to at most that")
    shared = job.variant if job.variant_protocol else ""  # a protocol variant needs its own base
    return Job(job.dataset, job.preset, base, job.seed, job.results, dict(job.overrides),
               dict(job.method_overrides), job.data_dir, job.download, (epoch,), job.device,
               job.show_progress, variant=shared, variant_protocol=bool(shared)), epoch


def spec_of(job: Job) -> tuple[RunSpec, Method, Protocol, tuple[Job, int] | None]:
    """The run's spec (settings, code digests, warm-start base key), its method, protocol and
    warm-start base; every setting is validated here."""
    protocol = job.protocol()
    method = job.make_method()
    base = base_job(job, method, protocol)
    warm = None
    if base is not None:
        base_spec = spec_of(base[0])[0]
        warm = {"method": base[0].label, "epoch": base[1], "run_key": base_spec.key}
    spec = RunSpec(job.method, job.dataset, job.preset, job.seed, protocol.as_dict(),
                   method.hparams(), warm, method.end_epoch(protocol),
                   code_digests(type(method)), variant=job.variant)
    return spec, method, protocol, base


def run_job(job: Job, *, block: bool = True,
            on_wait: Callable[[LockInfo], None] | None = None) -> dict[str, Any]:
    """Train and evaluate one run under its lock; returns its record. Idempotent and resumable.

    block=False raises LockHeld when another live process holds the run. A run that goes wrong
    writes failed.json (and error.txt for a crash) and re-raises; rerunning retries it.
    """
    spec, method, protocol, base = spec_of(job)
    paths = job.paths()
    lock = RunLock(paths.root)
    if block:
        lock.wait(on_wait=on_wait)
    elif (owner := lock.acquire()) is not None:
        raise LockHeld(owner)
    try:
        note = claim_spec(paths, spec)
        if note:
            warn(f"{job.name}: {note}")
        if paths.record.exists():
            try:
                return RunRecord.from_dict(read_json(paths.record)).as_dict()
            except (UserError, SchemaError) as err:
                warn(f"{paths.record} is damaged ({err}); rebuilding it from the run's files")
        paths.failed.unlink(missing_ok=True)  # a rerun retries a failed run
        try:
            return _train_and_evaluate(job, spec, method, protocol, base, paths, lock)
        except BaseException as err:
            record_failure(paths, err)
            raise
    finally:
        lock.release()


def mark_not_run(job: Job, reason: str) -> None:
    """A run skipped because its warm-start base failed: unless its directory already holds a
    finished run of exactly this spec, claim it (old results of other code are set aside) and
    record the reason in failed.json, so neither status nor the report shows stale numbers."""
    spec = spec_of(job)[0]
    paths = job.paths()
    if compare_spec(paths, spec).action == "same" and paths.record.exists():
        return
    lock = RunLock(paths.root)
    if lock.acquire() is not None:
        return  # another live launcher works on it and will record its own outcome
    try:
        note = claim_spec(paths, spec)
        if note:
            warn(f"{job.name}: {note}")
        atomic_write_json(paths.failed, Failure(reason=reason, kind="not-run",
                                                host=platform.node(), time=time.time()).as_dict())
    finally:
        lock.release()


def record_failure(paths: RunPaths, err: BaseException) -> None:
    """failed.json (and error.txt with the traceback of a crash); best effort, never raises."""
    if isinstance(err, KeyboardInterrupt | SystemExit | LockLost):
        return  # not a failure of the run: resuming continues it
    kind = "non-finite" if isinstance(err, RunFailed) else \
        "setting" if isinstance(err, UserError) else "crash"
    failure = Failure(reason=one_line(err), kind=kind, epoch=getattr(err, "epoch", None),
                      batch=getattr(err, "batch", None), host=platform.node(), time=time.time())
    try:
        if kind == "crash":
            atomic_write_text(paths.error, traceback.format_exc())
            failure.traceback = paths.error.name
        atomic_write_json(paths.failed, failure.as_dict())
    except OSError:
        pass  # e.g. the disk is full: the caller still reports the failure


def epoch_line(name: str, line: EpochLog, end: int) -> str:
    """One plain line per epoch for logs (no carriage returns)."""
    val = line.val or {}
    return (f"{name}: epoch {line.epoch}/{end}: loss {line.loss:.3f}, validation robust "
            f"{100 * val.get('robust_avg', float('nan')):.1f} % (worst class "
            f"{100 * val.get('robust_worst', float('nan')):.1f} %), {line.seconds:.1f} s")


def one_line(err: BaseException) -> str:
    """An exception as one line: the message of ours, type and first line of others."""
    if isinstance(err, UserError | RunFailed):
        return str(err)
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _check_warm_start(job: Job, base: tuple[Job, int] | None, paths: RunPaths) -> Path | None:
    """The base's checkpoint this run starts from (None for a run from scratch)."""
    if base is None:
        return None
    base_paths = base[0].paths()
    warm_ckpt = base_paths.epoch_ckpt(base[1])
    if not paths.ckpt.exists() and not warm_ckpt.exists():
        if base_paths.done.exists() or base_paths.record.exists():
            raise UserError(f"{base[0].name} finished without a checkpoint at epoch "
                            f"{base[1]}; delete {base_paths.root} to retrain it, or set "
                            f"{job.method}.begin_epoch to one it kept")
        raise UserError(f"{job.name} warm-starts from {base[0].name}, which has not reached "
                        f"epoch {base[1]}; run it first (`fairbench run` plans this for you)")
    return warm_ckpt


def load_data(job: Job, protocol: Protocol) -> Splits:
    return load_splits(job.dataset, seed=job.seed, val_per_class=protocol.val_per_class,
                       train_per_class=protocol.train_per_class,
                       test_per_class=protocol.test_per_class,
                       data_dir=Path(job.data_dir) if job.data_dir else None,
                       download=job.download)


def _train_and_evaluate(job: Job, spec: RunSpec, method: Method, protocol: Protocol,
                        base: tuple[Job, int] | None, paths: RunPaths, lock: RunLock
                        ) -> dict[str, Any]:
    warm_ckpt = _check_warm_start(job, base, paths)
    device = resolve_device(job.device)
    env = environment(device)
    atomic_write_json(paths.env, env)
    splits = load_data(job, protocol)
    if not paths.done.exists():
        keep = default_keep_epochs(job.method, protocol) | set(job.keep_epochs)

        end = method.end_epoch(protocol)

        def between_epochs(line: EpochLog) -> None:
            lock.check()  # LockLost if another process took the run over
            lock.touch()
            if job.epoch_lines:
                print(epoch_line(job.name, line, end), file=sys.stderr, flush=True)

        Trainer(method=method, protocol=protocol, splits=splits, paths=paths, seed=job.seed,
                device=device, keep_epochs=keep, warm_start_ckpt=warm_ckpt,
                show_progress=job.show_progress, after_epoch=between_epochs).run()
    train = TrainSummary.from_dict(read_json(paths.done))
    model = build_model(protocol.model, splits.info.num_classes, splits.info.shape)
    evaluator = Evaluator(protocol, device, show_progress=job.show_progress)
    data = EvalSet(splits.test_x, splits.test_y, splits.info.classes)
    evals, eval_files = {}, {}
    for name in CHECKPOINTS:
        ckpt = load_model_file(paths, name)
        model.load_state_dict(ckpt["model"])
        evals[name], eval_files[name] = evaluate_checkpoint(evaluator, model, data, paths, name,
                                                            ckpt.get("epoch"))
    history = [EpochLog.from_dict(line).as_dict() for line in read_jsonl(paths.log)]
    return write_record(paths, spec, splits.info.classes, env, train, evals, eval_files,
                        protocol, history, eval_cost=eval_cost(evals, eval_files))


def eval_cost(evals: dict[str, Any], eval_files: dict[str, str]) -> dict[str, Any]:
    """Evaluation seconds (each distinct eval file once: identical best and last weights are
    evaluated once) and the peak memory of any attack, both as recorded when computed (so a
    resumed or reused evaluation reports what it cost then)."""
    seen: dict[str, float] = {}
    peaks = [0.0]
    for name, entry in evals.items():
        key = Path(eval_files[name]).name.split("-", 1)[-1]  # <checkpoint>-<eval key>.json
        seen[key] = sum((entry.get("seconds") or {}).values())
        peaks += list((entry.get("peak_memory_mb") or {}).values())
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
                        name: str, epoch: int | None) -> tuple[dict[str, Any], str]:
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
    entry = {**result["attacks"], "epoch": epoch, "seconds": result["seconds"],
             "peak_memory_mb": result.get("peak_memory_mb", {})}
    return entry, str(out.relative_to(paths.root))


def write_record(paths: RunPaths, spec: RunSpec, classes: Sequence[str], env: dict[str, Any],
                 train: TrainSummary, evals: dict[str, Any], eval_files: dict[str, str],
                 protocol: Protocol, history: list[dict[str, Any]],
                 source: dict[str, Any] | None = None,
                 eval_cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build record.json from its parts (the one place a record is made) and write it last."""
    record = RunRecord(
        **spec.as_dict(), classes=list(classes), env=env, train=train.as_dict(), eval=evals,
        eval_files=eval_files, eval_settings=eval_settings(protocol), history=history,
        git_commit=env.get("git_commit"), git_dirty=env.get("git_dirty"), source=source,
        eval_cost=eval_cost)
    atomic_write_json(paths.record, record.as_dict())
    return record.as_dict()
