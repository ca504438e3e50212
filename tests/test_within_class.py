"""Within-class nulls: shuffles that keep every image in its class, and what they find on class-only data.

Class-only data: X and Y depend on each other only through the class (class centres shared, independent noise).
Within-class re-pairing leaves the paired cosine and SVCCA as they are, while the plain re-paired baselines fall
far below them (the plain comparison calls the class "image-level similarity"), and the within-class p-value of
IdCor is uniform (exchangeable rows inside each class): small in at most 2 of 10 seeds. Data paired inside the
classes (Y's noise a noisy copy of X's): the within-class tests find it in every seed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.metrics import (
    correlate,
    cosine_similarities,
    p_value_within_class,
    repaired_cosine,
    repaired_svcca,
    svcca,
    within_class_derangement,
    within_class_permutation,
    within_class_repaired_cosine,
    within_class_repaired_svcca,
)


def class_data(seed: int, paired: bool, classes: int = 8, per_class: int = 15, d: int = 5):
    """X = μ_c + noise; Y = μ_c + 1 + independent noise (paired=False) or + X's noise + 0.1·noise (paired=True)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    centres = 2 * rng.normal(size=(classes, d))
    noise_x = 0.5 * rng.normal(size=(len(labels), d))
    noise_y = noise_x + 0.1 * rng.normal(size=noise_x.shape) if paired else 0.5 * rng.normal(size=noise_x.shape)
    x, y = centres[labels] + noise_x, centres[labels] + 1 + noise_y
    return torch.from_numpy(x), torch.from_numpy(y), labels


def test_within_class_shuffles_keep_every_label_in_place():
    labels = torch.tensor([3, 1, 3, 2, 1, 1, 2, 3, 2, 2])
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        perm = within_class_permutation(labels, generator)
        assert torch.equal(labels[perm], labels)
        assert sorted(perm.tolist()) == list(range(10))
        derangement = within_class_derangement(labels, generator)
        assert torch.equal(labels[derangement], labels)
        assert not bool((derangement == torch.arange(10)).any())


def test_class_only_dependence_is_not_image_level():
    p_values = []
    for seed in range(10):
        x, y, labels = class_data(seed, paired=False)
        p_values.append(p_value_within_class(x, y, labels, permutations=20, seed=seed)["p_value"])
        paired_cosine = float(cosine_similarities(x, y).mean())
        within = within_class_repaired_cosine(x, y, labels, repairings=5, seed=seed)
        plain = repaired_cosine(x, y, repairings=5, seed=seed)
        assert within["mean"] == pytest.approx(paired_cosine, abs=0.05)
        assert plain["mean"] < paired_cosine - 0.2  # the plain baseline credits the class to the pairs
        paired_svcca = svcca(x, y)
        assert within_class_repaired_svcca(x, y, labels, repairings=5, seed=seed)["mean"] == pytest.approx(
            paired_svcca, abs=0.05
        )
        assert repaired_svcca(x, y, repairings=5, seed=seed)["mean"] < paired_svcca - 0.2
    assert sum(p < 0.05 for p in p_values) <= 2, p_values


def test_pairs_related_inside_classes_are_found():
    for seed in range(5):
        x, y, labels = class_data(seed, paired=True)
        assert p_value_within_class(x, y, labels, permutations=20, seed=seed)["p_value"] < 0.05
        paired_cosine = float(cosine_similarities(x, y).mean())
        assert within_class_repaired_cosine(x, y, labels, repairings=5, seed=seed)["mean"] < paired_cosine - 0.03
        assert within_class_repaired_svcca(x, y, labels, repairings=5, seed=seed)["mean"] < svcca(x, y) - 0.05


def test_p_value_within_class_equals_a_plain_loop():
    """Reference: recompute ID([X | Y[perm]]) from scratch for the same within-class permutations."""
    from core.metrics.idcor import idcor_preprocess, permutation_generator
    from core.metrics.twonn import twonn_id

    x, y, labels = class_data(3, paired=True, classes=3, per_class=8)
    result = p_value_within_class(x, y, labels, permutations=6, seed=5)
    px, py = idcor_preprocess(x), idcor_preprocess(y)
    generator = permutation_generator(5)
    classes = torch.from_numpy(labels)
    expected = [twonn_id(torch.cat([px, py[within_class_permutation(classes, generator)]], 1)) for _ in range(6)]
    np.testing.assert_allclose(result["shuffled_ids"], expected, rtol=1e-7)
    id_joint = twonn_id(torch.cat([px, py], 1))
    assert result["p_value"] == pytest.approx((sum(e < id_joint for e in expected) + 1) / 7)


def test_correlate_reports_the_within_class_keys():
    x, y, labels = class_data(0, paired=False)
    result = correlate(x, y, permutations=10, repairings=3, labels=labels)
    keys = {f"within_class_repaired_{m}_{s}" for m in ("cosine", "svcca") for s in ("mean", "std")}
    assert keys | {"p_value_within_class"} <= set(result)
    expected = within_class_repaired_cosine(x, y, labels, repairings=3, seed=0)
    assert result["within_class_repaired_cosine_mean"] == pytest.approx(expected["mean"], rel=1e-12)
    assert "p_value_within_class" not in correlate(x, y, permutations=10)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.arange(119) % 8, r"one label per pair, shape \(120,\)"),
        (np.zeros(120, dtype=int), "at least 2 classes"),
        (np.r_[np.zeros(119, dtype=int), 1], r"at least 2 pairs in every class, got 1 pair in class\(es\) \[1\]"),
        (np.arange(120) % 8 + 0.5, "integer class labels"),
        ([0, 1] * 60, "numpy array or torch tensor"),
    ],
    ids=["other-length", "one-class", "class-with-one-pair", "float-labels", "list"],
)
def test_bad_labels_are_one_line_errors(labels, message):
    x, y, _ = class_data(0, paired=False)
    with pytest.raises(ValueError, match=message) as err:
        correlate(x, y, permutations=3, labels=labels)
    assert "\n" not in str(err.value)
