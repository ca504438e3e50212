"""`python -m precompute correlate A B`: cosine, SVCCA and IdCor between two paired map sets.

A and B are .npy files, or .npz files holding exactly one array, of shape (N, D) or
(N, C, H, W); row i of A and row i of B belong to the same image. Maps larger than 32×32 are
pooled to 32×32 (--pool avg|max). Prints a table, or one JSON object with --json.

Example:
    python -m precompute correlate essential.npy adversarial.npy --permutations 100 --json
"""

from __future__ import annotations

import argparse
import json
import time
import zipfile

import numpy as np
import torch

from core.devices import resolve_device
from core.metrics import METRICS, POOL_MODES, correlate
from core.metrics.caveats import correlation_caveats
from core.metrics.correlate import null_idcor_median


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="correlate two paired map sets (cosine, SVCCA, IdCor)")
    p.add_argument("a", help=".npy or single-array .npz file, (N, D) or (N, C, H, W), e.g. essential maps")
    p.add_argument("b", help="same shape as A, rows paired with A's, e.g. adversarial maps")
    p.add_argument("--permutations", type=int, default=100, help="permutations in IdCor's p-value test")
    p.add_argument("--pool", choices=list(POOL_MODES), default="avg", help="pooling for maps larger than 32x32")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutations and re-pairings")
    p.add_argument("--repairings", type=int, default=0, help="add the re-paired baseline over K derangements")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


NPY_MAGIC = b"\x93NUMPY"  # first bytes of a .npy file
NPZ_MAGIC = b"PK\x03\x04"  # a .npz is a zip archive


def load_array(path: str) -> np.ndarray:
    """The one numeric array in a .npy / .npz file (no pickles), or a one-line ValueError."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
        if not magic:
            raise ValueError("an empty file, 0 bytes")
        if not (magic.startswith(NPY_MAGIC) or magic.startswith(NPZ_MAGIC)):
            raise ValueError("neither .npy nor .npz content")
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"expected an existing .npy/.npz file, got {path!r} (not found)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"expected a readable .npy/.npz file without pickled objects, got {path!r} ({reason})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            if len(names) != 1:
                raise ValueError(f"expected exactly one array in {path!r}, got {len(names)}: {names[:5]}")
            try:
                loaded = loaded[names[0]]
            except ValueError as err:
                raise ValueError(f"expected a numeric array in {path!r}, got {str(err).splitlines()[0]}") from None
    if loaded.dtype.kind not in "biuf":
        raise ValueError(f"expected a real numeric array in {path!r}, got dtype {loaded.dtype}")
    return loaded


def _table(result: dict, a_path: str, b_path: str, wall_s: float) -> str:
    n = result["n"]
    lines = [
        f"A: {a_path}",
        f"B: {b_path}",
        f"pairs N = {n}, features D = {result['dim']}, pooling: {result['pool']}",
        "",
        f"{'metric':<8} {'value':>22}  description",
        f"{'cosine':<8} {result['cosine_mean']:>12.4f} ± {result['cosine_std']:<7.4f}  {METRICS['cosine'].description}",
        f"{'svcca':<8} {_fmt(result['svcca']):>22}  {METRICS['svcca'].description} (k = {result['svcca_k_a']}, {result['svcca_k_b']})",
        f"{'idcor':<8} {_fmt(result['idcor']):>22}  {METRICS['idcor'].description}",
        "",
        f"IdCor: p = {_fmt(result['p_value'])} over {result['permutations']} permutations (floor {1 / (result['permutations'] + 1):.4f}), "
        f"ID(A) = {result['id_a']:.3f}, ID(B) = {result['id_b']:.3f}, ID(A|B) = {result['id_joint']:.3f}",
    ]
    if result["null_ids"]:
        null = np.asarray(result["null_ids"])
        lines.append(f"shuffled ID(A|B[perm]): mean {null.mean():.3f}, min {null.min():.3f}, max {null.max():.3f}; "
                     f"IdCor of the shuffled pairings: median {null_idcor_median(result):.4f} (IdCor's baseline)")
    if "repairings" in result:
        lines.append(
            f"re-paired baseline over {result['repairings']} derangements: cosine {result['repaired_cosine_mean']:.4f} ± "
            f"{result['repaired_cosine_std']:.4f}, SVCCA {_fmt(result['repaired_svcca_mean'])} ± {_fmt(result['repaired_svcca_std'])}"
        )
    lines.extend(f"caveat: {text}" for text in correlation_caveats(result))
    lines.append(f"({wall_s:.1f} s)")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    if args.permutations < 0:
        raise ValueError(f"expected --permutations >= 0, got {args.permutations}")
    if args.repairings < 0:
        raise ValueError(f"expected --repairings >= 0, got {args.repairings}")
    device = resolve_device(args.device)
    a, b = load_array(args.a), load_array(args.b)
    t0 = time.perf_counter()
    result = correlate(
        torch.from_numpy(a.astype(np.float64)).to(device),  # native float64: any int/float/bool dtype or byte order
        torch.from_numpy(b.astype(np.float64)).to(device),
        permutations=args.permutations,
        pool=args.pool,
        seed=args.seed,
        repairings=args.repairings,
    )
    wall_s = time.perf_counter() - t0
    if args.json:
        print(json.dumps({**result, "caveats": correlation_caveats(result)}))
    else:
        print(_table(result, args.a, args.b, wall_s))
    return 0
