"""`python -m precompute prune DIR [--drop train images maps]`: delete bulky arrays an experiment no longer needs.

- `train`: the class-map training split (images, attacks); the shipped demo keeps its class maps without it.
- `images`: the test images and adversarial images (rebuildable with `precompute run`).
- `maps`: the full-size per-image maps (their statistics, correlations and class maps stay).

`--drop train images maps` leaves a results-only copy: every number, per-pair cosine, IdCor null
distribution and the Table IV matrix, in a few hundred kB. The manifest records what was
dropped and stays verifiable.
"""

from __future__ import annotations

import argparse

from experiments.store import CacheError, ExperimentStore, read_manifest

PATTERNS = {
    "train": ["train"],
    "images": ["test/images.npy", "test/attacks/*/adversarial.npy"],
    "maps": ["maps/*/maps.npy", "maps/*/pooled_*.npy"],
}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="delete an experiment's bulky arrays (keeps its results)")
    p.add_argument("dir", help="experiment directory")
    p.add_argument("--drop", nargs="+", default=["train"], choices=sorted(PATTERNS), help="what to delete (default: train)")


def run(args: argparse.Namespace) -> int:
    try:
        read_manifest(args.dir)
    except CacheError as err:
        raise ValueError(str(err)) from None
    store = ExperimentStore(args.dir)
    problems = store.verify(deep=False)  # every entry a safe path inside the experiment, every file there
    if problems:
        raise ValueError(f"{args.dir} is damaged, nothing deleted: {problems[0]}"
                         + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
                         + "; rebuild it with python -m precompute run")
    removed = [path for what in args.drop for pattern in PATTERNS[what] for path in store.drop(pattern)]
    print(f"removed {len(removed)} files ({', '.join(args.drop)}) from {args.dir}")
    return 0
