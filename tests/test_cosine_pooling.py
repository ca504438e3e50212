"""Cosine similarity, pooling, flattening and the re-paired baseline, against numpy and plain loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.metrics import (
    METRICS,
    correlate,
    cosine_similarities,
    cosine_summary,
    flatten_rows,
    pool_maps,
    random_derangement,
    repaired_cosine,
    repaired_svcca,
    svcca,
)


def test_cosine_matches_numpy_per_pair():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 17)), rng.normal(size=(50, 17))
    expected = [float(a[i] @ b[i] / (np.linalg.norm(a[i]) * np.linalg.norm(b[i]))) for i in range(50)]
    got = cosine_similarities(torch.from_numpy(a), torch.from_numpy(b))
    assert got.dtype == torch.float64 and got.shape == (50,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_cosine_of_zero_rows_is_zero():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    assert cosine_similarities(a, b).tolist() == [0.0, 0.0, 0.0, pytest.approx(1.0)]


def test_cosine_summary_uses_population_std():
    values = torch.tensor([0.1, 0.5, 0.9, 0.3])
    mean, std = cosine_summary(values)
    assert mean == pytest.approx(float(np.mean(values.numpy())), rel=1e-7)
    assert std == pytest.approx(float(np.std(values.numpy(), ddof=0)), rel=1e-6)
    assert std != pytest.approx(float(np.std(values.numpy(), ddof=1)), rel=1e-3)


def test_cosine_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        cosine_similarities(torch.ones(4, 3), torch.ones(4, 2))


@pytest.mark.parametrize(("mode", "reduce"), [("avg", np.mean), ("max", np.max)], ids=["avg", "max"])
def test_pooling_224_to_32_is_kernel_7_blocks(mode, reduce):
    maps = np.random.default_rng(1).uniform(size=(2, 3, 224, 224))
    expected = reduce(maps.reshape(2, 3, 32, 7, 32, 7), axis=(3, 5))  # non-overlapping 7×7 blocks
    pooled = pool_maps(torch.from_numpy(maps), 32, mode)
    assert pooled.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-12)


def test_pooling_is_identity_at_target_size():
    maps = torch.rand(3, 3, 32, 32)
    assert pool_maps(maps, 32, "max") is maps


@pytest.mark.parametrize(
    ("maps", "kwargs", "message"),
    [
        (torch.rand(2, 3, 16, 16), {}, "at least 32x32"),
        (torch.rand(2, 3, 64, 64), {"mode": "median"}, "pool mode"),
        (torch.rand(2, 64, 64), {}, r"\(N, C, H, W\)"),
    ],
    ids=["too-small", "unknown-mode", "three-dimensional"],
)
def test_pooling_bad_input(maps, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pool_maps(maps, **kwargs)


def test_flatten_rows_keeps_channel_height_width_order():
    maps = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert torch.equal(flatten_rows(maps)[1], maps[1].flatten())
    assert flatten_rows(torch.ones(6, 7)).shape == (6, 7)
    with pytest.raises(ValueError, match=r"\(N, D\) or \(N, C, H, W\)"):
        flatten_rows(torch.ones(2, 3, 4))


def test_random_derangement_has_no_fixed_point_and_is_reproducible():
    for n in (2, 3, 10, 500):
        perm = random_derangement(n, torch.Generator().manual_seed(n))
        assert sorted(perm.tolist()) == list(range(n))
        assert all(perm[i] != i for i in range(n))
    assert torch.equal(random_derangement(50, torch.Generator().manual_seed(7)), random_derangement(50, torch.Generator().manual_seed(7)))
    with pytest.raises(ValueError, match="n >= 2"):
        random_derangement(1, torch.Generator())


def test_random_derangement_reaches_every_derangement_of_three():
    generator = torch.Generator().manual_seed(0)
    seen = {tuple(random_derangement(3, generator).tolist()) for _ in range(60)}
    assert seen == {(1, 2, 0), (2, 0, 1)}  # the only two derangements of 3 items


def test_repaired_cosine_matches_a_plain_loop():
    rng = np.random.default_rng(2)
    a, b = torch.from_numpy(rng.normal(size=(20, 6))), torch.from_numpy(rng.normal(size=(20, 6)))
    result = repaired_cosine(a, b, repairings=4, seed=3)
    generator = torch.Generator().manual_seed(3)
    values = []
    for _ in range(4):
        perm = random_derangement(20, generator)
        values += [float(a[i] @ b[perm[i]] / (a[i].norm() * b[perm[i]].norm())) for i in range(20)]
    assert result["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert result["std"] == pytest.approx(np.std(values), rel=1e-12)
    assert len(result["means"]) == 4


def test_repaired_svcca_equals_svcca_of_explicitly_reordered_rows():
    rng = np.random.default_rng(4)
    a = torch.from_numpy(rng.normal(size=(120, 8)) @ np.diag(np.arange(1.0, 9.0)))
    b = a + torch.from_numpy(rng.normal(size=(120, 8)))
    result = repaired_svcca(a, b, repairings=3, seed=5)
    generator = torch.Generator().manual_seed(5)
    expected = [svcca(a, b[random_derangement(120, generator)]) for _ in range(3)]
    np.testing.assert_allclose(result["values"], expected, rtol=1e-9)
    assert result["std"] == pytest.approx(np.std(expected), rel=1e-9, abs=1e-12)
    assert result["mean"] < svcca(a, b)  # the true pairing shares more than a random one


def test_repaired_baseline_is_high_for_maps_that_share_a_common_pattern():
    # every map = a common pattern + its own part; the re-paired cosine keeps the common part only
    rng = np.random.default_rng(6)
    common = rng.uniform(size=64)
    own = rng.normal(size=(200, 64))
    a = torch.from_numpy(common + 0.3 * own)
    b = torch.from_numpy(common + 0.3 * (own + 0.5 * rng.normal(size=(200, 64))))
    result = correlate(a, b, permutations=0, repairings=5)
    assert result["repaired_cosine_mean"] > 0.5  # shared by all maps
    assert result["cosine_mean"] > result["repaired_cosine_mean"] + 0.1  # the pair shares more


def test_metric_registry_names_the_three_metrics_and_their_result_keys():
    result = correlate(torch.rand(10, 5, dtype=torch.float64), torch.rand(10, 5, dtype=torch.float64), permutations=3)
    assert sorted(METRICS) == ["cosine", "idcor", "svcca"]
    for name, spec in METRICS.items():
        assert spec.name == name and spec.description
        assert spec.result_key in result
