"""The command line of `make perf`: arguments, their checks, the JSON file and the summary."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from benchmark.common.device import resolve_device
from benchmark.common.errors import UserError
from benchmark.devtools.perf.data import workload
from benchmark.devtools.perf.measure import measure
from benchmark.devtools.perf.report import print_report


def build_parser() -> argparse.ArgumentParser:
    """The arguments of `python -m benchmark.devtools.perf`."""
    description = (importlib.import_module(__package__).__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m benchmark.devtools.perf",
                                     description=description)
    parser.add_argument("--dataset", default="fmnist")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random images of CIFAR-10 shape and the cifar10 quick preset "
                             "(default on a GPU)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=8, help="batches per timed epoch")
    parser.add_argument("--eval-per-class", type=int, default=5,
                        help="test points per class for the evaluation timings")
    parser.add_argument("--warmup-epochs", type=int, default=6)
    parser.add_argument("--accuracy-epochs", type=int, default=2,
                        help="full PGD-AT epochs per speed path for the accuracy comparison "
                             "(0: skip)")
    parser.add_argument("--init", type=Path,
                        help="start weights (a model_*.pt); default: results/<dataset>/"
                             "<preset>/pgd_at/seed0/model_last.pt if present, else a warm-up")
    parser.add_argument("--out", type=Path, default=Path("results/perf.json"))
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Raise UserError on a bad argument; default --init to the preset's PGD-AT checkpoint in
    results/ when it exists (real data only)."""
    if args.rounds < 1 or args.batches < 1 or args.eval_per_class < 1 \
            or args.accuracy_epochs < 0:
        raise UserError("--rounds, --batches and --eval-per-class must be >= 1, "
                        "--accuracy-epochs >= 0")
    dataset, preset, synthetic = workload(args, resolve_device(args.device))
    if args.init is None and not synthetic:
        guess = Path(f"results/{dataset}/{preset}/pgd_at/seed0/model_last.pt")
        args.init = guess if guess.exists() else None
    elif args.init is not None and not args.init.is_file():
        raise UserError(f"--init {args.init} not found")


def main(argv: list[str] | None = None) -> int:
    """Measure, write the JSON, print the summary: 0, or 2 (one line) on a user error."""
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        report = measure(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    except UserError as err:
        print(f"error: {err}")
        return 2
    print_report(report)
    print(f"wrote {args.out}")
    return 0
