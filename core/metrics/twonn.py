"""TwoNN intrinsic dimension (Facco et al. 2017) as the IdCor code computes it (METHOD §4).

r1, r2 = Euclidean distance of each point to its first and second nearest neighbour (not the
point itself). Points with r1 = 0 are dropped, then points with r1 = r2. With N points left:
μ = sort(r2 / r1), F_i = i / N; x_i = log μ_i, y_i = -log(1 - F_i) for i = 1..N-1; keep the
first ⌊0.9·N⌋ pairs; the ID is the least-squares slope through the origin, Σxy / Σx².

The estimator works from *squared* distances so that IdCor's permutation test can add the
squared-distance matrices of two feature sets instead of recomputing distances (see idcor.py).
Exact duplicates must give exactly r1 = 0: `squared_distances` computes distances between the
distinct rows only and re-expands them, so duplicate rows have bitwise-identical columns and a
zero distance, where a Gram-matrix formula would leave ~1e-16 noise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

FRACTION = 0.9  # share of the sorted μ values used in the fit (the published default)


def squared_distances(x: Tensor) -> Tensor:
    """(N, D) -> (N, N) float64 squared Euclidean distances; exactly 0 between identical rows."""
    if x.ndim != 2:
        raise ValueError(f"expected an (N, D) array, got shape {tuple(x.shape)}")
    x = x.double()
    unique, inverse = torch.unique(x, dim=0, return_inverse=True)  # (U, D), (N,)
    norms = (unique * unique).sum(dim=1)  # (U,)
    d2 = (norms[:, None] + norms[None, :] - 2 * unique @ unique.T).clamp_min_(0)  # (U, U)
    d2.fill_diagonal_(0)
    return d2[inverse][:, inverse]  # (N, N)


def twonn_id_from_sq_distances(d2: Tensor, fraction: float = FRACTION) -> float:
    """TwoNN ID from an (N, N) matrix of squared distances (diagonal ignored)."""
    if d2.ndim != 2 or d2.shape[0] != d2.shape[1]:
        raise ValueError(f"expected a square (N, N) distance matrix, got shape {tuple(d2.shape)}")
    if d2.shape[0] < 3:
        raise ValueError(f"expected at least 3 points for TwoNN, got {d2.shape[0]}")
    return _twonn_id_in_place(d2.double().clone(), fraction)


def _twonn_id_in_place(d2: Tensor, fraction: float = FRACTION) -> float:
    """`twonn_id_from_sq_distances` on a float64 matrix it may overwrite (saves a copy per permutation)."""
    d2.fill_diagonal_(math.inf)  # a point is not its own neighbour
    nearest = torch.topk(d2, 2, dim=1, largest=False).values  # (N, 2) ascending
    r1_sq, r2_sq = nearest[:, 0], nearest[:, 1]
    keep = r1_sq != 0  # drop duplicates first, then ties, as published
    r1_sq, r2_sq = r1_sq[keep], r2_sq[keep]
    keep = r1_sq != r2_sq
    r1_sq, r2_sq = r1_sq[keep], r2_sq[keep]
    n = r1_sq.numel()
    if n < 2:
        raise ValueError(f"expected at least 2 points whose nearest neighbour is neither a duplicate nor tied, got {n}")
    n_fit = math.floor(fraction * n)  # <= n - 1, the length of x and y below
    mu = torch.sort(torch.sqrt(r2_sq / r1_sq)).values  # (n,) ascending, all > 1
    empirical_cdf = torch.arange(1, n + 1, dtype=torch.float64, device=mu.device) / n  # (n,)
    x = torch.log(mu[:-1])[:n_fit]
    y = -torch.log(1 - empirical_cdf[:-1])[:n_fit]
    return float((x * y).sum() / (x * x).sum())


def twonn_id(x: Tensor, fraction: float = FRACTION) -> float:
    """TwoNN intrinsic dimension of (N, D) points."""
    return twonn_id_from_sq_distances(squared_distances(x), fraction)
