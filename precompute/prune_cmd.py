"""`python -m precompute prune DIR [--drop train images maps]`: delete bulky arrays an experiment no longer needs.

- `train`: the class-map training split (images, attacks); the shipped demo keeps its class maps without it.
- `images`: the test images and adversarial images (rebuildable with `precompute run`).
- `maps`: the full-size per-image maps (their statistics, correlations and class maps stay).

`--drop train images maps` leaves a results-only copy: every number, per-pair cosine, IdCor null
distribution and the Table IV matrix, in a few hundred kB. The manifest records what was
dropped and stays verifiable.

`--compact-maps` (with `--drop maps`) first keeps every map set's maps in a compact form, float16 values of
the non-zero entries (experiments/compact_maps.py; 14 times smaller than dense float16 on the demo), so the
app still shows the maps and the statistics stage still runs on them.
"""

from __future__ import annotations

import argparse

from experiments.compact_maps import encode_maps, has_compact_maps
from experiments.format import (
    TEST,
    TRAIN,
    attack_dir,
    images_path,
    keys_of_stages,
    map_dir,
    maps_stage,
    npy_path,
    pooled_name,
)
from experiments.store import CacheError, ExperimentStore, read_manifest

# what each --drop word deletes, as glob patterns of cache paths ("*": any attack key or map set)
PATTERNS = {
    "train": [TRAIN],
    "images": [images_path(TEST), npy_path(attack_dir(TEST, "*"), "adversarial")],
    "maps": [npy_path(map_dir("*"), "maps"), npy_path(map_dir("*"), pooled_name("*"))],
}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="delete an experiment's bulky arrays (keeps its results)")
    p.add_argument("dir", help="experiment directory")
    p.add_argument("--drop", nargs="+", default=["train"], choices=sorted(PATTERNS), help="what to delete (default: train)")
    p.add_argument("--compact-maps", action="store_true",
                   help="with --drop maps: keep the maps as float16 non-zero entries (compact_*.npy per map set)")


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
    if args.compact_maps and "maps" not in args.drop:
        raise ValueError(f"expected --compact-maps together with --drop maps, got --drop {' '.join(args.drop)}")
    if args.compact_maps:
        compacted = write_compact_maps(store)
        print(f"kept {compacted} map sets as compact maps")
    removed = [path for what in args.drop for pattern in PATTERNS[what] for path in store.drop(pattern)]
    print(f"removed {len(removed)} files ({', '.join(args.drop)}) from {args.dir}")
    return 0


def write_compact_maps(store: ExperimentStore) -> int:
    """Write the compact copy of every map set that still has its dense maps; returns how many were written."""
    written = 0
    for map_set in keys_of_stages(store.manifest()["stages"], maps_stage):
        dense = npy_path(map_dir(map_set), "maps")
        if not store.has_array(dense) or has_compact_maps(store, map_set):
            continue
        store.write_arrays(map_dir(map_set), encode_maps(store.load_array(dense)))
        written += 1
    return written
