"""Bootstrap / half-sampling intervals: coverage of a known population value, width against the normal approximation.

Each coverage test draws 50 synthetic data sets with fixed seeds and counts how many 95 % intervals contain the
population value; at least 45 must (a correct 95 % interval misses 45 of 50 with probability ~4 %; the seeds are
fixed, so the verdict does not change between runs). Population values: the mean cosine and SVCCA have closed forms;
IdCor's TwoNN is biased at small N, so its value is the estimator's mean at this N over 150 independent data sets
(what the interval is documented to cover).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.metrics import correlate, cosine_similarities, idcor, svcca
from core.metrics.bootstrap import (
    _subsamples,
    cosine_mean_interval,
    idcor_interval,
    subsample_interval,
    subsample_size,
    svcca_interval,
)

DATA_SETS = 50
MIN_COVERED = 45  # of 50 at the nominal 95 %


def cosine_pairs(n: int, seed: int, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """a uniform on the sphere, b at angle θ ~ U(0, π/2) from a: per-pair cosine cos θ, E = 2/π."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    u = rng.normal(size=(n, d))
    u -= (u * a).sum(1, keepdims=True) * a
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    theta = rng.uniform(0, math.pi / 2, size=(n, 1))
    return torch.from_numpy(a), torch.from_numpy(np.cos(theta) * a + np.sin(theta) * u)


COSINE_MEAN = 2 / math.pi
COSINE_VAR = 0.5 - 4 / math.pi**2  # E[cos² θ] − E[cos θ]²


def cca_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Column scales (3, 2, 1, 0.001): SVCCA keeps 2 directions per set; their canonical correlations are 0.8, 0.5."""
    rng = np.random.default_rng(seed)
    scales, rho = np.array([3, 2, 1, 0.001]), np.array([0.8, 0.5, 0, 0])
    g, h = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
    return torch.from_numpy(g * scales), torch.from_numpy((rho * g + np.sqrt(1 - rho**2) * h) * scales)


SVCCA_VALUE = (0.8 + 0.5) / 2


def shared_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """X, Y uniform in 4-D sharing two coordinates (METHOD §4's IdCor ≈ 0.5 case)."""
    rng = np.random.default_rng(seed)
    shared = rng.uniform(-1, 1, (n, 2))
    x = np.c_[shared, rng.uniform(-1, 1, (n, 2))]
    y = np.c_[shared, rng.uniform(-1, 1, (n, 2))]
    return torch.from_numpy(x), torch.from_numpy(y)


def test_cosine_interval_covers_two_over_pi_and_matches_the_normal_width():
    n, covered, widths = 100, 0, []
    for seed in range(DATA_SETS):
        a, b = cosine_pairs(n, seed)
        interval = cosine_mean_interval(cosine_similarities(a, b), resamples=200, seed=seed)
        covered += interval.low <= COSINE_MEAN <= interval.high
        widths.append(interval.high - interval.low)
    assert covered >= MIN_COVERED
    normal_width = 2 * 1.959964 * math.sqrt(COSINE_VAR / n)
    assert np.median(widths) == pytest.approx(normal_width, rel=0.1)


def test_svcca_interval_covers_the_canonical_correlations_mean():
    n, covered, widths = 200, 0, []
    for seed in range(DATA_SETS):
        interval = svcca_interval(*cca_pairs(n, seed), resamples=60, seed=seed)
        covered += interval.low <= SVCCA_VALUE <= interval.high
        widths.append(interval.high - interval.low)
    assert covered >= MIN_COVERED
    spread = np.std([svcca(*cca_pairs(n, 10_000 + s)) for s in range(100)])  # the true sampling std at n
    assert np.median(widths) == pytest.approx(2 * 1.959964 * spread, rel=0.2)


def test_idcor_interval_covers_the_estimators_mean_at_this_n():
    n = 120
    population = np.array([idcor(*shared_pairs(n, 10_000 + s), permutations=0).idcor for s in range(150)])
    target = population.mean()
    covered, widths = 0, []
    for seed in range(DATA_SETS):
        interval = idcor_interval(*shared_pairs(n, seed), resamples=60, seed=seed)
        covered += interval.low <= target <= interval.high
        widths.append(interval.high - interval.low)
    assert covered >= MIN_COVERED
    # measured 0.90 against 0.75: half-samples of 60 points are a little noisier than the root-n rule assumes,
    # so the interval errs wide (conservative), never narrow
    ratio = np.median(widths) / (2 * 1.959964 * population.std())
    assert 0.9 <= ratio <= 1.4


def test_reindexed_idcor_replicates_track_the_recomputed_ones():
    """Reusing the full set's preprocessing moves the endpoints by a fraction of the width, not more."""
    x, y = shared_pairs(120, 0)
    interval = idcor_interval(x, y, resamples=60, seed=4)
    recomputed = np.array([idcor(x[r], y[r], permutations=0).idcor for r in _subsamples(120, 60, 60, 4)])
    reference = subsample_interval(idcor(x, y, permutations=0).idcor, recomputed, 120, 60, 0.95)
    assert np.corrcoef(interval.replicates, recomputed)[0, 1] > 0.9
    width = reference.high - reference.low
    assert abs(interval.low - reference.low) < 0.25 * width and abs(interval.high - reference.high) < 0.25 * width


def test_svcca_replicates_equal_direct_svcca_of_the_subsample():
    """The Gram route (D > m) gives the SVCCA of the subsample itself."""
    rng = np.random.default_rng(2)
    a = torch.from_numpy(rng.uniform(size=(30, 80)) * (rng.uniform(size=(30, 80)) < 0.3))
    b = a + 0.4 * torch.from_numpy(rng.normal(size=(30, 80)))
    interval = svcca_interval(a, b, resamples=5, seed=1)
    direct = [svcca(a[r], b[r]) for r in _subsamples(30, 15, 5, 1)]
    np.testing.assert_allclose(interval.replicates, direct, rtol=1e-9, atol=1e-12)


def test_subsample_interval_rescales_by_the_finite_population_factor():
    replicates = np.array([-1.0, 0.0, 1.0] * 10)
    at_half = subsample_interval(0.5, replicates, 100, 50, 0.95)
    at_quarter = subsample_interval(0.5, replicates, 100, 25, 0.95)
    assert (at_half.low, at_half.high) == pytest.approx((-0.5, 1.5))
    assert at_quarter.high - 0.5 == pytest.approx(math.sqrt(25 / 75))


def test_correlate_adds_intervals_only_when_asked_and_is_seeded():
    a, b = shared_pairs(60, 1)
    plain = correlate(a, b, permutations=5)
    assert not {"cosine_mean_ci", "svcca_ci", "idcor_ci", "bootstrap"} & set(plain)
    first = correlate(a, b, permutations=5, bootstrap=30, seed=2)
    again = correlate(a, b, permutations=5, bootstrap=30, seed=2)
    assert first["bootstrap_subsample"] == 30 and first["bootstrap"] == 30
    for key, value in (("cosine_mean_ci", "cosine_mean"), ("svcca_ci", "svcca"), ("idcor_ci", "idcor")):
        low, high = first[key]
        assert low <= first[value] <= high, key
        assert again[key] == first[key]
    expected = cosine_mean_interval(cosine_similarities(a, b), resamples=30, seed=2)
    assert first["cosine_mean_ci"] == pytest.approx([expected.low, expected.high], rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cosine_mean_interval(torch.ones(5), resamples=1), "at least 2 bootstrap resamples"),
        (lambda: subsample_size(5), "at least 4 pairs"),
        (lambda: correlate(np.ones((5, 3)), np.ones((5, 3)), bootstrap=-1), "bootstrap >= 0"),
    ],
    ids=["one-resample", "too-few-pairs", "negative-bootstrap"],
)
def test_bad_bootstrap_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
