"""`python -m precompute run`: compute an experiment (a preset, options, or both) into the cache.

Examples:
    python -m precompute run --preset demo
    python -m precompute run --preset cifar10-paper --limit 64 --device cuda
    torchrun --nproc-per-node 4 -m precompute run --preset cifar10-paper

Every experiment option is an ExperimentConfig field (experiments/config.py); its flag comes from there.
"""

from __future__ import annotations

import argparse

from experiments.config import ExperimentConfig
from experiments.options import add_options, config_from_options, given_options
from experiments.presets import PRESETS
from precompute.runner import run_experiment
from precompute.validate import validate_config, validate_data

DEFAULT_OUT = "cache"


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="compute an experiment into the cache (resumable)")
    p.add_argument("--preset", help=f"one of {', '.join(PRESETS)}")
    add_options(p)
    p.add_argument("--out", default=DEFAULT_OUT, help="cache root directory (default: ./cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summaries")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Preset values, then the options given on the command line."""
    return config_from_options(args.preset, given_options(args))


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    validate_config(config, args.out)
    validate_data(config)  # decodes the data folders once: a bad image stops the run before the cache is touched
    store = run_experiment(config, args.out, quiet=args.quiet)
    print(store.path)
    return 0
