"""A job (what to run: plain data) and the Run it resolves to once: protocol, method, spec and
warm-start base, derived in one place and used by planning, launchers, preflight and the run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark.catalog import get_protocol, make_method, method_registry
from benchmark.common.errors import UserError
from benchmark.core.method import Method
from benchmark.core.protocol import Protocol
from benchmark.core.recipe import RECIPE_NAME
from benchmark.core.run_paths import RunPaths
from benchmark.runs.provenance import code_digests, code_files, file_sha256
from benchmark.runs.schema import RunSpec, variant_label


@dataclass(frozen=True)
class BaseChoice:
    """The settings of the base run a job warm-starts from, when they are not the job's own
    (`fairbench tune`: the base method's selected configuration)."""

    variant: str
    overrides: dict[str, Any] = field(default_factory=dict)
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """What to run; plain data (it pickles for submitit)."""

    dataset: str
    preset: str
    method: str
    seed: int
    results: str = "results"
    overrides: dict[str, Any] = field(default_factory=dict)         # protocol fields
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # {method: hparams}
    data_dir: str | None = None
    download: bool = False
    keep_epochs: tuple[int, ...] = ()  # epochs whose checkpoints dependents start from
    device: str | None = None
    show_progress: bool = True
    variant: str = ""                # what this run's settings differ by ("beta=3", a --tag)
    variant_protocol: bool = False   # the variant changes protocol fields (bases share it)
    epoch_lines: bool = False        # one line per epoch on stderr (output is not a terminal)
    evaluate: bool = True            # False: train and validate only, never read the test set
    base_choice: BaseChoice | None = None  # a pinned warm-start base (tuning); None: inherited
    teacher_overrides: dict[str, Any] | None = None  # the teacher's protocol (None: `overrides`)

    @property
    def label(self) -> str:
        """The run's name in tables and its directory: `trades` or `trades[beta=3]`."""
        return variant_label(self.method, self.variant)

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.preset}/{self.label}/seed{self.seed}"

    def paths(self) -> RunPaths:
        return RunPaths.of(Path(self.results), self.dataset, self.preset, self.label, self.seed)

    def resolve(self) -> Run:
        """Validate every setting and derive the run (see `Run`)."""
        return resolve(self)


@dataclass(frozen=True)
class Run:
    """A job resolved once: its protocol, method (hyperparameters validated), spec (run key),
    warm-start base (itself a Run) and begin epoch, and the epochs whose checkpoints to keep."""

    job: Job
    protocol: Protocol
    method: Method
    spec: RunSpec
    base: Run | None = None
    begin_epoch: int = 0             # the base's epoch this run starts from (0 without a base)
    keep_epochs: frozenset[int] = frozenset()
    teacher: Run | None = None       # the teacher run a distillation method learns from

    @property
    def dependencies(self) -> list[Run]:
        """The runs that must finish before this one: its warm-start base and its teacher."""
        return [r for r in (self.base, self.teacher) if r is not None]

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def label(self) -> str:
        return self.job.label

    @property
    def paths(self) -> RunPaths:
        return self.job.paths()

    @property
    def end_epoch(self) -> int:
        return self.method.end_epoch(self.protocol)

    def keeping(self, epochs: tuple[int, ...]) -> Run:
        """The same run, also keeping the checkpoints of `epochs` (a dependent needs them)."""
        merged = tuple(sorted(set(self.job.keep_epochs) | set(epochs)))
        return replace(self, job=replace(self.job, keep_epochs=merged),
                       keep_epochs=self.keep_epochs | set(epochs))

    def __reduce__(self) -> tuple[Any, tuple[Job]]:
        """Pickled as its job (resolved again where it is unpickled: a submitit worker)."""
        return resolve, (self.job,)


def resolve(job: Job) -> Run:
    """The job's Run; every setting is validated here (UserError: one line)."""
    protocol = get_protocol(job.dataset, job.preset, job.overrides)
    method = make_method(job.method, protocol, job.method_overrides.get(job.method))
    base, begin, warm = None, 0, None
    if (base_spec := base_job(job, method, protocol)) is not None:
        base_request, begin = base_spec
        base = resolve(base_request)
        warm = {"method": base.label, "epoch": begin, "run_key": base.spec.key}
    teacher, teacher_spec = resolve_teacher(job, method, protocol)
    spec = RunSpec(job.method, job.dataset, job.preset, job.seed, protocol.spec_dict(),
                   method.hparams(), warm, method.end_epoch(protocol),
                   code_digests(type(method)), variant=job.variant,
                   code_files=code_files(type(method)), teacher=teacher_spec)
    keep = frozenset(default_keep_epochs(job.method, protocol) | set(job.keep_epochs))
    return Run(job, protocol, method, spec, base, begin, keep, teacher)


TEACHER_VARIANT = "teacher"


def is_teacher_variant(variant: str) -> bool:
    """Whether a run's variant names a distillation teacher (`teacher`, `teacher,...`)."""
    return variant.split(",", 1)[0] == TEACHER_VARIANT


def resolve_teacher(job: Job, method: Method, protocol: Protocol
                    ) -> tuple[Run | None, dict[str, Any] | None]:
    """The teacher run (`TEACHER[teacher]`: the teacher method on the protocol's teacher model,
    same seed, the job's protocol without a tuned configuration's changes), or the file's
    digest; (None, None) for a method without a teacher."""
    request = method.teacher(protocol)
    if request is None:
        return None, None
    if request.file is not None:  # the file's content, not its path, is in the run key
        path = Path(request.file)
        if not path.is_file():
            raise UserError(f"{job.method}.teacher_file {path} does not exist; give a "
                            f"checkpoint of {request.model} (or drop it to train a teacher)")
        return None, {"model": request.model, "sha256": file_sha256(path)}
    overrides = job.overrides if job.teacher_overrides is None else job.teacher_overrides
    teacher = resolve(replace(job, method=request.method, variant=teacher_variant(job),
                              overrides={**overrides, "model": request.model},
                              keep_epochs=(), variant_protocol=True, base_choice=None,
                              teacher_overrides=None))
    return teacher, {"method": teacher.label, "run_key": teacher.spec.key}


def teacher_variant(job: Job) -> str:
    """`teacher`, or `teacher,VARIANT` when the student's variant changes the protocol (a
    sweep, a tag, `recipe=METHOD` under --recipe): teachers of other settings never share a name;
    the teacher's own warm-start base takes the same name (variant_protocol)."""
    if job.teacher_overrides is not None or not job.variant:
        return TEACHER_VARIANT
    if job.variant == RECIPE_NAME:
        return f"{TEACHER_VARIANT},recipe={job.method}"
    return f"{TEACHER_VARIANT},{job.variant}" if job.variant_protocol else TEACHER_VARIANT


def default_keep_epochs(method_name: str, protocol: Protocol) -> set[int]:
    """Begin epochs at which registered methods warm-start from `method_name` (with defaults)."""
    keep = set()
    for other in method_registry().names():
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
    if job.base_choice is not None:
        pinned = job.base_choice
        return replace(job, method=base, keep_epochs=(epoch,), variant=pinned.variant,
                       overrides=pinned.overrides, method_overrides=pinned.method_overrides,
                       variant_protocol=False, base_choice=None), epoch
    shared = job.variant if job.variant_protocol else ""  # a protocol variant needs its own base
    return replace(job, method=base, keep_epochs=(epoch,), variant=shared,
                   variant_protocol=bool(shared)), epoch
