"""Protocols: everything that must be identical across methods for a fair comparison.

A protocol is a frozen dataclass; presets (`full`, `quick`, `smoke`) are registered per dataset.
Users override any field with `--set field=value` (unknown fields are an error).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from benchmark.common.coerce import coerce, field_types
from benchmark.common.errors import UserError
from benchmark.common.registry import Registry
from benchmark.common.settings import milestones_rule, setting, validate_settings

AA_VERSIONS = ("standard", "plus", "rand", "custom")
SELECT_ON = ("robust_avg", "robust_worst")
# how `fairbench tune` ranks configurations on validation (benchmark/tuning/selection.py)
TUNE_CRITERIA = ("robust_avg", "robust_worst", "robust_avg_worst")
TUNING_FIELDS = ("tune_budget", "tune_criterion")  # never in a run's spec: no run depends on them
SPEC_OMITTED = (*TUNING_FIELDS, "teacher_model")
AA_ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")


@dataclass(frozen=True)
class Protocol:
    """Data, model, optimizer, schedule, threat model and evaluation suite of one comparison."""

    dataset: str
    preset: str
    model: str
    # data
    val_per_class: int = setting(100, ge=1)
    train_per_class: int | None = setting(None, ge=1)  # class-balanced training subset (None: all)
    test_per_class: int | None = setting(None, ge=1)   # clean / PGD-20 / CW points per class
    # optimisation (schedule per epoch: lr * factor from each milestone epoch on)
    epochs: int = setting(120, ge=1)
    batch_size: int = setting(128, ge=1)
    lr: float = setting(0.1, gt=0)
    momentum: float = setting(0.9, ge=0, lt=1)
    nesterov: bool = False                               # Nesterov momentum (some official code)
    weight_decay: float = setting(5e-4, ge=0)
    lr_milestones: tuple[tuple[int, float], ...] = setting(
        ((60, 0.1), (90, 0.01), (110, 0.005)), rule=milestones_rule)
    finetune_lr: float | None = setting(None, gt=0)  # fine-tuning methods (FRL): constant lr
    # the teacher of distillation methods: this model trained by the method's teacher method
    # (same protocol and seed), its best-on-validation checkpoint (core/method.py DistillMethod)
    teacher_model: str | None = None
    # threat model and training attack
    eps: float = setting(8 / 255, gt=0, le=1)
    alpha: float = setting(2 / 255, gt=0, le=1)
    train_steps: int = setting(10, ge=1)
    # checkpoint selection on the validation split
    val_steps: int = setting(10, ge=1)                 # PGD steps of the validation attack
    select_on: str = setting("robust_avg", choices=SELECT_ON)
    # evaluation
    eval_pgd_steps: int = setting(20, ge=1)
    eval_cw_steps: int = setting(30, ge=1)
    aa_version: str = setting("standard", choices=AA_VERSIONS)
    aa_attacks: tuple[str, ...] = setting((), choices=AA_ATTACKS)  # for aa_version="custom"
    aa_per_class: int | None = setting(None, ge=1)  # AutoAttack points per class (None: all)
    aa_last_per_class: int | None = setting(None, ge=1)  # ... of the last checkpoint (None: same)
    aa_restarts: int = setting(1, ge=1)             # APGD restarts for aa_version="custom"
    aa_targets: int = setting(9, ge=1)              # APGD-T / FAB-T target classes for "custom"
    aa_iters: int = setting(100, ge=1)              # APGD iterations for "custom"
    eval_batch_size: int = setting(256, ge=1)
    # equal-budget tuning (`fairbench tune`): configurations per method, and how to rank them
    tune_budget: int = setting(8, ge=1)
    tune_criterion: str = setting("robust_avg_worst", choices=TUNE_CRITERIA)
    # speed paths (`make perf` measures them; README): channels_last is on because it was
    # faster here (0.84x the epoch time on 2 CPU cores, same accuracy); bf16 changes numerics
    amp: bool = False                       # bf16 autocast for training forward passes
    channels_last: bool = True              # NHWC weights and inputs, training and evaluation
    compile: bool = False
    # per-method hyperparameter defaults of this preset: {"method": {"field": value}}
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)

    def lr_at(self, epoch: int) -> float:
        factor = 1.0
        for start, f in self.lr_milestones:
            if epoch >= start:
                factor = f
        return self.lr * factor

    def aa_description(self) -> str:
        """One line naming what AutoAttack ran, for tables and captions."""
        if self.aa_version != "custom":
            return f"AutoAttack {self.aa_version}"
        return (f"AutoAttack custom [{', '.join(self.aa_attacks)}; {self.aa_restarts} restart(s), "
                f"{self.aa_iters} iters, {self.aa_targets} targets]")

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr_milestones"] = [list(m) for m in self.lr_milestones]
        d["aa_attacks"] = list(self.aa_attacks)
        return d

    def spec_dict(self) -> dict[str, Any]:
        """The fields a run depends on (its spec): all but the tuning settings, which only pick
        which runs to make, and the teacher model (a student's spec names its teacher run);
        Nesterov only when on (older runs keep their keys' settings)."""
        d = {k: v for k, v in self.as_dict().items() if k not in SPEC_OMITTED}
        if not self.nesterov:
            del d["nesterov"]
        return d

    def for_checkpoint(self, name: str) -> Protocol:
        """The protocol that evaluates checkpoint `name`: the last one may keep fewer AutoAttack
        points (`aa_last_per_class`), the best one (the headline) keeps `aa_per_class`."""
        if name == "last" and self.aa_last_per_class is not None:
            return dataclasses.replace(self, aa_per_class=self.aa_last_per_class)
        return self

    def validate(self) -> Protocol:
        """Every declared field range, then the checks across fields; UserError if any fails."""
        validate_settings(self)
        if self.nesterov and self.momentum == 0:
            raise UserError("nesterov=true needs momentum > 0 (torch's SGD refuses it); set "
                            "momentum or nesterov=false")
        if self.aa_version == "custom" and not self.aa_attacks:
            raise UserError("aa_version=custom needs aa_attacks, "
                            "e.g. --set aa_attacks=apgd-ce,apgd-t")
        return self

    def validate_for(self, num_classes: int) -> Protocol:
        """Checks that need the dataset: target classes exist."""
        if self.aa_version == "custom" and self.aa_targets > num_classes - 1:
            raise UserError(f"aa_targets={self.aa_targets} must be <= {num_classes - 1} (the "
                            f"other classes of {self.dataset}); fix with --set aa_targets=N")
        return self


PRESETS: Registry[Protocol] = Registry("preset")


def preset_key(dataset: str, preset: str) -> str:
    return f"{dataset}/{preset}"


def register_preset(protocol: Protocol) -> Protocol:
    PRESETS.add(preset_key(protocol.dataset, protocol.preset), protocol.validate())
    return protocol


def apply_overrides(protocol: Protocol, overrides: dict[str, Any]) -> Protocol:
    """Return a copy with fields replaced, each value coerced to the field's declared type."""
    types = field_types(Protocol)
    changes = {}
    for key, value in overrides.items():
        if key not in types or key in ("dataset", "preset", "method_defaults"):
            raise UserError(f"unknown protocol field {key!r}; see `fairbench list presets` "
                            f"(method hyperparameters are set as METHOD.FIELD=VALUE)")
        changes[key] = coerce(value, types[key], key)
    return dataclasses.replace(protocol, **changes).validate()
