"""Power of IdCor's permutation test against the number of pairs: would more pairs make it significant?

`idcor_power_curve` draws `repeats` subsets of every size in `sizes` (without replacement; default six sizes
from 50 pairs, or n when n < 50, up to all n) and runs IdCor's permutation test on each, re-indexing the full
set's squared distances (the preprocessing is the full set's, as in `bootstrap.idcor_interval`). Per size it
reports the IdCor values, the p-values, their median, the share with p < alpha (the empirical power at this
effect) and the permutation z-score z = (mean − observed) / std of the shuffled joint IDs.

How many pairs a significant result would need (`pairs_needed`), estimated in one of two ways, and the result
says which:
- "observed": the smallest size from which on the median p stays below alpha (at that size and every larger
  one). Read directly off the curve; limited to sizes up to n.
- "extrapolated": when no size reaches it, z_m = c·√m is fitted through the origin to the median z of every
  size (least squares) and m* = (z_{1−alpha} / c)², z_{1−alpha} the one-sided normal quantile (the test counts
  shuffled IDs below the observed one). This assumes the effect per pair stays as it is, that the shuffled IDs
  are roughly normal, and that TwoNN's small-sample bias, which changes with m, moves the observed and the
  shuffled IDs alike. It is a rough guide to the order of magnitude (a factor of two either way is
  plausible), not a promise; None when the fitted c is not positive (no effect in the tested direction).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch
from torch import Tensor

from core.metrics.idcor import (
    idcor_from_ids,
    idcor_sq_distances,
    permutation_p_value,
    reindexed,
    shuffled_joint_ids,
)
from core.metrics.twonn import twonn_id_from_sq_distances

MIN_SIZE = 50  # smallest subsample of the default curve: TwoNN is meaningless on far fewer points
DEFAULT_SIZES = 6  # sizes of the default curve, evenly spaced from MIN_SIZE to n
ALPHA = 0.05


def default_sizes(n: int, count: int = DEFAULT_SIZES) -> list[int]:
    """`count` sizes evenly spaced from min(50, n) to n (duplicates removed), ascending."""
    return sorted({int(round(s)) for s in np.linspace(min(MIN_SIZE, n), n, count)})


def idcor_power_curve(
    x: Tensor,
    y: Tensor,
    sizes: list[int] | None = None,
    repeats: int = 5,
    permutations: int = 100,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict:
    """IdCor and its permutation p against the number of pairs, and the pairs a p < alpha would need.

    x (N, Dx), y (N, Dy) paired rows. Returns a JSON-friendly dict: "sizes", per size "idcor" and "p_values"
    (lists of `repeats`), "median_p", "power" (share of repeats with p < alpha), "median_z", and
    "pairs_needed", "pairs_needed_method" ("observed" | "extrapolated" | None), "z_slope" (c), "alpha",
    "repeats", "permutations" (see the module docstring for how pairs_needed is estimated).
    """
    if repeats < 1 or permutations < 2:
        raise ValueError(f"expected repeats >= 1 and permutations >= 2, got {repeats} and {permutations}")
    if not 0 < alpha < 1:
        raise ValueError(f"expected 0 < alpha < 1, got {alpha}")
    d2_x, d2_y = idcor_sq_distances(x, y)  # (N, N) each
    n = d2_x.shape[0]
    sizes = default_sizes(n) if sizes is None else sorted(set(sizes))
    if not sizes or sizes[0] < 3 or sizes[-1] > n:
        raise ValueError(f"expected subsample sizes between 3 and n = {n}, got {sizes}")
    generator = torch.Generator().manual_seed(seed)
    curve = {key: [] for key in ("idcor", "p_values", "z")}
    for size in sizes:
        values, p_values, z_scores = [], [], []
        for _ in range(repeats):
            rows = torch.randperm(n, generator=generator)[:size].sort().values.to(d2_x.device)  # (size,)
            sub_x, sub_y = reindexed(d2_x, rows), reindexed(d2_y, rows)  # (size, size) each
            ids = [twonn_id_from_sq_distances(d2) for d2 in (sub_x, sub_y, sub_x + sub_y)]
            perms = (torch.randperm(size, generator=generator) for _ in range(permutations))
            shuffled = shuffled_joint_ids(sub_x, sub_y, perms)
            values.append(idcor_from_ids(*ids))
            p_values.append(permutation_p_value(shuffled, ids[2]))
            spread = float(shuffled.std(ddof=1))
            z_scores.append((float(shuffled.mean()) - ids[2]) / spread if spread > 0 else math.nan)
        curve["idcor"].append(values)
        curve["p_values"].append(p_values)
        curve["z"].append(z_scores)
    median_p = [float(np.median(p)) for p in curve["p_values"]]
    median_z = [float(np.nanmedian(z)) if np.isfinite(z).any() else math.nan for z in curve["z"]]
    needed, method, slope = pairs_needed(sizes, median_p, median_z, alpha)
    return {
        "sizes": sizes,
        "idcor": curve["idcor"],
        "p_values": curve["p_values"],
        "median_p": median_p,
        "power": [float(np.mean(np.asarray(p) < alpha)) for p in curve["p_values"]],
        "median_z": [z if math.isfinite(z) else None for z in median_z],
        "pairs_needed": needed,
        "pairs_needed_method": method,
        "z_slope": slope,
        "alpha": alpha,
        "repeats": repeats,
        "permutations": permutations,
    }


def pairs_needed(
    sizes: list[int], median_p: list[float], median_z: list[float], alpha: float = ALPHA
) -> tuple[int | None, str | None, float | None]:
    """(pairs, "observed" | "extrapolated" | None, fitted c of z = c·√m) as the module docstring describes."""
    significant = [p < alpha for p in median_p]
    if significant[-1]:
        first = len(sizes) - 1
        while first > 0 and significant[first - 1]:
            first -= 1
        return sizes[first], "observed", _z_slope(sizes, median_z)
    slope = _z_slope(sizes, median_z)
    if slope is None or slope <= 0:
        return None, None, slope
    z_needed = NormalDist().inv_cdf(1 - alpha)
    return math.ceil((z_needed / slope) ** 2), "extrapolated", slope


def _z_slope(sizes: list[int], median_z: list[float]) -> float | None:
    """Least-squares c of z_m = c·√m through the origin over the finite median z-scores (None without any)."""
    pairs = [(math.sqrt(m), z) for m, z in zip(sizes, median_z, strict=True) if math.isfinite(z)]
    if not pairs:
        return None
    return sum(r * z for r, z in pairs) / sum(r * r for r, _ in pairs)
