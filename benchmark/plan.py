"""Expand a benchmark (dataset x methods x seeds) into jobs ordered in dependency waves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from benchmark.job import Job, base_job


def plan(*, dataset: str, preset: str, methods: Sequence[str], seeds: Sequence[int],
         method_overrides: dict[str, dict[str, Any]] | None = None, **common: Any
         ) -> list[list[Job]]:
    """Jobs in waves: every job's warm-start base is in an earlier wave (added if not asked for).

    A base that several methods start from is trained once and keeps a checkpoint at each of
    their begin epochs.
    """
    method_overrides = method_overrides or {}
    jobs: dict[tuple[str, int], Job] = {}
    depth: dict[tuple[str, int], int] = {}

    def add(job: Job) -> int:
        key = (job.method, job.seed)
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
        jobs[key], depth[key] = job, level
        return level

    for seed in seeds:
        for m in methods:
            add(Job(dataset, preset, m, seed, method_overrides=method_overrides, **common))
    waves: list[list[Job]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for key, job in jobs.items():
        waves[depth[key]].append(job)
    return waves
