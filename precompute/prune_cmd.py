"""`python -m precompute prune DIR [--drop train]`: delete bulky inputs an experiment no longer needs.

The shipped demo keeps its class-level maps but not the training images and their attacks
(`--drop train`); the manifest records what was dropped and stays verifiable.
"""

from __future__ import annotations

import argparse

from experiments.store import CacheError, ExperimentStore, read_manifest


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="delete an experiment's training-split arrays (keeps maps and results)")
    p.add_argument("dir", help="experiment directory")
    p.add_argument("--drop", default="train", choices=["train"], help="what to delete (default: train)")


def run(args: argparse.Namespace) -> int:
    try:
        read_manifest(args.dir)
    except CacheError as err:
        raise ValueError(str(err)) from None
    removed = ExperimentStore(args.dir).drop(args.drop)
    print(f"removed {len(removed)} files under {args.drop}/ from {args.dir}")
    return 0
