"""`python -m precompute list [--out ROOT]`: experiments in the cache, their configuration and status."""

from __future__ import annotations

import argparse

from experiments.reader import find_experiments


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="list the experiments in a cache root")
    p.add_argument("--out", default="cache", help="cache root (default: ./cache)")
    p.add_argument("--quick", action="store_true", help="check sizes only, not checksums")


def run(args: argparse.Namespace) -> int:
    listings = find_experiments([args.out], deep=not args.quick)
    if not listings:
        print(f"no experiments under {args.out!r}; build one with: python -m precompute run --preset demo")
        return 0
    for item in listings:
        stages = item.stages
        done = sum(1 for s in stages.values() if s.get("status") == "complete")
        state = "ok" if item.ok else "DAMAGED: " + "; ".join(item.problems[:2])
        print(f"{item.id}\n  {item.describe()}\n  {done} stages complete; {state}\n  {item.path}")
    return 0
