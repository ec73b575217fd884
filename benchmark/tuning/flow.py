"""`fairbench tune`: the search of every method on the first seed (no test evaluation), the
selection on validation, then the protocol-default and the selected configuration of every
method on every seed, fully evaluated. Methods are searched base first: a warm-started method's
configurations start from its base method's selected configuration (tuned in an earlier round).

A method is selected only when every configuration of its search finished (a run that failed
with a non-finite loss counts as finished, and is never selected): a search cut short is resumed
by the next `fairbench tune`, never decided on part of its budget. A method without a selection
runs no final run, and neither do the methods that warm-start from it. A decided search stands
(tune.json keeps the decision and the validation lines it read): a later `fairbench tune` with
the same search launches none of its runs again and never re-scores them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from benchmark.catalog import get_protocol, make_method
from benchmark.common.fileio import read_json, read_jsonl
from benchmark.core.protocol import Protocol
from benchmark.planning.plan import plan_jobs, record_plan
from benchmark.runs.job import Job, Run
from benchmark.tuning.search import base_choice, config_job, tried_configs
from benchmark.tuning.selection import evidence as line_evidence
from benchmark.tuning.selection import line_score, select, selected_line
from benchmark.tuning.tune_file import (
    MethodSearch,
    TuneFile,
    merged_configs,
    read_tune,
    tune_path,
    write_tune,
)

Launch = Callable[[list[list[Run]]], list[tuple[Run, str]]]


@dataclass(frozen=True)
class TuneRequest:
    """What to tune: `template` holds the shared job settings (dataset, preset, results,
    overrides, device, ...); its method and seed are replaced per job."""

    template: Job
    methods: Sequence[str]
    seeds: Sequence[int]
    budget: int
    criterion: str

    def protocol(self) -> Protocol:
        t = self.template
        return get_protocol(t.dataset, t.preset, t.overrides)

    def warm_start(self, method: str) -> tuple[str, int] | None:
        """(base, begin epoch) of `method` under the user's settings, or None."""
        own = self.template.method_overrides.get(method)
        return make_method(method, self.protocol(), own).warm_start(self.protocol())


@dataclass
class TuneOutcome:
    """What a tuning did: the launches' failures, and the methods left without a selection."""

    failures: list[tuple[Run, str]] = field(default_factory=list)
    unselected: dict[str, str] = field(default_factory=dict)  # method -> why


def rounds(request: TuneRequest) -> list[list[str]]:
    """The methods to search (with the bases they warm-start from), base first."""
    depth: dict[str, int] = {}

    def add(method: str) -> int:
        if method not in depth:
            warm = request.warm_start(method)
            depth[method] = 0 if warm is None else add(warm[0]) + 1
        return depth[method]

    for method in request.methods:
        add(method)
    return [[m for m in depth if depth[m] == level] for level in range(max(depth.values()) + 1)]


def tune(request: TuneRequest, launch: Launch) -> TuneOutcome:
    """Search, select, then run the two views."""
    protocol = request.protocol()
    path = tune_path(request.template.results, protocol.dataset, protocol.preset)
    tune_file = read_tune(path) or TuneFile(request.budget, request.criterion)
    tune_file.budget, tune_file.criterion = request.budget, request.criterion
    outcome, selected = TuneOutcome(), {}
    for methods in rounds(request):
        searches = {m: s for m in methods if (s := _search(request, m, selected, outcome))}
        for method, (search, jobs) in list(searches.items()):
            decided = tune_file.methods.get(method)
            if decided is not None and decided.decides_like(search):
                selected[method] = _final(jobs, decided.selected)  # never re-scored
                del searches[method]
        for method, (search, _) in searches.items():  # known before any run starts
            search.configs = merged_configs(tune_file.methods.get(method), search.configs)
            tune_file.methods[method] = search
        write_tune(path, tune_file)
        waves = plan_jobs([job for _, jobs in searches.values() for job in jobs])
        record_plan(waves)  # `status` lists the search runs before they start
        outcome.failures += launch(waves)
        for method, (search, jobs) in searches.items():
            chosen, why, evidence = _select(jobs, request.criterion)
            search.selected = chosen.label if chosen is not None else None
            if chosen is not None:
                selected[method] = chosen
                for config in search.configs:
                    config.evidence = evidence.get(config.label)
            else:
                outcome.unselected[method] = why
        write_tune(path, tune_file)
    final = plan_jobs(_final_jobs(request, selected))
    record_plan(final)
    outcome.failures += launch(final)
    return outcome


def _begin_epochs_of_dependents(request: TuneRequest, method: str) -> tuple[int, ...]:
    """Begin epochs at which requested methods start from `method` (the user's settings)."""
    warm = [request.warm_start(m) for m in request.methods]
    return tuple(sorted({w[1] for w in warm if w is not None and w[0] == method}))


def _search(request: TuneRequest, method: str, selected: dict[str, Job],
            outcome: TuneOutcome) -> tuple[MethodSearch, list[Job]] | None:
    """A method's configurations on the first seed, not evaluated (None: its base has no
    selection, so it is not searched)."""
    protocol = request.protocol()
    warm = request.warm_start(method)
    if warm is not None and warm[0] not in selected:
        outcome.unselected[method] = f"its base {warm[0]} has no selection"
        return None
    base = selected.get(warm[0]) if warm is not None else None
    template = replace(request.template, method=method, seed=request.seeds[0], evaluate=False,
                       keep_epochs=_begin_epochs_of_dependents(request, method))
    pinned = base_choice(base)
    configs = tried_configs(template, protocol, request.budget, pinned)
    jobs = [config_job(template, protocol, c, pinned) for c in configs]
    search = MethodSearch(template.seed, configs, base=base.label if base else None,
                          budget=request.budget, criterion=request.criterion)
    return search, jobs


def _select(jobs: list[Job], criterion: str
            ) -> tuple[Job | None, str, dict[str, dict[str, Any]]]:
    """The configuration whose run scores best on validation, once every run has finished
    (runs of other settings under the same name, e.g. from another base, do not count), why
    there is none, and the evidence: each finished run's validation line at its best checkpoint."""
    scores: list[float | None] = []
    evidence: dict[str, dict[str, Any]] = {}
    for job in jobs:
        paths, key = job.paths(), job.resolve().spec.key
        ours = paths.spec.exists() and read_json(paths.spec).get("run_key") == key
        if ours and paths.done.exists():
            line = selected_line(read_jsonl(paths.log))
            scores.append(line_score(line, criterion))
            if line is not None:
                evidence[job.label] = line_evidence(line)
        elif ours and paths.failed.exists() and read_json(paths.failed).get("kind") == \
                "non-finite":
            scores.append(None)  # diverged: finished, never selected
        else:
            return None, f"{job.name} did not finish; rerun `fairbench tune` to resume", {}
    index = select(scores)
    if index is None:
        return None, "no configuration trained without diverging", {}
    return _final(jobs, jobs[index].label), "", evidence


def _final(jobs: list[Job], label: str) -> Job:
    """The selected configuration's job, as its final runs: evaluated, keeping no epoch."""
    job = next(j for j in jobs if j.label == label)
    return replace(job, evaluate=True, keep_epochs=())


def _final_jobs(request: TuneRequest, selected: dict[str, Job]) -> list[Job]:
    """Both views on every seed, evaluated: the protocol-default run and the selected one."""
    jobs = []
    for method in selected:
        plain = replace(request.template, method=method, evaluate=True)
        for seed in request.seeds:
            jobs += [replace(plain, seed=seed), replace(selected[method], seed=seed)]
    return jobs
