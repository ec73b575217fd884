"""`fairbench eval`: per-class scoring of any checkpoint or RobustBench model (issue 4: WIP)."""

from __future__ import annotations

import argparse

from benchmark.errors import UserError


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="a state dict saved with torch.save")
    parser.add_argument("--robustbench", metavar="MODEL_NAME", help="a RobustBench zoo model")
    parser.add_argument("--threat-model", default="Linf")
    parser.add_argument("--model", help="architecture of --checkpoint (see `fairbench list models`)")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--results", default="results")
    parser.add_argument("--data-dir")
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--device")


def cmd_eval(args: argparse.Namespace) -> int:
    raise UserError("fairbench eval is not implemented yet")
