"""`fairbench compare`: the same runs in two results trees, run by run (reproducibility)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmark.cli.report import check_names
from benchmark.common.errors import UserError


def cmd_compare(args: argparse.Namespace) -> int:
    from benchmark.common.fileio import atomic_write_text
    from benchmark.core.evaluation.suite import ATTACKS
    from benchmark.report.compare import compare, markdown
    from benchmark.runs.schema import CHECKPOINTS

    check_names(args.dataset, args.preset)
    if args.attack not in ATTACKS:
        raise UserError(f"unknown --attack {args.attack!r}; use one of {', '.join(ATTACKS)}")
    if args.checkpoint not in CHECKPOINTS:
        raise UserError(f"unknown --checkpoint {args.checkpoint!r}; use "
                        f"{' or '.join(CHECKPOINTS)}")
    if args.out and Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a directory; pass a file name such as "
                        f"compare.md")
    comp = compare(Path(args.a), Path(args.b), args.dataset, args.preset)
    text = markdown(comp, args.attack, args.checkpoint)
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.out), text)
    return 0


def add_parser(sub: Any) -> None:
    """The `compare` command's arguments."""
    cmp = sub.add_parser("compare", help="the same runs in two results directories, run by "
                         "run: how far another machine or thread count moved them")
    cmp.add_argument("a", help="results directory A (e.g. results/reference)")
    cmp.add_argument("b", help="results directory B (e.g. your rerun)")
    cmp.add_argument("--dataset", default="fmnist")
    cmp.add_argument("--preset", default="quick")
    cmp.add_argument("--attack", default="autoattack", help="the attack of the per-run rows")
    cmp.add_argument("--checkpoint", default="best", help="best or last (per-run rows)")
    cmp.add_argument("--out", help="also write the Markdown to this file")
    cmp.set_defaults(func=cmd_compare)
