"""`fairbench run`: plan, check every input, then train, evaluate and report."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.cli.args import (
    add_run_arguments,
    check_label,
    check_submitit,
    check_writable_dir,
    parse_seeds,
    parse_sets,
    parse_sweep,
    parse_workers,
    resolve_methods,
    slurm_parameters,
)
from benchmark.common.errors import UserError
from benchmark.core.recipe import RECIPE_NAME

if TYPE_CHECKING:  # the command loads torch when it runs, not when the CLI starts
    from benchmark.runs.job import Run


def preflight(waves: Sequence[Sequence[Run]], results: str) -> None:
    """Before any work: refuse conflicting run directories; say what is reused and what is new
    because its code changed."""
    from benchmark.runs.claim import compare_spec

    runs = [run for wave in waves for run in wave]
    reused, changed = 0, []
    for run in runs:
        verdict = compare_spec(run.paths, run.spec)
        if verdict.action == "conflict":
            raise UserError(f"{run.name}: {verdict.note}")
        if verdict.action == "same" and run.paths.record.exists():
            reused += 1
        elif verdict.action == "set_aside":
            changed.append(f"{run.name} ({verdict.note})")
    print(f"fairbench: {len(runs)} run(s) in {len(waves)} wave(s) -> {results}"
          + (f"; {reused} already finished there: reused, not retrained (--results DIR starts "
             f"afresh)" if reused else ""), file=sys.stderr)
    if changed:
        print(f"fairbench: {len(changed)} run(s) retrained because they ran with other code or "
              f"had failed; their old files move to <method>/.superseded/ (use --results DIR to "
              f"keep runs of different code apart): {'; '.join(changed)}", file=sys.stderr)


@dataclass(frozen=True)
class RunInputs:
    """The parsed and checked inputs `run` and `tune` share."""

    protocol_overrides: dict[str, Any]
    method_overrides: dict[str, dict[str, Any]]
    seeds: list[int]
    methods: list[str]
    slurm: dict[str, Any]
    workers: int = 1
    devices: tuple[str, ...] = ()  # the devices local workers use in turn (none: the default)


def checked_inputs(args: argparse.Namespace) -> RunInputs:
    """Every shared input parsed and checked (one line for the first bad one); writes nothing."""
    from benchmark.catalog import method_registry
    from benchmark.common.device import resolve_device
    from benchmark.core.datasets import DATASETS, default_data_dir
    from benchmark.runs.lock import RunLock

    protocol_overrides, method_overrides = parse_sets(args.set, args.config)
    workers, devices = parse_workers(args.workers, args.devices, args.device, args.launcher)
    inputs = RunInputs(protocol_overrides, method_overrides, parse_seeds(args.seeds),
                       resolve_methods(args.methods), slurm_parameters(args.slurm), workers,
                       tuple(devices))
    if args.launcher != "local":
        check_submitit(inputs.slurm, _cluster(args))
    RunLock(Path(args.results))  # FAIRBENCH_LOCK_* settings, checked (nothing is created)
    info = DATASETS.get(args.dataset)
    if args.launcher == "local":  # cluster jobs check the device on their own node
        resolve_device(args.device)
    for m in method_overrides:
        method_registry().get(m)
    if info.check is not None and not args.download:  # missing data: stop before any work
        info.check(Path(args.data_dir) if args.data_dir else default_data_dir())
    return inputs


def job_settings(args: argparse.Namespace, inputs: RunInputs) -> dict[str, Any]:
    """The settings every job of the command shares (Job fields)."""
    terminal = sys.stderr.isatty()  # progress bars on a terminal, plain lines in a log file
    return {"results": args.results, "overrides": inputs.protocol_overrides,
            "data_dir": args.data_dir, "download": args.download, "device": args.device,
            "show_progress": not args.quiet and terminal,
            "epoch_lines": not args.quiet and not terminal}


def checked_plan(args: argparse.Namespace) -> tuple[list[list[Run]], RunInputs]:
    """Every input parsed and validated, the runs planned and resolved, the directories checked,
    before any file or directory is written; returns the waves and the checked inputs."""
    from benchmark.planning.plan import check_overrides_used, plan

    inputs = checked_inputs(args)
    sweep = parse_sweep(args.sweep, inputs.methods)
    tag = check_label(args.tag, "--tag")
    waves = plan(dataset=args.dataset, preset=args.preset, methods=inputs.methods,
                 seeds=inputs.seeds, method_overrides=inputs.method_overrides, sweep=sweep,
                 tag=tag, recipe=args.recipe is not None, **job_settings(args, inputs))
    check_overrides_used(waves, inputs.method_overrides)
    if args.recipe is not None:
        print(f"fairbench: --recipe {args.recipe} sets each method's training; data sizes, "
              f"validation and evaluation are preset {args.preset}'s"
              + ("" if args.preset == "full" else " (--preset full for the papers' data)"),
              file=sys.stderr)
    check_writable_dir(Path(args.results), "--results")
    preflight(waves, args.results)
    return waves, inputs


def _cluster(args: argparse.Namespace) -> str | None:
    return "local" if args.launcher == "submitit-local" else None


def launch(waves: list[list[Run]], args: argparse.Namespace, inputs: RunInputs
           ) -> list[tuple[Run, str]]:
    """Run the waves with the chosen launcher (local: in this process, or on parallel workers),
    one line per failure (and progress lines)."""
    from benchmark.planning.local import run_local
    from benchmark.planning.slurm import run_submitit
    from benchmark.planning.workers import run_parallel, worker_devices

    def error(run: Run, message: str) -> None:
        print(f"error: {run.name}: {message}", file=sys.stderr)

    def note(run: Run, message: str) -> None:
        print(f"fairbench: {run.name}: {message}", file=sys.stderr)

    def progress(text: str) -> None:
        print(f"fairbench: {text}", file=sys.stderr, flush=True)

    on_progress = None if args.quiet else progress
    if args.launcher == "local" and (inputs.workers > 1 or inputs.devices):
        import torch

        threads = max(1, torch.get_num_threads() // inputs.workers)  # CPU threads per worker
        return run_parallel(waves, worker_devices(inputs.devices, inputs.workers), threads,
                            on_error=error, on_note=note, on_progress=on_progress)
    if args.launcher == "local":
        return run_local(waves, on_error=error, on_note=note, on_progress=on_progress)
    return run_submitit(waves, Path(args.results) / ".submitit", cluster=_cluster(args),
                        parameters=inputs.slurm, on_error=error)


def report_after_run(args: argparse.Namespace) -> None:
    """The report of the dataset/preset just run; a report that cannot be made (every run
    failed) is one line, and an old report showing runs since set aside is removed."""
    from benchmark.cli.report import write_report
    from benchmark.report.build import FORMATS

    try:
        write_report(args.results, args.dataset, args.preset, None, FORMATS, echo=True)
    except UserError as err:  # e.g. every run failed: the failures say why
        stale = Path(args.results) / args.dataset / args.preset / "report"
        if stale.is_dir():  # it showed runs that have since failed or been set aside
            shutil.rmtree(stale)
            err = UserError(f"{err}; removed the old report in {stale}")
        print(f"error: report: {err}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.planning.plan import record_plan

    waves, inputs = checked_plan(args)
    record_plan(waves)
    t0 = time.perf_counter()
    failures = launch(waves, args, inputs)
    print(f"fairbench: finished in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not args.no_report:
        report_after_run(args)
    if failures:
        print(f"error: {len(failures)} run(s) failed: {', '.join(r.name for r, _ in failures)}"
              f" (the others' records are kept; `fairbench status` shows why)", file=sys.stderr)
    return 1 if failures else 0


def add_parser(sub: Any) -> None:
    """The `run` command's arguments."""
    run = sub.add_parser("run", help="train and evaluate methods, then write the report")
    add_run_arguments(run)
    run.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                     help="run every value as its own variant (trades.beta=1,3,6 or "
                          "epochs=5,10); several --sweep make a grid")
    run.add_argument("--recipe", choices=(RECIPE_NAME,), default=None,
                     help="train each method under its paper's own recipe (model, epochs, "
                          "schedule, attack, hyperparameters) for this dataset, as "
                          "METHOD[official]; data and evaluation stay the preset's (--preset "
                          "full for the paper's data); docs/recipes.md")
    run.add_argument("--tag", default="", help="name this command's settings: runs go to "
                                               "METHOD[TAG] beside the untagged ones")
    run.set_defaults(func=cmd_run)
