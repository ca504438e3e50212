"""Linear CKA against a plain numpy implementation of Kornblith et al. (2019), and its invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from core.metrics import correlate, linear_cka, repaired_cka
from core.metrics.repairing import random_derangement


def reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Feature form: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) of the column-centred sets (Kornblith et al., eq. 3 / 4)."""
    x, y = x - x.mean(0), y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def sets(seed: int, n: int = 40, d1: int = 7, d2: int = 5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d1))
    return x, x @ rng.normal(size=(d1, d2)) + rng.normal(size=(n, d2))


@pytest.mark.parametrize("seed", range(4))
def test_linear_cka_equals_the_feature_form(seed):
    x, y = sets(seed)
    assert linear_cka(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(reference_cka(x, y), rel=1e-10)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling_but_not_to_anisotropic():
    x, y = sets(7)
    base = reference_cka(x, y)
    q1, q2 = ortho_group.rvs(7, random_state=1), ortho_group.rvs(5, random_state=2)
    moved = linear_cka(torch.from_numpy(3.5 * x @ q1), torch.from_numpy(0.2 * y @ q2))
    assert moved == pytest.approx(base, rel=1e-10)
    stretched = linear_cka(torch.from_numpy(x * np.arange(1, 8)), torch.from_numpy(y))
    assert abs(stretched - base) > 1e-3  # a test that could not tell would pass anything
    assert linear_cka(torch.from_numpy(x), torch.from_numpy(x)) == pytest.approx(1.0, rel=1e-12)


def test_repaired_cka_equals_cka_of_the_deranged_rows():
    x, y = sets(3)
    result = repaired_cka(torch.from_numpy(x), torch.from_numpy(y), repairings=4, seed=9)
    generator = torch.Generator().manual_seed(9)
    expected = [reference_cka(x, y[random_derangement(40, generator).numpy()]) for _ in range(4)]
    np.testing.assert_allclose(result["values"], expected, rtol=1e-10)
    assert result["std"] == pytest.approx(np.std(expected), rel=1e-9)


def test_correlate_reports_cka_only_when_asked():
    x, y = sets(0)
    assert "cka" not in correlate(x, y, permutations=3)
    result = correlate(x, y, permutations=3, cka=True, repairings=2)
    assert result["cka"] == pytest.approx(reference_cka(x, y), rel=1e-10)
    assert {"repaired_cka_mean", "repaired_cka_std"} <= set(result)
