"""Command-line entry: one sub-command per module, bad input -> one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython; no git binary needed

from precompute import train_model_cmd  # noqa: E402

COMMANDS = {
    "train-model": train_model_cmd,
}


class UsageError(Exception):
    """Bad input found before any work: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage; we keep one line
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m precompute", description="Fill and inspect the frequency-map cache.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module in COMMANDS.items():
        module.add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
        return int(COMMANDS[args.command].run(args) or 0)
    except (UsageError, ValueError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
