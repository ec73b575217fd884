"""`fairbench status`: every run of a results directory and its state."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmark.cli.args import DEFAULT_RESULTS
from benchmark.cli.report import check_names
from benchmark.common.errors import UserError


def cmd_status(args: argparse.Namespace) -> int:
    from benchmark.runs.state import walk_results

    check_names(args.dataset, args.preset)
    results = Path(args.results)
    if not results.exists():
        raise UserError(f"--results {results} does not exist; pass the directory `fairbench run "
                        f"--results` wrote to (default: {DEFAULT_RESULTS})")
    if not results.is_dir():
        raise UserError(f"--results {results} is a file, not a results directory")
    entries = walk_results(results, args.dataset, args.preset)
    if not entries:
        print(f"no runs under {args.results}")
        return 0
    width = max(len(e.name) for e in entries)
    print(f"{'run':<{width}}  {'status':<12} detail")
    for entry in entries:
        state, detail = entry.state()
        detail += "; rerun the command to resume" if state == "interrupted" else ""
        print(f"{entry.name:<{width}}  {state:<12} {detail}".rstrip())
    return 0

def add_parser(sub: Any) -> None:
    """The `status` command's arguments."""
    st = sub.add_parser("status", help="list runs and their state")
    st.add_argument("--results", default=DEFAULT_RESULTS)
    st.add_argument("--dataset")
    st.add_argument("--preset")
    st.set_defaults(func=cmd_status)
