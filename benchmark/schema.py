"""The one declared schema of the files a run writes: run spec, epoch log lines, training
summary, failure and run record. `run`, `eval` and the report build and read them through these
classes.

Every class writes plain JSON (`as_dict`) and reads it back (`from_dict`), refusing a dict that
lacks a required key (the file is then reported as damaged, never half-read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T", bound="_Schema")
SCHEMA_VERSION = 2  # 2: code digests in the spec, method logs under "method", failed.json


def variant_label(method: str, variant: str) -> str:
    """A run's name in tables and its directory: `trades`, or `trades[beta=3]` for a variant."""
    return f"{method}[{variant}]" if variant else method


class SchemaError(ValueError):
    """A file's JSON does not hold what its schema requires."""


class _Schema:
    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: Any) -> T:
        if not isinstance(data, dict):
            raise SchemaError(f"expected a JSON object for {cls.__name__}")
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise SchemaError(f"{cls.__name__} lacks {', '.join(missing)}")
        names = {f.name for f in fields}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's numbers (not where or on what it ran)."""

    method: str
    dataset: str
    preset: str
    seed: int
    protocol: dict[str, Any]
    hparams: dict[str, Any]
    warm_start: dict[str, Any] | None = None   # {"method", "epoch", "run_key"} of the base
    end_epoch: int | None = None    # the absolute epoch training stops at (None: protocol epochs)
    code: dict[str, str] = field(default_factory=dict)  # {file: digest} (provenance.py)
    schema: int = SCHEMA_VERSION
    variant: str = ""               # a sweep's or --tag's name for these settings ("" = none)

    @property
    def model(self) -> str:
        return self.protocol["model"]

    @property
    def key(self) -> str:
        fields = asdict(self)
        if not fields["variant"]:  # runs without a variant keep the keys they always had
            del fields["variant"]
        blob = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model": self.model, "run_key": self.key}


@dataclass
class EpochLog(_Schema):
    """One line of train.jsonl. What a method logs lives under `method`, so it can never
    overwrite the trainer's keys."""

    epoch: int                      # epochs completed (absolute, counting a warm start's)
    lr: float
    loss: float                     # mean training loss over the epoch's updates
    updates: int
    skipped_batches: int
    seconds: float                  # training loop only (no validation, no checkpointing)
    passes: int                     # forward + backward passes of the epoch
    val: dict[str, Any]             # validation clean/robust avg, worst, per class
    best: bool                      # this epoch became model_best.pt
    method: dict[str, Any] = field(default_factory=dict)
    val_seconds: float | None = None  # validation for checkpoint selection (not in `seconds`)

    @classmethod
    def from_dict(cls, data: Any) -> EpochLog:
        """Also reads logs written before the `method` namespace (method keys at top level)."""
        if isinstance(data, dict) and "method" not in data:
            names = {f.name for f in dataclasses.fields(cls)}
            data = {**{k: v for k, v in data.items() if k in names},
                    "method": {k: v for k, v in data.items() if k not in names}}
        return super().from_dict(data)


@dataclass
class TrainSummary(_Schema):
    """train_done.json: the training cost and checkpoint choice of a finished run (None for
    models scored with `fairbench eval`, which were not trained here)."""

    seconds: float | None = None                # this run's own training loop seconds
    passes: int | None = None                   # its own forward + backward passes
    forward_passes: int | None = None
    backward_passes: int | None = None
    epochs: int | None = None                   # own epochs (after the warm start)
    best_epoch: int | None = None
    best_val: float | None = None               # validation score of model_best.pt
    warm_start_seconds: float | None = None
    warm_start_passes: int | None = None
    seconds_with_warm_start: float | None = None
    passes_with_warm_start: int | None = None
    peak_memory_mb: float | None = None         # RSS on CPU, max allocated on GPU (memory.py)


@dataclass
class Failure(_Schema):
    """failed.json: why a run stopped without numbers. Rerunning the command retries it."""

    reason: str                     # one line
    kind: str                       # "non-finite" | "crash" | "setting" | "not-run"
    epoch: int | None = None        # 1-based epoch being trained, when known
    batch: int | None = None        # batch index within that epoch, when known
    host: str | None = None
    time: float | None = None       # unix time
    traceback: str | None = None    # file name of the traceback, relative to the run directory

    def describe(self) -> str:
        return self.reason


@dataclass
class RunRecord(_Schema):
    """record.json: the spec, environment, training summary, evaluation and history of one run,
    written last (its presence means the run finished)."""

    method: str
    dataset: str
    preset: str
    seed: int
    protocol: dict[str, Any]
    hparams: dict[str, Any]
    run_key: str
    model: str
    classes: list[str]
    env: dict[str, Any]
    train: dict[str, Any]                       # TrainSummary.as_dict()
    eval: dict[str, Any]                        # checkpoint -> attack -> summary
    eval_files: dict[str, str]
    eval_settings: dict[str, Any]
    history: list[dict[str, Any]]               # EpochLog.as_dict() per epoch
    warm_start: dict[str, Any] | None = None
    end_epoch: int | None = None
    code: dict[str, str] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    git_commit: str | None = None
    git_dirty: bool | None = None
    source: dict[str, Any] | None = None        # models scored with `fairbench eval`
    variant: str = ""                           # RunSpec.variant
    eval_cost: dict[str, Any] | None = None     # {"seconds", "peak_memory_mb"} of evaluation

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """Also checks the nested parts the report reads (history lines, train, eval)."""
        record = super().from_dict(data)
        for name in ("protocol", "hparams", "env", "train", "eval", "eval_files"):
            if not isinstance(getattr(record, name), dict):
                raise SchemaError(f"RunRecord.{name} is not a JSON object")
        if not isinstance(record.history, list) or not isinstance(record.classes, list):
            raise SchemaError("RunRecord.history and classes must be lists")
        for line in record.history:
            EpochLog.from_dict(line)
        return record
