"""Command line: fairbench run | tune | status | report | compare | list | eval | new-method."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from benchmark.cli import compare, eval, listing, new_method, report, run, status, tune
from benchmark.common.errors import UserError

# each adds its own subcommand
COMMANDS = (run, tune, report, compare, status, listing, eval, new_method)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2), like every other error of the CLI."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self.prog} -h`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fairbench", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    for command in sub.choices.values():  # `fairbench run ... --debug` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks of errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Errors are one line (exit 2 for bad input, 1 for anything else);
    `--debug` shows the traceback."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # -h, or a one-line usage error already printed
        return int(done.code or 0)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        _debug(args)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `fairbench list presets | head`
        sys.stderr.close()
        return 0
    except OSError as err:
        _debug(args)
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or err}{where} (check the path, free space and permissions; "
              f"rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - a bug: one line, the traceback on request
        _debug(args)
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"error: internal error {type(err).__name__}: {first} (rerun with --debug for the "
              f"traceback, and please report it)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the last checkpoint",
              file=sys.stderr)
        return 130


def _debug(args: argparse.Namespace) -> None:
    if getattr(args, "debug", False):
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
