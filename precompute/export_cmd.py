"""`python -m precompute export DIR --out FILE.npz [--attack A] [--eps E]`.

One npz with `essential`, `adversarial` (centred maps, float32), `index` (canonical image id),
`position` (row in the experiment), `label`, `adv_label`, for the images that have both maps.
"""

from __future__ import annotations

import argparse
import io
import math
import os

import numpy as np

from core.attack_keys import attack_key, keys_of_attack
from experiments.format import ESSENTIAL, adversarial_set
from experiments.reader import Experiment, canonical_index
from experiments.store import CacheError, atomic_write_bytes
from precompute.stages.correlations import paired_maps
from precompute.writable import check_writable_dir


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="export paired essential/adversarial maps of one attack as .npz")
    p.add_argument("dir", help="experiment directory")
    p.add_argument("--out", required=True, help="output .npz file")
    p.add_argument("--attack", default=None, help="fmn, pgd or deepfool (default: the first in the experiment)")
    p.add_argument("--eps", type=float, default=None, help="PGD budget in 1/255 units (default: the first)")


def resolve_attack_key(experiment: Experiment, attack: str | None, eps: float | None) -> str:
    """The attack key the user means, or a ValueError naming the ones available."""
    keys = experiment.attack_keys
    if not keys:
        raise ValueError(f"{experiment.path} has no attacks")
    if attack is None:
        return keys[0]
    if attack == "pgd":
        candidates = keys_of_attack(keys, "pgd", plain=True)
        if eps is not None:
            candidates = [k for k in candidates if k == attack_key("pgd", eps / 255)]
    else:
        candidates = [k for k in keys if k == attack]
    if not candidates:
        raise ValueError(f"expected an attack in {keys}, got {attack!r}" + (f" with eps {eps:g}" if eps else ""))
    return candidates[0]


def check_out(out: str, experiment_dir: str) -> None:
    """Refuse an --out that is a directory or lies inside the experiment (it would overwrite the cache)."""
    target, inside = os.path.realpath(out), os.path.realpath(experiment_dir)
    if os.path.isdir(target):
        raise ValueError(f"expected a file name for --out, got a directory: {out!r} (Is a directory)")
    if os.path.commonpath([target, inside]) == inside:
        raise ValueError(f"expected --out outside the experiment directory, got {out!r} inside the experiment {experiment_dir!r}")


def run(args: argparse.Namespace) -> int:
    if args.eps is not None and not (math.isfinite(args.eps) and args.eps > 0):
        raise ValueError(f"expected --eps as a finite number > 0 in 1/255 units (e.g. 8), got {args.eps}")
    check_out(args.out, args.dir)
    check_writable_dir(os.path.dirname(os.path.abspath(args.out)))
    try:
        experiment = Experiment(args.dir)
    except CacheError as err:
        raise ValueError(str(err)) from None
    key = resolve_attack_key(experiment, args.attack, args.eps)
    positions, _, _ = paired_maps(experiment.store, ESSENTIAL, adversarial_set(key), "avg")
    essential = np.stack([experiment.essential_map(int(i))[0] for i in positions]) if len(positions) else np.zeros((0,))
    adversarial = np.stack([experiment.adversarial_map(key, int(i))[0] for i in positions]) if len(positions) else np.zeros((0,))
    buffer = io.BytesIO()
    np.savez(
        buffer,
        essential=essential.astype(np.float32),
        adversarial=adversarial.astype(np.float32),
        index=canonical_index([experiment.ids[i] for i in positions]),
        position=positions.astype(np.int64),
        label=experiment.labels()[positions],
        adv_label=np.asarray(experiment.attack(key)["adv_pred"])[positions],
    )
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"wrote {args.out}: {len(positions)} pairs of maps for {key}")
    return 0
