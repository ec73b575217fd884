"""`fairbench tune`: every method gets the same tuning budget, selected on validation only.

    fairbench tune --dataset fmnist --preset quick --methods pgd_at,trades --seeds 0,1,2
                   [--budget 8] [--criterion robust_avg_worst]

Searches each method's declared space (its learning-rate factor and main knobs) with the
preset's budget on the first seed, without any test evaluation; selects each method's
configuration on validation; then runs the protocol-default and the selected configuration of
every method on every seed, fully evaluated, and writes the report (both views, the search
appendix). Idempotent and resumable like `fairbench run`; a changed criterion or a larger budget
reuses every search run already made.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from benchmark.cli.args import add_run_arguments, check_writable_dir
from benchmark.cli.run import RunInputs, checked_inputs, job_settings, launch, report_after_run
from benchmark.common.errors import UserError


def tune_request(args: argparse.Namespace) -> tuple[Any, RunInputs]:
    """The tuning request, every input checked before any file is written."""
    from benchmark.catalog import get_protocol, method_registry
    from benchmark.core.search_space import space_problems
    from benchmark.runs.job import Job
    from benchmark.tuning.flow import TuneRequest, rounds
    from benchmark.tuning.search import check_user_settings

    inputs = checked_inputs(args)
    overrides = dict(inputs.protocol_overrides)
    for key, value in (("tune_budget", args.budget), ("tune_criterion", args.criterion)):
        if value is not None:
            overrides[key] = value
    protocol = get_protocol(args.dataset, args.preset, overrides)  # budget/criterion checked
    template = Job(args.dataset, args.preset, "", inputs.seeds[0],
                   method_overrides=inputs.method_overrides,
                   **{**job_settings(args, inputs), "overrides": overrides})
    request = TuneRequest(template, inputs.methods, inputs.seeds, protocol.tune_budget,
                          protocol.tune_criterion)
    for method in [m for level in rounds(request) for m in level]:
        problems = space_problems(method_registry().get(method))
        if problems:
            raise UserError(f"{problems[0]}; fix the method's search_space")
        check_user_settings(method, inputs.method_overrides)
    check_writable_dir(Path(args.results), "--results")
    return request, inputs


def cmd_tune(args: argparse.Namespace) -> int:
    from benchmark.tuning.flow import tune

    request, inputs = tune_request(args)
    t0 = time.perf_counter()
    outcome = tune(request, lambda waves: launch(waves, args, inputs))
    failures = outcome.failures
    print(f"fairbench: tuned in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    for method, why in outcome.unselected.items():
        print(f"error: {method}: no configuration selected ({why})", file=sys.stderr)
    if not args.no_report:
        report_after_run(args)
    if failures:
        print(f"error: {len(failures)} run(s) failed: {', '.join(r.name for r, _ in failures)}"
              f" (a failed configuration is never selected; `fairbench status` shows why)",
              file=sys.stderr)
    return 1 if failures or outcome.unselected else 0


def add_parser(sub: Any) -> None:
    """The `tune` command's arguments."""
    tune = sub.add_parser("tune", help="equal-budget tuning on validation, then both views on "
                                       "every seed")
    add_run_arguments(tune)
    tune.add_argument("--budget", type=int, default=None,
                      help="configurations per method (default: the preset's tune_budget)")
    tune.add_argument("--criterion", default=None,
                      help="robust_avg, robust_worst or robust_avg_worst (default: the "
                           "preset's tune_criterion)")
    tune.set_defaults(func=cmd_tune)
