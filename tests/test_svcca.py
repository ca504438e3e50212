"""SVCCA: closed-form cases, and agreement with a plain numpy version of anatome's computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.metrics.svcca import svcca, svcca_details


def reference_svcca(a: np.ndarray, b: np.ndarray, accept_rate: float = 0.99) -> tuple[float, int, int]:
    """METHOD §4 with numpy: uncentred SVD reduction, centre, orthonormalise, singular values of U1ᵀU2."""

    def reduce(x: np.ndarray) -> np.ndarray:
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        k = int(np.sum(np.cumsum(np.abs(s)) / np.sum(np.abs(s)) < accept_rate))
        return x @ vt[:k].T

    ra, rb = reduce(a), reduce(b)
    ua = np.linalg.svd(ra - ra.mean(axis=0), full_matrices=False)[0]
    ub = np.linalg.svd(rb - rb.mean(axis=0), full_matrices=False)[0]
    rho = np.linalg.svd(ua.T @ ub, compute_uv=False)
    return float(rho.sum() / min(ra.shape[1], rb.shape[1])), ra.shape[1], rb.shape[1]


def decaying(n: int, d: int, seed: int) -> np.ndarray:
    """Gaussian rows with a decaying spectrum and a non-zero mean, like real maps (not white noise)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * (1.0 / np.arange(1, d + 1)) + rng.uniform(size=d)


def test_identical_sets_give_one():
    x = torch.from_numpy(decaying(500, 30, seed=0))
    assert svcca(x, x) == pytest.approx(1.0, abs=1e-6)


def test_invertible_linear_map_gives_close_to_one():
    rng = np.random.default_rng(1)
    x = decaying(1000, 20, seed=1)
    q1, q2 = np.linalg.qr(rng.normal(size=(20, 20)))[0], np.linalg.qr(rng.normal(size=(20, 20)))[0]
    mixing = q1 @ np.diag(np.linspace(1, 3, 20)) @ q2  # invertible, condition number 3
    assert svcca(torch.from_numpy(x), torch.from_numpy(x @ mixing)) > 0.95


def test_independent_sets_give_low_value():
    assert svcca(torch.from_numpy(decaying(2000, 20, seed=2)), torch.from_numpy(decaying(2000, 20, seed=3))) < 0.3


@pytest.mark.parametrize(("n", "d_a", "d_b"), [(400, 30, 30), (300, 50, 12), (60, 100, 100)], ids=["square", "unequal-d", "d>n"])
def test_matches_numpy_reference(n, d_a, d_b):
    rng = np.random.default_rng(n)
    a = decaying(n, d_a, seed=n)
    b = a[:, :d_b] @ rng.normal(size=(d_b, d_b)) + 0.5 * rng.normal(size=(n, d_b))  # related, not identical
    details = svcca_details(torch.from_numpy(a), torch.from_numpy(b))
    expected, k1, k2 = reference_svcca(a, b)
    assert (details.k1, details.k2) == (k1, k2)
    assert details.svcca == pytest.approx(expected, rel=1e-6)
    assert details.correlations.shape == (min(k1, k2),)
    assert float(details.correlations.max()) <= 1 + 1e-9


def test_float32_input_is_computed_in_float64():
    a = decaying(300, 20, seed=5)
    b = a + 0.3 * np.random.default_rng(5).normal(size=a.shape)
    expected = reference_svcca(a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64))[0]
    assert svcca(torch.from_numpy(a).float(), torch.from_numpy(b).float()) == pytest.approx(expected, rel=1e-9)


def test_rank_one_data_keeps_no_direction_and_gives_nan():
    # one singular value carries all the mass: k = 0, where anatome divides by zero
    x = np.outer(np.arange(1.0, 51.0), np.ones(8))
    details = svcca_details(torch.from_numpy(x), torch.from_numpy(np.random.default_rng(0).normal(size=(50, 8))))
    assert details.k1 == 0 and np.isnan(details.svcca)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (torch.zeros(10, 3), torch.zeros(9, 3), "same number of rows"),
        (torch.zeros(10), torch.zeros(10, 3), r"expected two \(N, D\) arrays"),
    ],
    ids=["mismatched-n", "one-dimensional"],
)
def test_bad_input_raises_clear_error(a, b, message):
    with pytest.raises(ValueError, match=message):
        svcca(a, b)


def test_bad_accept_rate_raises():
    with pytest.raises(ValueError, match="accept_rate"):
        svcca(torch.ones(5, 2), torch.ones(5, 2), accept_rate=1.5)
