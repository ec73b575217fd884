"""Expand a benchmark (dataset x methods x seeds) into jobs ordered in dependency waves."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark.common.errors import UserError
from benchmark.common.fileio import atomic_write_json
from benchmark.planning.recipes import recipe_job
from benchmark.runs.job import Job, Run
from benchmark.runs.schema import PlanFile, PlannedRun
from benchmark.runs.state import plan_path, read_plan


def plan(*, dataset: str, preset: str, methods: Sequence[str], seeds: Sequence[int],
         method_overrides: dict[str, dict[str, Any]] | None = None,
         sweep: dict[str, Sequence[Any]] | None = None, tag: str = "", recipe: bool = False,
         **common: Any) -> list[list[Run]]:
    """Resolved runs in waves: every run's warm-start base is in an earlier wave (added if not
    asked for).

    A base that several methods start from is trained once and keeps a checkpoint at each of
    their begin epochs. `sweep` ({"trades.beta": [1, 3], "epochs": [5, 10]}) plans the grid:
    each job runs every combination of the keys that concern it (its own hyperparameters and
    protocol fields) as a variant named by what differs (`trades[beta=3]`); `tag` names the
    variant of this command's settings. A variant that changes protocol fields gets bases of
    the same variant; one that changes only the method's own settings starts from the plain
    base. `recipe` runs every method under its paper's own recipe instead (planning/recipes.py).
    """
    method_overrides = method_overrides or {}
    if recipe:
        if sweep or tag:
            raise UserError("--recipe runs each paper's own setting; it does not combine with "
                            "--sweep or --tag (run those without --recipe)")
        return plan_jobs([recipe_job(Job(dataset, preset, m, seed,
                                         method_overrides=method_overrides, **common))
                          for seed in seeds for m in methods])
    jobs = [variant_job(Job(dataset, preset, m, seed, method_overrides=method_overrides,
                            **common), variant)
            for seed in seeds for m in methods
            for variant in variants(m, sweep or {}, tag, bool(common.get("overrides")))]
    return plan_jobs(jobs)


def plan_jobs(jobs: Sequence[Job]) -> list[list[Run]]:
    """The jobs resolved, with their warm-start bases, in dependency waves (a base shared by
    several jobs runs once and keeps a checkpoint at each of their begin epochs)."""
    runs: dict[tuple[str, int], Run] = {}
    depth: dict[tuple[str, int], int] = {}

    def add(run: Run) -> int:
        key = (run.label, run.job.seed)
        if key in runs:
            if runs[key].spec.key != run.spec.key:
                raise UserError(f"{run.name} is planned twice with different settings (run keys "
                                f"{runs[key].spec.key} and {run.spec.key}); name one of them "
                                f"with --tag")
            merged = runs[key].keeping(run.job.keep_epochs)  # epochs a dependent needs
            if run.job.evaluate and not merged.job.evaluate:  # asked for elsewhere: evaluate
                merged = replace(merged, job=replace(merged.job, evaluate=True))
            runs[key] = merged
            return depth[key]
        level = max((add(dep) + 1 for dep in run.dependencies), default=0)
        runs[key], depth[key] = run, level
        return level

    for job in jobs:
        add(job.resolve())
    waves: list[list[Run]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for key, run in runs.items():
        waves[depth[key]].append(run)
    return waves


@dataclass(frozen=True)
class Variant:
    """One point of a sweep for one method: its label, and the settings it adds."""

    label: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)
    method: dict[str, Any] = field(default_factory=dict)
    changes_protocol: bool = False


def variants(method: str, sweep: dict[str, Sequence[Any]], tag: str, tag_protocol: bool
             ) -> list[Variant]:
    """The variants of `method` under the sweep: the grid over the keys that concern it."""
    keys = [k for k in sweep if "." not in k or k.split(".", 1)[0] == method]
    out = []
    for values in itertools.product(*(sweep[k] for k in keys)):
        names = [tag] if tag else []
        protocol, hparams = {}, {}
        for key, value in zip(keys, values, strict=True):
            if "." in key:
                hparams[key.split(".", 1)[1]] = value
                names.append(f"{key.split('.', 1)[1]}={value}")
            else:
                protocol[key] = value
                names.append(f"{key}={value}")
        out.append(Variant(",".join(names), protocol, hparams,
                           bool(protocol) or (bool(tag) and tag_protocol)))
    return out


def variant_job(job: Job, variant: Variant) -> Job:
    if not variant.label:
        return job
    hparams = {**job.method_overrides.get(job.method, {}), **variant.method}
    return replace(job, overrides={**job.overrides, **variant.protocol},
                   method_overrides={**job.method_overrides, job.method: hparams},
                   variant=variant.label, variant_protocol=variant.changes_protocol)


def record_plan(waves: Sequence[Sequence[Run]]) -> None:
    """Add the planned runs to <results>/<dataset>/<preset>/plan.json (merged with earlier
    launches), so `status` and the report list runs that have not started yet."""
    by_file: dict[Path, list[PlannedRun]] = {}
    for job in (run.job for wave in waves for run in wave):
        path = plan_path(Path(job.results), job.dataset, job.preset)
        by_file.setdefault(path, read_plan(path)).append(PlannedRun(job.label, job.seed))
    for path, planned in by_file.items():
        atomic_write_json(path, PlanFile.of(list(set(planned))).as_dict())


def check_overrides_used(waves: Sequence[Sequence[Run]],
                         method_overrides: dict[str, dict[str, Any]]) -> None:
    """A --set METHOD.FIELD for a method that is not planned is an error (likely a typo)."""
    planned = {run.job.method for wave in waves for run in wave}
    unused = sorted(set(method_overrides) - planned)
    if unused:
        raise UserError(f"--set {unused[0]}.{next(iter(method_overrides[unused[0]]))} is for a "
                        f"method that is not being run (running: {', '.join(sorted(planned))}); "
                        f"add it to --methods or drop the setting")
