"""Confidence intervals from resampled pairs: how precise is a mean cosine, an SVCCA, an IdCor?

Two resampling schemes, because two of the metrics cannot take duplicated rows:

- **Mean cosine**: the ordinary nonparametric bootstrap. B resamples of the N pairs *with* replacement; the
  interval is the percentile interval, the α/2 and 1 − α/2 quantiles (numpy's linear rule) of the B
  resampled means. The mean of per-pair values is the textbook case where this is accurate.
- **SVCCA and IdCor**: subsampling *without* replacement (Politis & Romano 1994), m = ⌊n/2⌋ of the n pairs
  ("half-sampling"). With replacement a resample holds only ~63 % distinct rows: TwoNN drops every point
  whose nearest neighbour is its own copy (r1 = 0), so IdCor would be estimated from the ~37 % of points drawn
  once, and SVCCA's canonical correlations are forced to 1 once k_a + k_b exceeds the distinct rows − 1
  (caveats.py), so both would be shifted, not just spread.
  Rescaling: for a root-n statistic the spread of the m-of-n estimates (without replacement) around the full
  one has variance σ²·(1/m − 1/n) where the full-sample estimate has σ²/n (the finite-population correction),
  so deviations are scaled by √(m / (n − m)): exactly 1 at m = n/2, the reason for that choice.
  Interval: θ̂ + √(m/(n−m))·[q_{α/2}, q_{1−α/2}] of the deviations θ*_b − median(θ*), i.e. the spread of the
  replicates around their own median, placed at the full-sample estimate θ̂. Centring on their median
  removes the shift a small-sample-biased estimator (TwoNN's IDs, SVCCA's canonical correlations) shows at
  m instead of n pairs. It does not remove θ̂'s own bias at n pairs: the interval is for the value this
  estimator gives with n pairs (what comparing attacks with similar N needs), not for its large-N limit.

IdCor's subsamples reuse the full set's preprocessing (standardised features, unit rows) and re-index its two
squared-distance matrices, as the permutation test does, so a replicate costs three TwoNN fits on an (m, m)
matrix and no distance computation. Re-standardising every subsample would move each feature's mean and std
by O(1/√m); the test suite checks that the intervals barely differ. SVCCA's subsamples recompute the SVD
reduction (k may change) from the (m, m) Gram sub-matrix when D > m (`reduction_from_gram`).
Seeded: the same seed gives the same resamples on every device (a CPU torch.Generator draws them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from core.metrics.idcor import idcor_from_ids, idcor_sq_distances, reindexed
from core.metrics.svcca import check_paired_rows, details_from_reduced, reduction_from_gram, svd_reduction
from core.metrics.twonn import _twonn_id_in_place

DEFAULT_RESAMPLES = 1000  # B: enough for stable 2.5 % / 97.5 % quantiles (Efron & Tibshirani recommend >= 1000)
CONFIDENCE = 0.95  # nominal coverage of every interval
SUBSAMPLE_FRACTION = 0.5  # m = ⌊fraction · n⌋ pairs per SVCCA / IdCor subsample; 0.5 needs no rescaling


@dataclass(frozen=True)
class Interval:
    """A confidence interval with the replicates it came from."""

    low: float  # NaN when a replicate is NaN (SVCCA with k = 0 in some subsample)
    high: float
    replicates: np.ndarray  # (B,) the statistic on each resample / subsample
    method: str  # "percentile bootstrap" or "half-sampling, m of n"

    def as_list(self) -> list[float | None]:
        """[low, high], NaN as None (JSON null)."""
        return [v if math.isfinite(v) else None for v in (self.low, self.high)]


def _check(resamples: int, confidence: float) -> None:
    if resamples < 2:
        raise ValueError(f"expected at least 2 bootstrap resamples, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"expected 0 < confidence < 1, got {confidence}")


def subsample_size(n: int, fraction: float = SUBSAMPLE_FRACTION) -> int:
    """m = ⌊fraction · n⌋ pairs per subsample; at least 3 (TwoNN) and at most n − 1 (something left out)."""
    if not 0 < fraction < 1:
        raise ValueError(f"expected 0 < subsample fraction < 1, got {fraction}")
    m = math.floor(fraction * n)
    if m < 3 or m > n - 1:
        raise ValueError(f"expected at least 4 pairs and a subsample of 3 to n - 1, got n = {n} and m = {m}")
    return m


def percentile_bounds(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The (1 − confidence)/2 and (1 + confidence)/2 quantiles of the replicates (NaN if any is NaN)."""
    if not np.isfinite(replicates).all():
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return float(low), float(high)


def subsample_interval(estimate: float, replicates: np.ndarray, n: int, m: int, confidence: float) -> Interval:
    """θ̂ + √(m/(n−m))·quantiles of (θ*_b − median θ*): the subsampling interval of the module docstring."""
    scale = math.sqrt(m / (n - m))
    low, high = percentile_bounds(replicates - np.median(replicates), confidence)
    return Interval(estimate + scale * low, estimate + scale * high, replicates, f"half-sampling, {m} of {n} pairs")


def cosine_mean_interval(
    cosines: Tensor, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Interval:
    """Percentile bootstrap interval of the mean of (N,) per-pair cosines (resampled with replacement)."""
    _check(resamples, confidence)
    if cosines.ndim != 1 or cosines.numel() < 2:
        raise ValueError(f"expected a 1-D tensor of at least 2 cosines, got shape {tuple(cosines.shape)}")
    generator = torch.Generator().manual_seed(seed)
    n = cosines.numel()
    rows = torch.randint(n, (resamples, n), generator=generator).to(cosines.device)  # (B, N)
    replicates = cosines.double()[rows].mean(dim=1).cpu().numpy()  # (B,)
    low, high = percentile_bounds(replicates, confidence)
    return Interval(low, high, replicates, "percentile bootstrap")


def _subsamples(n: int, m: int, resamples: int, seed: int) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=generator)[:m] for _ in range(resamples)]  # B × (m,)


def idcor_interval(
    x: Tensor,
    y: Tensor,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    fraction: float = SUBSAMPLE_FRACTION,
) -> Interval:
    """Half-sampling interval of IdCor between paired x (N, Dx) and y (N, Dy), re-indexing squared distances."""
    _check(resamples, confidence)
    d2_x, d2_y = idcor_sq_distances(x, y)  # (N, N) each
    d2_joint = d2_x + d2_y  # (N, N) = D²([X | Y])
    n = d2_x.shape[0]
    m = subsample_size(n, fraction)
    estimate = idcor_from_ids(*(_twonn_id_in_place(d2.clone()) for d2 in (d2_x, d2_y, d2_joint)))
    replicates = np.empty(resamples)
    for b, rows in enumerate(_subsamples(n, m, resamples, seed)):
        rows = rows.to(d2_x.device)
        replicates[b] = idcor_from_ids(*(_twonn_id_in_place(reindexed(d2, rows)) for d2 in (d2_x, d2_y, d2_joint)))
    return subsample_interval(estimate, replicates, n, m, confidence)


def svcca_interval(
    a: Tensor,
    b: Tensor,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    fraction: float = SUBSAMPLE_FRACTION,
    accept_rate: float = 0.99,
) -> Interval:
    """Half-sampling interval of SVCCA between paired a (N, D1) and b (N, D2), each subsample reduced afresh."""
    _check(resamples, confidence)
    a, b = check_paired_rows(a, b, accept_rate)
    n = a.shape[0]
    m = subsample_size(n, fraction)
    estimate = details_from_reduced(svd_reduction(a, accept_rate), svd_reduction(b, accept_rate)).svcca
    reducers = [_subsample_reducer(x, m, accept_rate) for x in (a, b)]
    replicates = np.empty(resamples)
    for i, rows in enumerate(_subsamples(n, m, resamples, seed)):
        rows = rows.to(a.device)
        replicates[i] = details_from_reduced(*(reduce(rows) for reduce in reducers)).svcca
    return subsample_interval(estimate, replicates, n, m, confidence)


def _subsample_reducer(x: Tensor, m: int, accept_rate: float):  # noqa: ANN202 (a closure)
    """rows (m,) -> the (m, k) SVD reduction of x[rows]: from the Gram sub-matrix when x has more columns than m."""
    if x.shape[1] <= m:
        return lambda rows: svd_reduction(x.index_select(0, rows), accept_rate)
    gram = x @ x.T  # (N, N), uncentred as the reduction is
    return lambda rows: reduction_from_gram(reindexed(gram, rows), accept_rate)
