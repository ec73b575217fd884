"""The jobs of a search: one per configuration of a method, on the first seed, trained and
validated but never evaluated on the test set; and the job of a selected configuration.

A configuration sets the method's own knobs and the learning-rate factor f (the protocol's lr
and finetune_lr times f, its weight decay divided by f; see core/search_space.py). Its run is
named `METHOD[tune=K]`; the default configuration of a method trained from scratch is its plain
run (`METHOD`), which the protocol-default row reports anyway. A warm-started method searches its
own phase, every configuration starting from the base method's selected configuration (named in
the run: `ham[base-tune3,tune=2]`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from benchmark.catalog import make_method, method_registry
from benchmark.common.errors import UserError
from benchmark.core.protocol import Protocol
from benchmark.core.search_space import LR_FACTOR_KEY, dimensions
from benchmark.runs.job import BaseChoice, Job
from benchmark.tuning.sampling import configurations
from benchmark.tuning.tune_file import TriedConfig

TUNE_VARIANT = "tune"


def lr_overrides(protocol: Protocol, factor: float) -> dict[str, Any]:
    """Protocol overrides of learning-rate factor f: lr and finetune_lr times f, weight decay
    divided by f (the same training as the loss times f; none for f = 1)."""
    if factor == 1.0:
        return {}
    out: dict[str, Any] = {"lr": protocol.lr * factor,
                           "weight_decay": protocol.weight_decay / factor}
    if protocol.finetune_lr is not None:
        out["finetune_lr"] = protocol.finetune_lr * factor
    return out


def check_user_settings(method: str, method_overrides: dict[str, dict[str, Any]]) -> None:
    """A searched knob the user also fixed with --set is ambiguous: one line before any work."""
    fixed = set(method_overrides.get(method, {})) & set(dimensions(method_registry().get(method)))
    if fixed:
        knob = sorted(fixed)[0]
        raise UserError(f"--set {method}.{knob} fixes a hyperparameter that `fairbench tune` "
                        f"searches; drop it (or run it as a variant with `fairbench run`)")


def config_job(template: Job, protocol: Protocol, config: TriedConfig,
               base: BaseChoice | None) -> Job:
    """The job of one configuration (evaluation as in `template`)."""
    knobs = {k: v for k, v in config.settings.items() if k != LR_FACTOR_KEY}
    hparams = {**template.method_overrides.get(template.method, {}), **knobs}
    return replace(template, overrides={**template.overrides,
                                        **lr_overrides(protocol, config.settings[LR_FACTOR_KEY])},
                   method_overrides={**template.method_overrides, template.method: hparams},
                   variant=config_variant(config.index, base), variant_protocol=False,
                   base_choice=base, teacher_overrides=template.overrides)


def config_variant(index: int, base: BaseChoice | None) -> str:
    """`tune=K`; `base-tune3,tune=K` when the base is a tuned run (the name says which base,
    so a changed base selection never reuses a run of the old one); "" for the default
    configuration on the plain base: the plain run itself."""
    if base is None or base.variant == "":
        return "" if index == 0 else f"{TUNE_VARIANT}={index}"
    tag = base.variant.replace("=", "").replace(",", ".")
    return f"base-{tag},{TUNE_VARIANT}={index}"


def tried_configs(template: Job, protocol: Protocol, budget: int,
                  base: BaseChoice | None) -> list[TriedConfig]:
    """The first `budget` configurations the protocol can run (one the method's own checks
    refuse, e.g. HAM's M past the attack's steps, is skipped for the next one)."""
    cls = method_registry().get(template.method)
    default = make_method(template.method, protocol, template.method_overrides.get(template.method))
    first = {LR_FACTOR_KEY: 1.0, **{k: getattr(default, k) for k in cls.search_space}}
    out: list[TriedConfig] = []
    for settings in [first, *configurations(cls, 4 * budget)[1:]]:  # the preset's defaults first
        config = TriedConfig(len(out), "", settings)
        job = config_job(template, protocol, config, base)
        try:
            make_method(job.method, protocol, job.method_overrides.get(job.method))
        except UserError:
            continue
        out.append(replace(config, label=job.label))
        if len(out) == budget:
            return out
    raise UserError(f"{template.method}: fewer than {budget} configurations of its search space "
                    f"are valid under this preset; lower --budget")


def base_choice(base_job: Job | None) -> BaseChoice | None:
    """The pinned base of a dependent: the base method's selected configuration's job."""
    if base_job is None:
        return None
    return BaseChoice(base_job.variant, dict(base_job.overrides),
                      {k: dict(v) for k, v in base_job.method_overrides.items()})
