"""IdCor: the behaviour METHOD §4 expects, and the fast permutation test against recomputing from scratch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from core.metrics.idcor import idcor, idcor_preprocess, null_idcor, permutation_generator

FLOOR_100 = 1 / 101  # smallest p-value with 100 permutations


def reference_preprocess(x: np.ndarray) -> np.ndarray:
    x = (x - x.mean(axis=0)) / (x.std(axis=0, ddof=1) + 1e-6)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_twonn(points: np.ndarray) -> float:
    """TwoNN from scratch: scipy distances of the points as given, METHOD §4 fit."""
    dist = cdist(points, points)
    np.fill_diagonal(dist, np.inf)
    nearest = np.sort(dist, axis=1)[:, :2]
    r1, r2 = nearest[:, 0], nearest[:, 1]
    r1, r2 = r1[r1 != 0], r2[r1 != 0]
    r1, r2 = r1[r1 != r2], r2[r1 != r2]
    n = len(r1)
    keep = math.floor(0.9 * n)
    x = np.log(np.sort(r2 / r1)[:-1])[:keep]
    y = -np.log(1 - np.arange(1, n) / n)[:keep]
    return float((x @ y) / (x @ x))


def uniform(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, d))


def test_preprocess_matches_numpy():
    x = np.random.default_rng(0).normal(size=(40, 6)) * np.arange(1, 7) + 3
    got = idcor_preprocess(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, reference_preprocess(x), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-12)


def test_fast_permutation_path_equals_recomputing_distances_from_scratch():
    rng = np.random.default_rng(1)
    x = uniform(200, 5, seed=1)
    y = np.tanh(x @ rng.normal(size=(5, 7))) + 0.1 * rng.normal(size=(200, 7))
    result = idcor(torch.from_numpy(x), torch.from_numpy(y), permutations=5, seed=11)

    px, py = reference_preprocess(x), reference_preprocess(y)
    generator = permutation_generator(11)
    expected_null = []
    for _ in range(5):
        perm = torch.randperm(200, generator=generator).numpy()
        expected_null.append(reference_twonn(np.concatenate([px, py[perm]], axis=1)))
    id_x, id_y, id_joint = reference_twonn(px), reference_twonn(py), reference_twonn(np.concatenate([px, py], axis=1))

    np.testing.assert_allclose(result.shuffled_ids, expected_null, rtol=1e-6)
    assert (result.id_x, result.id_y, result.id_joint) == pytest.approx((id_x, id_y, id_joint), rel=1e-6)
    assert result.idcor == pytest.approx((id_x + id_y - id_joint) / max(id_x, id_y), rel=1e-6)
    below = int(np.sum(np.asarray(expected_null) < id_joint))
    assert result.p_value == pytest.approx((below + 1) / 6)


def test_null_idcor_is_the_idcor_of_each_shuffled_pairing():
    """null_idcor from the stored joint IDs equals idcor() run from scratch on each shuffled pairing."""
    rng = np.random.default_rng(4)
    x = uniform(150, 4, seed=4)
    y = np.tanh(x @ rng.normal(size=(4, 6))) + 0.1 * rng.normal(size=(150, 6))
    result = idcor(torch.from_numpy(x), torch.from_numpy(y), permutations=6, seed=5)
    generator = permutation_generator(5)
    direct = [idcor(torch.from_numpy(x), torch.from_numpy(y[torch.randperm(150, generator=generator).numpy()]),
                    permutations=0).idcor for _ in range(6)]
    got = null_idcor(result.id_x, result.id_y, result.shuffled_ids)
    np.testing.assert_allclose(got, direct, rtol=1e-9, atol=1e-12)
    assert np.median(got) < result.idcor  # a smooth function of X: well above what shuffled pairs reach


def test_smooth_function_gives_high_idcor_at_the_p_floor():
    x = uniform(2000, 4, seed=2)
    y = np.tanh(x @ np.random.default_rng(3).normal(size=(4, 6)))  # (2000, 6), a smooth function of x
    result = idcor(torch.from_numpy(x), torch.from_numpy(y), permutations=100, seed=0)
    assert result.idcor > 0.75
    assert result.p_value == pytest.approx(FLOOR_100)
    assert result.n == 2000 and result.permutations == 100 and result.shuffled_ids.shape == (100,)


def test_two_shared_of_four_coordinates_give_about_one_half_at_the_p_floor():
    x = uniform(2000, 4, seed=4)
    y = np.concatenate([x[:, :2], uniform(2000, 2, seed=5)], axis=1)  # shares coordinates 0 and 1 with x
    result = idcor(torch.from_numpy(x), torch.from_numpy(y), permutations=100, seed=0)
    assert 0.3 < result.idcor < 0.7
    assert result.p_value == pytest.approx(FLOOR_100)


def test_independent_sets_are_not_significant_for_a_fixed_seed():
    result = idcor(torch.from_numpy(uniform(1000, 4, seed=6)), torch.from_numpy(uniform(1000, 4, seed=7)), seed=0)
    assert result.p_value > 0.05


def test_independent_p_values_spread_over_seeds():
    p_values = [
        idcor(torch.from_numpy(uniform(400, 4, seed=10 + s)), torch.from_numpy(uniform(400, 4, seed=50 + s)), permutations=40, seed=s).p_value
        for s in range(6)
    ]
    assert max(p_values) > 0.3, p_values  # not all small: under independence p is uniform on [0, 1]
    assert sum(p < 0.05 for p in p_values) <= 2, p_values


def test_same_seed_same_null_and_other_seed_other_null():
    x, y = torch.from_numpy(uniform(150, 4, seed=8)), torch.from_numpy(uniform(150, 4, seed=9))
    first, again, other = (idcor(x, y, permutations=6, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(first.shuffled_ids, again.shuffled_ids)
    assert not np.allclose(first.shuffled_ids, other.shuffled_ids)
    assert first.id_joint == other.id_joint  # only the null depends on the seed


@pytest.mark.parametrize("permutations", [1, 7, 30])
def test_p_value_never_below_the_floor(permutations):
    x = uniform(300, 4, seed=12)
    result = idcor(torch.from_numpy(x), torch.from_numpy(np.sin(3 * x)), permutations=permutations, seed=0)
    assert 1 / (permutations + 1) <= result.p_value <= 1


def test_no_permutations_gives_no_p_value():
    result = idcor(torch.from_numpy(uniform(50, 4, seed=13)), torch.from_numpy(uniform(50, 4, seed=14)), permutations=0)
    assert result.p_value is None and result.shuffled_ids.shape == (0,)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "message"),
    [
        (torch.rand(10, 4), torch.rand(9, 4), {}, "same number of rows"),
        (torch.rand(2, 4), torch.rand(2, 4), {}, "at least 3 paired rows"),
        (torch.rand(10), torch.rand(10, 4), {}, r"expected two \(N, D\) arrays"),
        (torch.rand(10, 4), torch.rand(10, 4), {"permutations": -1}, "permutations >= 0"),
    ],
    ids=["mismatched-n", "two-rows", "one-dimensional", "negative-permutations"],
)
def test_bad_input_raises_clear_error(x, y, kwargs, message):
    with pytest.raises(ValueError, match=message):
        idcor(x, y, **kwargs)
