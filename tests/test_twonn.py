"""TwoNN intrinsic dimension: known dimensions, and agreement with a plain scipy reimplementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from core.metrics.twonn import squared_distances, twonn_id, twonn_id_from_sq_distances


def reference_twonn(points: np.ndarray, fraction: float = 0.9) -> float:
    """METHOD §4 step by step, with scipy distances and numpy sorting."""
    dist = cdist(points, points)  # (N, N) exact differences, zeros for duplicates
    np.fill_diagonal(dist, np.inf)
    nearest = np.sort(dist, axis=1)[:, :2]
    r1, r2 = nearest[:, 0], nearest[:, 1]
    r1, r2 = r1[r1 != 0], r2[r1 != 0]
    r1, r2 = r1[r1 != r2], r2[r1 != r2]
    n = len(r1)
    mu = np.sort(r2 / r1)
    cdf = np.arange(1, n + 1) / n
    x = np.log(mu[:-1])[: math.floor(fraction * n)]
    y = -np.log(1 - cdf[:-1])[: math.floor(fraction * n)]
    return float((x @ y) / (x @ x))


def embedded_uniform(n: int, dim: int, ambient: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(size=(n, dim)) @ rng.normal(size=(dim, ambient)))  # (n, ambient)


@pytest.mark.parametrize(("dim", "tolerance"), [(3, 0.05), (6, 0.15)], ids=["3d-within-5pc", "6d-within-15pc"])
def test_recovers_dimension_of_linearly_embedded_uniform_data(dim, tolerance):
    estimate = twonn_id(embedded_uniform(2000, dim, 100, seed=0))
    assert abs(estimate - dim) / dim < tolerance, estimate


def test_matches_scipy_reference_on_random_points():
    points = np.random.default_rng(1).normal(size=(300, 10))
    assert twonn_id(torch.from_numpy(points)) == pytest.approx(reference_twonn(points), rel=1e-9)


def test_matches_reference_with_duplicates_and_ties():
    # integer lattice points: many exact ties r1 = r2, plus 40 duplicated points
    rng = np.random.default_rng(2)
    points = rng.integers(0, 6, size=(200, 3)).astype(np.float64)
    points = np.concatenate([points, points[:40]])
    dist = cdist(points, points)
    np.fill_diagonal(dist, np.inf)
    nearest = np.sort(dist, axis=1)[:, :2]
    assert (nearest[:, 0] == 0).sum() >= 80 and (nearest[:, 0] == nearest[:, 1]).sum() > 20  # the case is exercised
    assert twonn_id(torch.from_numpy(points)) == pytest.approx(reference_twonn(points), rel=1e-9)


def test_squared_distances_match_scipy_and_are_exactly_zero_for_duplicates():
    points = np.random.default_rng(3).normal(size=(50, 7))
    points[10] = points[20]
    d2 = squared_distances(torch.from_numpy(points)).numpy()
    np.testing.assert_allclose(d2, cdist(points, points, "sqeuclidean"), rtol=1e-10, atol=1e-12)
    assert d2[10, 20] == 0.0 and d2[20, 10] == 0.0
    np.testing.assert_array_equal(d2[10], d2[20])  # bitwise-identical rows give exact ties downstream


def test_from_sq_distances_does_not_modify_its_input():
    d2 = squared_distances(torch.randn(30, 5, dtype=torch.float64))
    before = d2.clone()
    twonn_id_from_sq_distances(d2)
    assert torch.equal(d2, before)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (torch.zeros(2, 4), "at least 3 points"),
        (torch.zeros(10, 4), "neither a duplicate nor tied"),
        (torch.zeros(10), r"expected an \(N, D\) array"),
    ],
    ids=["two-points", "all-duplicates", "one-dimensional"],
)
def test_bad_input_raises_clear_error(points, message):
    with pytest.raises(ValueError, match=message):
        twonn_id(points)
