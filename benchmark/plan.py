"""Expand a benchmark (dataset x methods x seeds) into jobs ordered in dependency waves."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.job import Job, base_job
from benchmark.records import atomic_write_json

PLAN_FILE = "plan.json"


def plan(*, dataset: str, preset: str, methods: Sequence[str], seeds: Sequence[int],
         method_overrides: dict[str, dict[str, Any]] | None = None,
         sweep: dict[str, Sequence[Any]] | None = None, tag: str = "", **common: Any
         ) -> list[list[Job]]:
    """Jobs in waves: every job's warm-start base is in an earlier wave (added if not asked for).

    A base that several methods start from is trained once and keeps a checkpoint at each of
    their begin epochs. `sweep` ({"trades.beta": [1, 3], "epochs": [5, 10]}) plans the grid:
    each job runs every combination of the keys that concern it (its own hyperparameters and
    protocol fields) as a variant named by what differs (`trades[beta=3]`); `tag` names the
    variant of this command's settings. A variant that changes protocol fields gets bases of
    the same variant; one that changes only the method's own settings starts from the plain
    base.
    """
    method_overrides = method_overrides or {}
    jobs: dict[tuple[str, int], Job] = {}
    depth: dict[tuple[str, int], int] = {}

    def add(job: Job) -> int:
        key = (job.label, job.seed)
        if key in jobs:
            if job.keep_epochs:  # merge epochs a dependent needs
                old = jobs[key]
                jobs[key] = replace(old, keep_epochs=tuple(sorted(set(old.keep_epochs)
                                                                  | set(job.keep_epochs))))
            return depth[key]
        method = job.make_method()
        base = base_job(job, method, job.protocol())
        level = 0
        if base is not None:
            level = add(base[0]) + 1
            job = replace(job, base=base[0].name)  # resolved once: launchers read job.base
        jobs[key], depth[key] = job, level
        return level

    for seed in seeds:
        for m in methods:
            for variant in variants(m, sweep or {}, tag, bool(common.get("overrides"))):
                add(variant_job(Job(dataset, preset, m, seed, method_overrides=method_overrides,
                                    **common), variant))
    waves: list[list[Job]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for key, job in jobs.items():
        waves[depth[key]].append(job)
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


def plan_path(results: Path, dataset: str, preset: str) -> Path:
    return Path(results) / dataset / preset / PLAN_FILE


def record_plan(waves: Sequence[Sequence[Job]]) -> None:
    """Add the planned runs to <results>/<dataset>/<preset>/plan.json (merged with earlier
    launches), so `status` and the report list runs that have not started yet."""
    by_file: dict[Path, list[Job]] = {}
    for job in (j for wave in waves for j in wave):
        by_file.setdefault(plan_path(Path(job.results), job.dataset, job.preset), []).append(job)
    for path, jobs in by_file.items():
        runs = read_plan(path)
        runs.update({f"{j.label}/seed{j.seed}": {"method": j.label, "seed": j.seed}
                     for j in jobs})
        atomic_write_json(path, {"runs": dict(sorted(runs.items()))})


def read_plan(path: Path) -> dict[str, dict[str, Any]]:
    """{"method/seed<k>": {"method", "seed"}} planned in `path` (empty if none or damaged)."""
    import json

    try:
        runs = json.loads(Path(path).read_text())["runs"]
        return {k: {"method": str(v["method"]), "seed": int(v["seed"])} for k, v in runs.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def planned_runs(results: Path, dataset: str, preset: str) -> dict[str, set[int]]:
    """method -> planned seeds of one dataset/preset."""
    out: dict[str, set[int]] = {}
    for run in read_plan(plan_path(results, dataset, preset)).values():
        out.setdefault(run["method"], set()).add(run["seed"])
    return out


def check_overrides_used(waves: Sequence[Sequence[Job]],
                         method_overrides: dict[str, dict[str, Any]]) -> None:
    """A --set METHOD.FIELD for a method that is not planned is an error (likely a typo)."""
    planned = {job.method for wave in waves for job in wave}
    unused = sorted(set(method_overrides) - planned)
    if unused:
        raise UserError(f"--set {unused[0]}.{next(iter(method_overrides[unused[0]]))} is for a "
                        f"method that is not being run (running: {', '.join(sorted(planned))}); "
                        f"add it to --methods or drop the setting")
