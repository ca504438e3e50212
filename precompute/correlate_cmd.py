"""`python -m precompute correlate A B`: cosine, SVCCA, linear CKA and IdCor between two paired map sets.

A and B are .npy files, or .npz files holding exactly one array, of shape (N, D) or
(N, C, H, W); row i of A and row i of B belong to the same image. The widths may differ (cosine
then is n/a). Maps larger than 32×32 are pooled to 32×32 (--pool avg|max). Prints a table, or one
JSON object with --json.

Statistics on request: --bootstrap [B] adds 95 % intervals (B resamples, 1000 when B is left out),
--labels L.npy (one integer class per pair) the within-class p-value and, with --repairings, the
within-class re-paired baselines, --half-spectrum keeps each Hermitian pair of frequencies once,
--power prints IdCor's power curve against the number of pairs.

Example:
    python -m precompute correlate essential.npy adversarial.npy --permutations 100 --json
    python -m precompute correlate essential.npy adversarial.npy --bootstrap --labels labels.npy --repairings 10
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
from core.metrics.bootstrap import CONFIDENCE, DEFAULT_RESAMPLES
from core.metrics.caveats import correlation_caveats
from core.metrics.correlate import null_idcor_median
from core.metrics.within_class import check_labels


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="correlate two paired map sets (cosine, SVCCA, IdCor)")
    p.add_argument("a", help=".npy or single-array .npz file, (N, D) or (N, C, H, W), e.g. essential maps")
    p.add_argument("b", help="rows paired with A's (same N; any width), e.g. adversarial maps")
    p.add_argument("--permutations", type=int, default=100, help="permutations in IdCor's p-value test")
    p.add_argument("--pool", choices=list(POOL_MODES), default="avg", help="pooling for maps larger than 32x32")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutations and re-pairings")
    p.add_argument("--repairings", type=int, default=0, help="add the re-paired baseline over K derangements")
    p.add_argument("--bootstrap", type=int, nargs="?", const=DEFAULT_RESAMPLES, default=0, metavar="B",
                   help=f"add 95%% intervals from B resamples (B = {DEFAULT_RESAMPLES} if omitted)")
    p.add_argument("--labels", help=".npy/.npz of N integer class labels: within-class p-value and baselines")
    p.add_argument("--half-spectrum", action="store_true", help="keep each Hermitian pair {k, -k} of frequencies once")
    p.add_argument("--power", action="store_true", help="IdCor and its p against the number of pairs")
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


def load_labels(path: str, n: int) -> np.ndarray:
    """The (N,) integer class labels in a .npy/.npz file, checked against N pairs, or a one-line ValueError."""
    labels = load_array(path)
    try:
        check_labels(labels, n)
    except ValueError as err:
        raise ValueError(f"{err} (labels file {path!r})") from None
    return labels


def _table(result: dict, a_path: str, b_path: str, wall_s: float) -> str:
    n = result["n"]
    width = result["dim"] if result["dim"] is not None else f"{result['dim_a']} (A), {result['dim_b']} (B)"
    cosine = ("n/a" if result["cosine_mean"] is None
              else f"{result['cosine_mean']:.4f} ± {result['cosine_std']:.4f}")
    rows = [
        ("cosine", cosine, "cosine_mean_ci", METRICS["cosine"].description),
        ("svcca", _fmt(result["svcca"]), "svcca_ci",
         f"{METRICS['svcca'].description} (k = {result['svcca_k_a']}, {result['svcca_k_b']})"),
        ("cka", _fmt(result.get("cka")), None, "linear CKA (Kornblith et al. 2019), centred linear kernels"),
        ("idcor", _fmt(result["idcor"]), "idcor_ci", METRICS["idcor"].description),
    ]
    with_intervals = "bootstrap" in result
    interval_header = f"  {f'{CONFIDENCE:.0%} interval':<18}" if with_intervals else ""
    lines = [
        f"A: {a_path}",
        f"B: {b_path}",
        f"pairs N = {n}, features D = {width}, pooling: {result['pool']}"
        + (", half spectrum (each Hermitian pair once)" if result.get("half_spectrum") else ""),
        "",
        f"{'metric':<8} {'value':>22}{interval_header}  description",
    ]
    for name, value, ci_key, description in rows:
        if name == "cka" and "cka" not in result:
            continue
        interval = f"  {_fmt_interval(result.get(ci_key)) if ci_key else '':<18}" if with_intervals else ""
        lines.append(f"{name:<8} {value:>22}{interval}  {description}")
    if "cosine_note" in result:
        lines.append(f"cosine: n/a, {result['cosine_note']}")
    lines += [
        "",
        f"IdCor: p = {_fmt(result['p_value'])} over {result['permutations']} permutations (floor {1 / (result['permutations'] + 1):.4f}), "
        f"ID(A) = {result['id_a']:.3f}, ID(B) = {result['id_b']:.3f}, ID(A|B) = {result['id_joint']:.3f}",
    ]
    if result["null_ids"]:
        null = np.asarray(result["null_ids"])
        lines.append(f"shuffled ID(A|B[perm]): mean {null.mean():.3f}, min {null.min():.3f}, max {null.max():.3f}; "
                     f"IdCor of the shuffled pairings: median {null_idcor_median(result):.4f} (IdCor's baseline)")
    if "p_value_within_class" in result:
        lines.append(f"IdCor within classes: p = {_fmt(result['p_value_within_class'])} over {result['permutations']} "
                     "permutations that keep every image in its class")
    if "repairings" in result:
        lines.append(
            f"re-paired baseline over {result['repairings']} derangements: cosine {_pm(result, 'repaired_cosine')}, "
            f"SVCCA {_pm(result, 'repaired_svcca')}" + (f", CKA {_pm(result, 'repaired_cka')}" if "cka" in result else "")
        )
    if "within_class_repaired_svcca_mean" in result:
        lines.append(f"re-paired within classes: cosine {_pm(result, 'within_class_repaired_cosine')}, "
                     f"SVCCA {_pm(result, 'within_class_repaired_svcca')}")
    if "bootstrap" in result:
        lines.append(f"intervals: cosine percentile bootstrap over {result['bootstrap']} resamples; SVCCA and IdCor "
                     f"half-sampling, {result['bootstrap']} subsets of {result['bootstrap_subsample']} of {n} pairs")
    if result.get("power"):
        lines.extend(_power_lines(result["power"]))
    lines.extend(f"caveat: {text}" for text in correlation_caveats(result))
    lines.append(f"({wall_s:.1f} s)")
    return "\n".join(lines)


def _power_lines(curve: dict) -> list[str]:
    lines = ["", f"IdCor against the number of pairs ({curve['repeats']} subsets per size, {curve['permutations']} permutations):",
             f"{'pairs':>6} {'median IdCor':>13} {'median p':>9} {'p < ' + str(curve['alpha']):>9}"]
    for size, values, p, share in zip(curve["sizes"], curve["idcor"], curve["median_p"], curve["power"], strict=True):
        lines.append(f"{size:>6} {float(np.median(values)):>13.4f} {p:>9.4f} {share:>9.0%}")
    needed, method = curve["pairs_needed"], curve["pairs_needed_method"]
    if method == "observed":
        lines.append(f"median p < {curve['alpha']} from {needed} pairs on (observed)")
    elif method == "extrapolated":
        lines.append(f"median p < {curve['alpha']} would need about {needed} pairs (extrapolated, z ∝ √N: a rough guide)")
    else:
        lines.append("no effect in the direction the test looks for: no number of pairs would make it significant")
    return lines


def _pm(result: dict, prefix: str) -> str:
    return f"{_fmt(result[prefix + '_mean'])} ± {_fmt(result[prefix + '_std'])}"


def _fmt_interval(bounds: list[float | None] | None) -> str:
    if bounds is None or None in bounds:
        return "n/a"
    return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    if args.permutations < 0:
        raise ValueError(f"expected --permutations >= 0, got {args.permutations}")
    if args.repairings < 0:
        raise ValueError(f"expected --repairings >= 0, got {args.repairings}")
    if args.bootstrap < 0:
        raise ValueError(f"expected --bootstrap >= 0 resamples, got {args.bootstrap}")
    if args.power and args.permutations < 2:
        raise ValueError(f"expected --permutations >= 2 with --power, got {args.permutations}")
    device = resolve_device(args.device)
    a, b = load_array(args.a), load_array(args.b)
    labels = load_labels(args.labels, a.shape[0] if a.ndim else 0) if args.labels else None
    t0 = time.perf_counter()
    result = correlate(
        torch.from_numpy(a.astype(np.float64)).to(device),  # native float64: any int/float/bool dtype or byte order
        torch.from_numpy(b.astype(np.float64)).to(device),
        permutations=args.permutations,
        pool=args.pool,
        seed=args.seed,
        repairings=args.repairings,
        bootstrap=args.bootstrap,
        labels=labels,
        half_spectrum=args.half_spectrum,
        cka=True,
        power=args.power,
    )
    wall_s = time.perf_counter() - t0
    if args.json:
        print(json.dumps({**result, "caveats": correlation_caveats(result)}))
    else:
        print(_table(result, args.a, args.b, wall_s))
    return 0
