"""The method interface: the only thing a contributor must learn.

A method is a dataclass whose fields are its hyperparameters. It owns its loss, its attack (through
the shared primitive in `ctx.attack`) and any state it updates between epochs. It never reads
files, picks a device, builds an optimizer or counts passes: the harness does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from benchmark.common.coerce import coerce, field_types
from benchmark.common.errors import UserError
from benchmark.common.registry import Registry
from benchmark.common.settings import setting, validate_settings
from benchmark.core.attacks import PassCounter, PGDResult, pgd
from benchmark.core.datasets.base import TensorLoader
from benchmark.core.protocol import Protocol
from benchmark.core.recipe import Recipe


@dataclass
class TrainContext:
    """What a method may use during training."""

    protocol: Protocol
    num_classes: int
    device: torch.device
    counter: PassCounter
    val_loader: TensorLoader          # the class-balanced validation split (never the test set)
    epoch: int = 0                    # 0-based epoch being trained
    batch: int = 0                    # batch index within the epoch
    log: dict[str, float] = field(default_factory=dict)  # per-epoch scalars a method accumulates
    # the trainer's validation (per-class clean and PGD accuracy on the validation split)
    validator: Callable[[nn.Module], dict[str, Any]] | None = None
    teacher: nn.Module | None = None  # a DistillMethod's frozen teacher (eval mode, no grads)

    @property
    def eps(self) -> float:
        return self.protocol.eps

    @property
    def alpha(self) -> float:
        return self.protocol.alpha

    @property
    def steps(self) -> int:
        return self.protocol.train_steps

    def attack(self, model: nn.Module, x: Tensor, y: Tensor, **kwargs: Any) -> PGDResult:
        """The shared PGD primitive with the protocol's eps / alpha / steps as defaults."""
        kwargs.setdefault("eps", self.eps)
        kwargs.setdefault("alpha", self.alpha)
        kwargs.setdefault("steps", self.steps)
        return pgd(model, x, y, **kwargs)

    def validate(self, model: nn.Module) -> dict[str, Any]:
        """The trainer's own validation of `model` (keys clean_avg, clean_worst,
        clean_per_class, robust_avg, robust_worst, robust_per_class; the protocol's validation
        attack); its passes count as the method's training cost. The model's mode and the
        random state are restored."""
        if self.validator is None:
            raise RuntimeError("this TrainContext has no validator")
        was_training = model.training
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=cuda):  # the training randomness is untouched
                return self.validator(model)
        finally:
            model.train(was_training)

    def add(self, key: str, value: float) -> None:
        """Accumulate a per-epoch scalar (summed over batches; logged in train.jsonl)."""
        self.log[key] = self.log.get(key, 0.0) + float(value)


@dataclass
class Method:
    """Base class. Subclasses are dataclasses; register them with `@register_method(name)`."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""       # display name in tables and plots (default: `name`)
    # The method whose run this one starts from (None: trains from scratch; see WarmStartMethod)
    warm_start_base: ClassVar[str | None] = None
    # Fine-tuning methods train at the protocol's `finetune_lr` (constant) after the warm start.
    finetunes: ClassVar[bool] = False
    # Core methods run by default (`--methods core`, `make bench`).
    core: ClassVar[bool] = False
    # What `fairbench tune` may tune besides the learning-rate factor: the method's main knobs
    # (those its paper tunes), e.g. {"beta": LogRange(1, 10)} (core/search_space.py)
    search_space: ClassVar[dict[str, Any]] = {}
    # The paper's own training setting per dataset it reports ({"cifar10": Recipe(...)}), with
    # its facts stated in the class docstring (core/recipe.py; `fairbench run --recipe official`)
    recipes: ClassVar[dict[str, Recipe]] = {}

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor | None:
        """The training loss of one batch (model in train mode); None skips the update."""
        raise NotImplementedError

    def validate(self, protocol: Protocol) -> None:
        """Checks across hyperparameters and the protocol (raise UserError); ranges of single
        fields are declared with `setting(...)` and checked before this."""

    def warm_start(self, protocol: Protocol) -> tuple[str, int] | None:
        """(base method, epoch) this method starts from, or None to train from scratch
        (`WarmStartMethod` declares the usual rule; a method may override it)."""
        return None

    def teacher(self, protocol: Protocol) -> TeacherRequest | None:
        """The teacher this method learns from (None: none; see `DistillMethod`)."""
        return None

    def begin(self, protocol: Protocol) -> int:
        """The absolute epoch this method's own training starts at (0 without a warm start)."""
        warm = self.warm_start(protocol)
        return 0 if warm is None else warm[1]

    def end_epoch(self, protocol: Protocol) -> int:
        """The absolute epoch training stops at (the protocol's `epochs`)."""
        return protocol.epochs

    def lr_at(self, epoch: int, protocol: Protocol) -> float:
        """The learning rate of (absolute) epoch `epoch`: the protocol's schedule, or its
        constant `finetune_lr` for a fine-tuning method."""
        if self.finetunes and protocol.finetune_lr is not None:
            return protocol.finetune_lr
        return protocol.lr_at(epoch)

    def kept_weights(self, model: nn.Module) -> dict[str, Tensor] | None:
        """The weights the run keeps as its model (validated, selected, saved, evaluated) when
        they are not the trained model's own (e.g. CFA's weight average); None: the model's."""
        return None

    def on_epoch_start(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        """Called before each training epoch; returns scalars/lists to log."""
        return {}

    def on_epoch_end(self, model: nn.Module, ctx: TrainContext) -> dict[str, Any]:
        """Called after each training epoch; returns scalars/lists to log."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Method state to checkpoint (tensors, numbers, lists)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def hparams(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class WarmStartMethod(Method):
    """A method that starts from `warm_start_base`'s run of the same protocol and seed, at
    epoch round(begin_fraction * epochs) unless `begin_epoch` is set; it trains until the
    protocol's last epoch, or for `finetune_epochs` epochs from there when that is set."""

    warm_start_base: ClassVar[str | None] = "pgd_at"
    begin_fraction: ClassVar[float] = 0.0

    begin_epoch: int | None = setting(None, ge=0)
    finetune_epochs: int | None = setting(None, ge=1)  # None: until the protocol's last epoch

    def warm_start(self, protocol: Protocol) -> tuple[str, int] | None:
        if self.warm_start_base is None:
            return None
        begin = self.begin_epoch
        if begin is None:
            begin = round(self.begin_fraction * protocol.epochs)
        return self.warm_start_base, int(begin)

    def end_epoch(self, protocol: Protocol) -> int:
        if self.finetune_epochs is None:
            return protocol.epochs
        return self.begin(protocol) + int(self.finetune_epochs)


@dataclass(frozen=True)
class TeacherRequest:
    """The teacher a method needs: `method` trained on `model` under the same protocol and seed
    (a dependency run, planned and shared), or the checkpoint `file` (then method is None)."""

    model: str
    method: str | None = None
    file: str | None = None


@dataclass
class DistillMethod(Method):
    """A method that learns from a teacher (`ctx.teacher` during training): the protocol's
    `teacher_model` trained by `teacher_method` (the same protocol and seed, its checkpoint
    selected on validation), or the checkpoint file `teacher_file` of `teacher_model`."""

    teacher_method: ClassVar[str] = "trades"

    teacher_file: str | None = None

    def hparams(self) -> dict[str, Any]:
        """Without `teacher_file`: the run key holds the file's digest, not where it lies."""
        return {k: v for k, v in super().hparams().items() if k != "teacher_file"}

    def teacher(self, protocol: Protocol) -> TeacherRequest | None:
        if protocol.teacher_model is None:
            raise UserError(f"{self.name} needs a teacher model: --set teacher_model=NAME "
                            f"(`fairbench list models`)")
        if self.teacher_file is not None:
            return TeacherRequest(protocol.teacher_model, file=self.teacher_file)
        return TeacherRequest(protocol.teacher_model, method=self.teacher_method)


METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str):
    """Class decorator: make `cls` a dataclass and register it under `name`."""

    def decorate(cls: type[Method]) -> type[Method]:
        cls = cls if dataclasses.is_dataclass(cls) and "__dataclass_fields__" in cls.__dict__ \
            else dataclass(cls)
        if cls.warm_start_base is not None and cls.warm_start is Method.warm_start:
            raise UserError(f"method {name} sets warm_start_base but trains from scratch: derive "
                            f"it from WarmStartMethod (or define its own warm_start)")
        cls.name = name
        if "title" not in cls.__dict__:  # a subclass never shows its parent's title
            cls.title = name
        METHODS.add(name, cls)
        return cls

    return decorate


def build_method(cls: type[Method], protocol: Protocol,
                 overrides: dict[str, Any] | None = None) -> Method:
    """Instantiate a method class with the preset's defaults, then user overrides (coerced to the
    declared field types), and check every declared range and the method's own `validate`."""
    name = cls.name
    types = field_types(cls)
    values: dict[str, Any] = {}
    for source in (protocol.method_defaults.get(name, {}), overrides or {}):
        for key, value in source.items():
            if key not in types:
                raise UserError(f"method {name} has no hyperparameter {key!r}; it has: "
                                f"{', '.join(types) or 'none'}")
            values[key] = coerce(value, types[key], f"{name}.{key}")
    method = cls(**values)
    validate_settings(method, prefix=f"{name}.")
    method.validate(protocol)
    return method
