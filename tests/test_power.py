"""IdCor's power curve: subsamples against a plain recomputation, and the pairs-needed estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.metrics import correlate, idcor, idcor_power_curve
from core.metrics.power import default_sizes, pairs_needed


def shared_pairs(n: int, seed: int, shared: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    common = rng.uniform(-1, 1, (n, shared))
    return (torch.from_numpy(np.c_[common, rng.uniform(-1, 1, (n, 4 - shared))]),
            torch.from_numpy(np.c_[common, rng.uniform(-1, 1, (n, 4 - shared))]))


def test_curve_shape_and_full_size_idcor():
    x, y = shared_pairs(120, 0, shared=3)
    curve = idcor_power_curve(x, y, repeats=2, permutations=20, seed=1)
    assert curve["sizes"] == [50, 64, 78, 92, 106, 120] == default_sizes(120)
    assert [len(v) for v in curve["idcor"]] == [2] * 6
    full = idcor(x, y, permutations=0).idcor
    assert curve["idcor"][-1] == pytest.approx([full, full], rel=1e-9)  # the whole set, in another order
    assert all(1 / 21 <= p <= 1 for ps in curve["p_values"] for p in ps)
    assert (curve["pairs_needed"], curve["pairs_needed_method"]) == (50, "observed")  # median p at its floor


def test_a_weaker_effect_is_extrapolated_beyond_the_set():
    """Two of four coordinates shared, 120 pairs, 20 permutations: median p 0.12 to 0.31, z rising with √m."""
    curve = idcor_power_curve(*shared_pairs(120, 0, shared=2), repeats=2, permutations=20, seed=1)
    assert curve["pairs_needed_method"] == "extrapolated"
    assert 120 < curve["pairs_needed"] < 1000
    assert curve["pairs_needed"] == math.ceil((1.6448536269514722 / curve["z_slope"]) ** 2)


def test_unrelated_sets_need_no_or_many_more_pairs():
    rng = np.random.default_rng(3)
    x, y = torch.from_numpy(rng.uniform(size=(100, 4))), torch.from_numpy(rng.uniform(size=(100, 4)))
    curve = idcor_power_curve(x, y, sizes=[50, 100], repeats=3, permutations=20, seed=0)
    assert curve["pairs_needed_method"] != "observed"
    assert curve["pairs_needed"] is None or curve["pairs_needed"] > 100


def test_pairs_needed_reads_the_curve_and_extrapolates_z():
    assert pairs_needed([50, 100, 200], [0.2, 0.01, 0.01], [1.0, 2.0, 3.0]) [:2] == (100, "observed")
    assert pairs_needed([50, 100, 200], [0.01, 0.2, 0.01], [1.0, 2.0, 3.0])[:2] == (200, "observed")
    # z = 0.1·√m exactly: 1.645 needs (1.645 / 0.1)² ≈ 271 pairs
    needed, method, slope = pairs_needed([100, 400], [0.2, 0.1], [1.0, 2.0])
    assert (method, slope) == ("extrapolated", pytest.approx(0.1))
    assert needed == math.ceil((1.6448536269514722 / 0.1) ** 2)
    assert pairs_needed([100], [0.6], [-0.5]) == (None, None, -0.05)


def test_correlate_power_and_bad_sizes():
    x, y = shared_pairs(60, 2)
    result = correlate(x, y, permutations=10, power=True)
    assert result["power"]["sizes"] == [50, 52, 54, 56, 58, 60]
    with pytest.raises(ValueError, match="sizes between 3 and n = 60"):
        idcor_power_curve(x, y, sizes=[10, 80])
