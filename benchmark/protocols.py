"""Protocols: everything that must be identical across methods for a fair comparison.

A protocol is a frozen dataclass; presets (`full`, `quick`, `smoke`) are registered per dataset.
Users override any field with `--set field=value` (unknown fields are an error).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from benchmark.coerce import coerce, field_types
from benchmark.errors import UserError
from benchmark.registry import Registry

AA_VERSIONS = ("standard", "plus", "rand", "custom")
AA_ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")


@dataclass(frozen=True)
class Protocol:
    """Data, model, optimizer, schedule, threat model and evaluation suite of one comparison."""

    dataset: str
    preset: str
    model: str
    # data
    val_per_class: int
    train_per_class: int | None = None      # class-balanced training subset (None: all)
    test_per_class: int | None = None       # clean / PGD-20 / CW evaluation points per class
    # optimisation (schedule per epoch: lr * factor from each milestone epoch on)
    epochs: int = 120
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: tuple[tuple[int, float], ...] = ((60, 0.1), (90, 0.01), (110, 0.005))
    finetune_lr: float | None = None        # fine-tuning methods (FRL) train at this constant lr
    # threat model and training attack
    eps: float = 8 / 255
    alpha: float = 2 / 255
    train_steps: int = 10
    # checkpoint selection on the validation split
    val_steps: int = 10                     # PGD steps of the validation attack
    select_on: str = "robust_avg"           # robust_avg | robust_worst
    # evaluation
    eval_pgd_steps: int = 20
    eval_cw_steps: int = 30
    aa_version: str = "standard"
    aa_attacks: tuple[str, ...] = ()        # only for aa_version="custom"
    aa_per_class: int | None = None         # AutoAttack points per class (None: all evaluated)
    aa_restarts: int = 1                    # APGD restarts for aa_version="custom"
    aa_targets: int = 9                     # APGD-T / FAB-T target classes for "custom"
    aa_iters: int = 100                     # APGD iterations for "custom"
    eval_batch_size: int = 256
    # speed paths (all off by default; see README)
    amp: bool = False                       # bf16 autocast for training forward passes
    channels_last: bool = False
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

    def validate(self) -> Protocol:
        if self.aa_version not in AA_VERSIONS:
            raise UserError(f"unknown AutoAttack version {self.aa_version!r}; use one of "
                            f"{', '.join(AA_VERSIONS)}")
        bad = [a for a in self.aa_attacks if a not in AA_ATTACKS]
        if bad:
            raise UserError(f"unknown AutoAttack attack(s) {bad}; use {', '.join(AA_ATTACKS)}")
        if self.aa_version == "custom" and not self.aa_attacks:
            raise UserError("aa_version=custom needs aa_attacks, "
                            "e.g. --set aa_attacks=apgd-ce,apgd-t")
        if self.select_on not in ("robust_avg", "robust_worst"):
            raise UserError("select_on must be robust_avg or robust_worst")
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError("epochs and batch_size must be positive")
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


def get_protocol(dataset: str, preset: str, overrides: dict[str, Any] | None = None) -> Protocol:
    from benchmark import presets  # noqa: F401  (registers the presets)

    key = preset_key(dataset, preset)
    if key not in PRESETS:
        have = [k.split("/")[1] for k in PRESETS.names() if k.startswith(dataset + "/")]
        if not have:
            from benchmark.datasets import DATASETS

            DATASETS.get(dataset)  # unknown dataset: one-line error naming the datasets
            raise UserError(f"dataset {dataset!r} has no presets yet")
        raise UserError(f"unknown preset {preset!r} for {dataset}; available: {', '.join(have)}")
    protocol = apply_overrides(PRESETS.get(key), overrides or {})
    from benchmark.models import MODELS

    MODELS.get(protocol.model)  # unknown model: one-line error before any work
    return protocol
