"""The command line of `make gpu-check`: arguments, the output file, the steps, the verdict."""

from __future__ import annotations

import argparse
import importlib
import os
import time
from pathlib import Path

import torch

from benchmark.common.device import resolve_device
from benchmark.common.errors import UserError
from benchmark.core.datasets.base import default_data_dir
from benchmark.devtools.gpucheck.checks import DEFAULT_BUDGET_SECONDS, FULL, TINY, Budget
from benchmark.devtools.gpucheck.output import build_report, print_table, write_report
from benchmark.devtools.gpucheck.suite import run_checks


def build_parser() -> argparse.ArgumentParser:
    """The arguments of `python -m benchmark.devtools.gpucheck`."""
    description = (importlib.import_module(__package__).__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmark.devtools.gpucheck",
                                     description=description)
    parser.add_argument("--device", default=None, help="cuda, cuda:N, cpu, mps (default: auto)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (CPU, tests)")
    parser.add_argument("--data-dir", default=None,
                        help="where CIFAR-10 is (default: $FAIRBENCH_DATA or data/, optional)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help=f"skip the steps left once this time is spent (reported as skipped, "
                             f"the JSON still written; default {DEFAULT_BUDGET_SECONDS:.0f}, "
                             f"--tiny: none; 0: none)")
    parser.add_argument("--out", default=None, help="default: results/gpucheck.json "
                        "(--tiny: results/gpucheck-tiny.json)")
    return parser


def device_and_output(args: argparse.Namespace, out: Path) -> torch.device:
    """The device asked for, once `out`'s directory exists and is writable (else UserError or
    OSError)."""
    device = resolve_device(args.device)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK):
        raise UserError(f"cannot write {out}; pass --out in a writable directory")
    return device


def main(argv: list[str] | None = None) -> int:
    """Run every step, write the JSON, print the table: 0 if all passed (or were skipped),
    1 if a step failed, 2 (one line) on a bad argument."""
    args = build_parser().parse_args(argv)
    out = Path(args.out or f"results/gpucheck{'-tiny' if args.tiny else ''}.json")
    try:
        device = device_and_output(args, out)
    except (UserError, OSError) as err:
        print(f"error: {err}")
        return 2
    if args.budget is not None and args.budget < 0:
        print(f"error: --budget must be >= 0 seconds (0: no budget), got {args.budget:g}")
        return 2
    if device.type == "cpu" and not args.tiny and args.device is None:
        print('error: no GPU here; the full-size check on a CPU takes hours: add --tiny (make '
              'gpu-check ARGS="--tiny --device cpu"), or --device cpu to insist')
        return 2
    t0 = time.perf_counter()
    seconds = args.budget if args.budget is not None else \
        None if args.tiny else DEFAULT_BUDGET_SECONDS
    checks = run_checks(TINY if args.tiny else FULL, device,
                        Path(args.data_dir or default_data_dir()), args.data_dir is not None,
                        Budget(seconds or None, t0))
    failed = [c.name for c in checks if c.status == "failed"]
    report = build_report(checks, device, args.tiny, t0, seconds or None)
    write_report(report, out)
    print_table(report)
    verdict = "passed" if not failed else f"FAILED ({', '.join(failed)})"
    print(f"gpu-check {verdict} in {report['seconds']:.0f} s on {device}; wrote {out}")
    return 0 if not failed else 1
