"""Command-line entry: one sub-command per module, bad input -> one line on stderr, exit 2.

Bad input is any ValueError (options, arrays, images, checkpoints: their messages say what was
expected), a missing, unreadable or wrong-kind path (a directory for a file...), or a `CacheError` (a cache directory that is damaged,
not ours, or locked by another writer). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython; no git binary needed

# sub-command -> module with add_parser(sub, name) and run(args) -> int. Only the chosen
# command's module is imported, so `train-model` starts without loading Foolbox and friends.
COMMANDS = {
    "run": "precompute.run_cmd",
    "export": "precompute.export_cmd",
    "report": "precompute.report_cmd",
    "list": "precompute.list_cmd",
    "prune": "precompute.prune_cmd",
    "correlate": "precompute.correlate_cmd",
    "train-model": "precompute.train_model_cmd",
    "fetch-data": "precompute.fetch_data_cmd",
}


class UsageError(Exception):
    """Bad input found before any work: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage; we keep one line
        raise UsageError(message)


def _module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every sub-command, or just `only` (faster start, fewer imports)."""
    parser = _Parser(prog="python -m precompute", description="Fill and inspect the frequency-map cache.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in [only] if only in COMMANDS else COMMANDS:
        _module(name).add_parser(sub, name)
    return parser


def one_line(err: BaseException) -> str:
    """The first non-empty line of an error's message (its type name when it has none)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; returns the process exit code."""
    from experiments.store import CacheError  # light: numpy and the standard library

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv[0] if argv else None).parse_args(argv)
        return int(_module(args.command).run(args) or 0)
    except (
        UsageError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, CacheError
    ) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
