"""The one declared schema of every file in a results tree: run spec, epoch log lines, training
summary, failure, run record (with each checkpoint's typed evaluation), plan file and lock file.
`run`, `eval`, `status` and the report build and read them through these classes.

Every class writes plain JSON (`as_dict`) and reads it back (`from_dict`), refusing data that
lacks a required key (the file is then reported as damaged, never half-read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark.common.schema import Schema, SchemaError
from benchmark.core.metrics import AttackResult
from benchmark.core.train_state import EpochLog

CHECKPOINTS = ("best", "last")  # the checkpoints every run evaluates and records
SCHEMA_VERSION = 3  # 3: the record embeds its spec; 2: code digests, method logs, failed.json


def variant_label(method: str, variant: str) -> str:
    """A run's name in tables and its directory: `trades`, or `trades[beta=3]` for a variant."""
    return f"{method}[{variant}]" if variant else method


def label_method(label: str) -> str:
    """The method of a run's name (`variant_label`'s inverse): `trades[beta=3]` -> `trades`."""
    return label.partition("[")[0]


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
    code: dict[str, str] = field(default_factory=dict)  # harness / method digests (provenance)
    schema: int = SCHEMA_VERSION
    variant: str = ""               # a sweep's or --tag's name for these settings ("" = none)
    code_files: dict[str, str] = field(default_factory=dict)  # per file; names what changed
    teacher: dict[str, Any] | None = None  # {"method", "run_key"} or {"file", "sha256"}

    @property
    def model(self) -> str:
        return self.protocol["model"]

    @property
    def key(self) -> str:
        fields = asdict(self)
        del fields["code_files"]  # where the code sits is not what it computes
        del fields["schema"]      # the file format's version changes no number
        for name in ("variant", "teacher"):  # unset: the keys runs always had
            if not fields[name]:
                del fields[name]
        blob = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model": self.model, "run_key": self.key}

    @classmethod
    def from_dict(cls, data: Any) -> RunSpec:
        """A spec from spec.json or a record (older records keep its fields at top level)."""
        if not isinstance(data, dict):
            raise SchemaError("expected a JSON object for RunSpec")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("method", "dataset", "preset", "seed", "protocol", "hparams")
                   if k not in data]
        if missing:
            raise SchemaError(f"RunSpec lacks {', '.join(missing)}")
        spec = cls(**{k: v for k, v in data.items() if k in names})
        if not isinstance(spec.protocol, dict) or not isinstance(spec.hparams, dict):
            raise SchemaError("RunSpec.protocol and hparams must be JSON objects")
        return spec

    @property
    def label(self) -> str:
        return variant_label(self.method, self.variant)


@dataclass
class Failure(Schema):
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
class CheckpointEval:
    """One checkpoint's evaluation in a record: each attack's result, the checkpoint's epoch,
    and the seconds and peak memory of each attack (JSON: one flat object)."""

    attacks: dict[str, AttackResult]
    epoch: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: dict[str, float] = field(default_factory=dict)

    EXTRA = ("epoch", "seconds", "peak_memory_mb")

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v.as_dict() for k, v in self.attacks.items()}, "epoch": self.epoch,
                "seconds": self.seconds, "peak_memory_mb": self.peak_memory_mb}

    @classmethod
    def from_dict(cls, data: Any) -> CheckpointEval:
        if not isinstance(data, dict):
            raise SchemaError("a checkpoint's evaluation is not a JSON object")
        attacks = {k: AttackResult.from_dict(v) for k, v in data.items() if k not in cls.EXTRA}
        return cls(attacks, data.get("epoch"), data.get("seconds") or {},
                   data.get("peak_memory_mb") or {})


@dataclass
class RunRecord(Schema):
    """record.json: the run's spec, environment, training summary, evaluation and history,
    written last (its presence means the run finished)."""

    spec: RunSpec
    classes: list[str]
    env: dict[str, Any]
    train: dict[str, Any]                       # TrainSummary.as_dict()
    eval: dict[str, CheckpointEval]             # checkpoint -> its evaluation
    eval_files: dict[str, str]
    eval_settings: dict[str, Any]
    history: list[dict[str, Any]]               # EpochLog.as_dict() per epoch
    source: dict[str, Any] | None = None        # models scored with `fairbench eval`
    eval_cost: dict[str, Any] | None = None     # {"seconds", "peak_memory_mb"} of evaluation
    schema: int = SCHEMA_VERSION

    @property
    def label(self) -> str:
        """The run's name in tables: its method, with its variant (`trades[beta=3]`) if any."""
        return self.spec.label

    @property
    def seed(self) -> int:
        return int(self.spec.seed)

    def result(self, checkpoint: str, attack: str) -> AttackResult | None:
        entry = self.eval.get(checkpoint)
        return entry.attacks.get(attack) if entry is not None else None

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**out, "spec": self.spec.as_dict(),
                "eval": {k: v.as_dict() for k, v in self.eval.items()}}

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """Reads schema 3 (the spec embedded) and older records (its fields at top level);
        checks the nested parts the report reads (history lines, train, eval)."""
        if not isinstance(data, dict):
            raise SchemaError("expected a JSON object for RunRecord")
        spec = RunSpec.from_dict(data.get("spec", data))
        record = super().from_dict({**data, "spec": spec})
        for name in ("env", "train", "eval", "eval_files"):
            if not isinstance(getattr(record, name), dict):
                raise SchemaError(f"RunRecord.{name} is not a JSON object")
        if not isinstance(record.history, list) or not isinstance(record.classes, list):
            raise SchemaError("RunRecord.history and classes must be lists")
        for line in record.history:
            EpochLog.from_dict(line)
        try:
            record.eval = {k: CheckpointEval.from_dict(v) for k, v in record.eval.items()}
        except TypeError as err:
            raise SchemaError(f"RunRecord.eval: {err}") from None
        return record


PLAN_FILE = "plan.json"  # <results>/<dataset>/<preset>/plan.json


@dataclass(frozen=True)
class PlannedRun:
    """One entry of plan.json: a run some launch planned (it may not have started yet)."""

    method: str                     # the run's label (`trades`, `trades[beta=3]`)
    seed: int

    @property
    def key(self) -> str:
        return f"{self.method}/seed{self.seed}"


@dataclass
class PlanFile(Schema):
    """plan.json: every run planned in one dataset/preset, merged over launches."""

    runs: dict[str, Any]            # PlannedRun.key -> {"method", "seed"}

    def planned(self) -> list[PlannedRun]:
        return [PlannedRun(str(v["method"]), int(v["seed"])) for v in self.runs.values()]

    @classmethod
    def of(cls, runs: list[PlannedRun]) -> PlanFile:
        return cls({r.key: {"method": r.method, "seed": r.seed} for r in sorted(
            runs, key=lambda r: r.key)})


LOCK_FILE = "lock.json"


@dataclass(frozen=True)
class LockInfo:
    """Content of a lock file; times are unix seconds. ``token == ""`` marks an unreadable file."""

    host: str
    pid: int
    token: str
    started: float
    heartbeat: float

    def age(self, now: float | None = None) -> float:
        """Seconds since the last heartbeat (negative under clock skew)."""
        return (time.time() if now is None else now) - self.heartbeat

    def describe(self) -> str:
        """Human-readable owner, e.g. ``"node12:4242, heartbeat 12 s ago"``."""
        if not self.token:
            return f"unreadable {LOCK_FILE}, modified {self.age():.0f} s ago"
        return f"{self.host}:{self.pid}, heartbeat {self.age():.0f} s ago"
