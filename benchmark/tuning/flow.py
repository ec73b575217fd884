"""`fairbench tune`: the search of every method on the first seed (no test evaluation), the
selection on validation, then the protocol-default and the selected configuration of every
method on every seed, fully evaluated. Methods are searched base first: a warm-started method's
configurations start from its base method's selected configuration (tuned in an earlier round).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from benchmark.catalog import get_protocol, make_method
from benchmark.common.fileio import read_jsonl
from benchmark.planning.plan import plan_jobs, record_plan
from benchmark.runs.job import Job, Run
from benchmark.tuning.search import base_choice, config_job, tried_configs
from benchmark.tuning.selection import score, select
from benchmark.tuning.tune_file import MethodSearch, TuneFile, read_tune, tune_path, write_tune

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


def rounds(request: TuneRequest) -> list[list[str]]:
    """The methods to search (with the bases they warm-start from), base first."""
    protocol = _protocol(request)
    depth: dict[str, int] = {}

    def add(method: str) -> int:
        if method not in depth:
            warm = make_method(method, protocol, _own(request, method)).warm_start(protocol)
            depth[method] = 0 if warm is None else add(warm[0]) + 1
        return depth[method]

    for method in request.methods:
        add(method)
    return [[m for m in depth if depth[m] == level] for level in range(max(depth.values()) + 1)]


def tune(request: TuneRequest, launch: Launch) -> list[tuple[Run, str]]:
    """Search, select, then run the two views; returns the launches' failures."""
    protocol = _protocol(request)
    path = tune_path(request.template.results, protocol.dataset, protocol.preset)
    tune_file = read_tune(path) or TuneFile(request.budget, request.criterion)
    tune_file.budget, tune_file.criterion = request.budget, request.criterion
    failures: list[tuple[Run, str]] = []
    selected: dict[str, Job] = {}
    for methods in rounds(request):
        searches = {m: _search(request, m, selected) for m in methods}
        jobs = [job for _, search_jobs in searches.values() for job in search_jobs]
        waves = plan_jobs(jobs)
        record_plan(waves)  # `status` lists the search runs before they start
        failures += launch(waves)
        for method, (search, search_jobs) in searches.items():
            chosen = _select(search, search_jobs, request.criterion)
            if chosen is not None:
                search.selected = chosen.label
                selected[method] = chosen
            tune_file.methods[method] = search
        write_tune(path, tune_file)
    final = plan_jobs(_final_jobs(request, selected))
    record_plan(final)
    return failures + launch(final)


def _protocol(request: TuneRequest):  # noqa: ANN202 - Protocol
    t = request.template
    return get_protocol(t.dataset, t.preset, t.overrides)


def _own(request: TuneRequest, method: str) -> dict | None:
    return request.template.method_overrides.get(method)


def _search(request: TuneRequest, method: str, selected: dict[str, Job]
            ) -> tuple[MethodSearch, list[Job]]:
    """A method's configurations on the first seed, not evaluated."""
    protocol = _protocol(request)
    template = replace(request.template, method=method, seed=request.seeds[0], evaluate=False)
    warm = make_method(method, protocol, _own(request, method)).warm_start(protocol)
    base = selected.get(warm[0]) if warm is not None else None
    pinned = base_choice(base)
    configs = tried_configs(template, protocol, request.budget, pinned)
    jobs = [config_job(template, protocol, c, pinned) for c in configs]
    return MethodSearch(template.seed, configs, base=base.label if base else None), jobs


def _select(search: MethodSearch, jobs: list[Job], criterion: str) -> Job | None:
    """The configuration whose run scores best on validation (None if none finished)."""
    scores = [score(read_jsonl(job.paths().log), criterion) if job.paths().done.exists()
              else None for job in jobs]
    index = select(scores)
    return replace(jobs[index], evaluate=True) if index is not None else None


def _final_jobs(request: TuneRequest, selected: dict[str, Job]) -> list[Job]:
    """Both views on every seed, evaluated: the protocol-default run and the selected one."""
    jobs = []
    for method in selected:
        plain = replace(request.template, method=method, evaluate=True)
        for seed in request.seeds:
            jobs += [replace(plain, seed=seed), replace(selected[method], seed=seed)]
    return jobs
