"""`fairbench report`: tables, plots and the page from run records."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.cli.args import (
    DEFAULT_RESULTS,
    check_writable_dir,
)
from benchmark.common.errors import UserError


def write_report(results: str, dataset: str, preset: str, out: str | None,
            formats: Sequence[str], echo: bool) -> None:
    from benchmark.report import build_report

    written = build_report(Path(results), dataset, preset,
                           out=Path(out) if out else None, formats=formats)
    if echo and "table_md" in written:
        print(Path(written["table_md"]).read_text())
    for path in written.values():
        print(f"wrote {path}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    check_names(args.dataset, args.preset)
    formats = tuple(f for f in args.format.replace(",", " ").split())
    from benchmark.report.build import FORMATS

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UserError(f"unknown report format(s) {bad}; use {', '.join(FORMATS)}")
    if args.out:
        check_writable_dir(Path(args.out), "--out")
    write_report(args.results, args.dataset, args.preset, args.out, formats, echo=True)
    return 0


def check_names(dataset: str | None, preset: str | None) -> None:
    """Unknown dataset or preset names: one line with the closest name, before reading files."""
    from benchmark.catalog import get_protocol
    from benchmark.core.datasets import DATASETS

    if dataset:
        DATASETS.get(dataset)
        if preset:
            get_protocol(dataset, preset)


def add_parser(sub: Any) -> None:
    """The `report` command's arguments."""
    rep = sub.add_parser("report", help="tables and plots from run records")
    rep.add_argument("--dataset", default="fmnist")
    rep.add_argument("--preset", default="quick")
    rep.add_argument("--results", default=DEFAULT_RESULTS)
    rep.add_argument("--format", default="latex,md,csv,html",
                     help="latex, md, csv, html (comma list)")
    rep.add_argument("--out", help="output directory (default results/D/P/report)")
    rep.set_defaults(func=cmd_report)
