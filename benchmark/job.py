"""run_job: one (dataset, preset, method, seed) run, idempotent and resumable.

Train (or resume, or skip if trained), evaluate the best-on-validation and last checkpoints, and
write record.json last. Running a finished job again does nothing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.datasets.base import load_splits
from benchmark.errors import UserError
from benchmark.evaluate import (
    EvalSet,
    Evaluator,
    eval_key,
    eval_settings,
    load_state,
    weights_digest,
)
from benchmark.method import Method, load_methods, make_method
from benchmark.models import build_model, resolve_device
from benchmark.protocols import Protocol, get_protocol
from benchmark.records import (
    RunPaths,
    RunSpec,
    atomic_write_json,
    claim_spec,
    environment,
    read_json,
    read_jsonl,
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

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.preset}/{self.method}/seed{self.seed}"

    def protocol(self) -> Protocol:
        return get_protocol(self.dataset, self.preset, self.overrides)

    def make_method(self) -> Method:
        return make_method(self.method, self.protocol(), self.method_overrides.get(self.method))

    def paths(self) -> RunPaths:
        return RunPaths.of(Path(self.results), self.dataset, self.preset, self.method, self.seed)


def default_keep_epochs(method_name: str, protocol: Protocol) -> set[int]:
    """Begin epochs at which registered methods warm-start from `method_name` (with defaults)."""
    keep = set()
    for other in load_methods().names():
        warm = make_method(other, protocol).warm_start(protocol)
        if warm and warm[0] == method_name:
            keep.add(warm[1])
    return keep


def base_job(job: Job, method: Method, protocol: Protocol) -> tuple[Job, int] | None:
    """The job this job warm-starts from, and the begin epoch (None if it trains from scratch)."""
    warm = method.warm_start(protocol)
    if warm is None:
        return None
    base, epoch = warm
    if not 0 <= epoch < protocol.epochs:  # at least one epoch of the method's own training
        raise UserError(f"{job.method}: begin epoch {epoch} leaves no epoch to train (it must be "
                        f"in 0..{protocol.epochs - 1}); raise epochs or set "
                        f"{job.method}.begin_epoch lower")
    return Job(job.dataset, job.preset, base, job.seed, job.results, dict(job.overrides),
               dict(job.method_overrides), job.data_dir, job.download, (epoch,), job.device,
               job.show_progress), epoch


def spec_of(job: Job) -> tuple[RunSpec, Method, Protocol, tuple[Job, int] | None]:
    protocol = job.protocol()
    method = job.make_method()
    base = base_job(job, method, protocol)
    warm = None
    if base is not None:
        base_spec = spec_of(base[0])[0]
        warm = {"method": base[0].method, "epoch": base[1], "run_key": base_spec.key}
    spec = RunSpec(job.method, job.dataset, job.preset, job.seed, protocol.as_dict(),
                   method.hparams(), warm)
    return spec, method, protocol, base


def run_job(job: Job) -> dict[str, Any]:
    """Train and evaluate one run; returns its record. Idempotent and resumable."""
    spec, method, protocol, base = spec_of(job)
    paths = job.paths()
    if paths.spec.exists():
        claim_spec(paths, spec)  # refuses to mix runs of different settings in one directory
    if paths.record.exists():
        return read_json(paths.record)
    claim_spec(paths, spec)  # the run exists from now on (status/report list it if it fails)
    warm_ckpt = None
    if base is not None:
        base_paths = base[0].paths()
        warm_ckpt = base_paths.epoch_ckpt(base[1])
        if not paths.ckpt.exists() and not warm_ckpt.exists():
            if base_paths.done.exists() or base_paths.record.exists():
                raise UserError(f"{base[0].name} finished without a checkpoint at epoch "
                                f"{base[1]}; delete {base_paths.root} to retrain it, or set "
                                f"{job.method}.begin_epoch to one it kept")
            raise UserError(f"{job.name} warm-starts from {base[0].name}, which has not reached "
                            f"epoch {base[1]}; run it first (`fairbench run` plans this for you)")
    device = resolve_device(job.device)
    atomic_write_json(paths.env, environment(device))
    splits = load_splits(job.dataset, seed=job.seed, val_per_class=protocol.val_per_class,
                         train_per_class=protocol.train_per_class,
                         test_per_class=protocol.test_per_class,
                         data_dir=Path(job.data_dir) if job.data_dir else None,
                         download=job.download)
    if not paths.done.exists():
        keep = default_keep_epochs(job.method, protocol) | set(job.keep_epochs)
        Trainer(method=method, protocol=protocol, splits=splits, paths=paths, seed=job.seed,
                device=device, keep_epochs=keep, warm_start_ckpt=warm_ckpt,
                show_progress=job.show_progress).run()
    train = read_json(paths.done)
    evaluator = Evaluator(protocol, device, show_progress=job.show_progress)
    data = EvalSet(splits.test_x, splits.test_y, splits.info.classes)
    model = build_model(protocol.model, splits.info.num_classes, splits.info.shape)
    evals, eval_files = {}, {}
    for name in CHECKPOINTS:
        ckpt = load_state(getattr(paths, name))
        model.load_state_dict(ckpt["model"])
        key = eval_key(protocol, weights_digest(model))
        out = paths.eval_dir / f"{name}-{key}.json"
        twin = next((p for p in paths.eval_dir.glob(f"*-{key}.json") if p != out), None)
        if not out.exists() and twin is not None and "autoattack" in read_json(twin)["attacks"]:
            shutil.copyfile(twin, out)  # identical weights (best == last): evaluate once
        result = evaluator.evaluate(model, data, out)
        evals[name] = {**result["attacks"], "epoch": ckpt.get("epoch"),
                       "seconds": result["seconds"]}
        eval_files[name] = str(out.relative_to(paths.root))
    record = {
        **spec.as_dict(), "classes": list(splits.info.classes),
        **{k: v for k, v in read_json(paths.env).items() if k.startswith("git_")},
        "env": read_json(paths.env), "train": train, "eval": evals, "eval_files": eval_files,
        "eval_settings": eval_settings(protocol), "history": read_jsonl(paths.log),
    }
    atomic_write_json(paths.record, record)
    return record
