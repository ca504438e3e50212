"""Within-class nulls: how much of a paired similarity is the class, and how much the image?

Essential and adversarial maps of images of one class share that class's structure. The plain baselines
(IdCor's permutation test, the re-paired cosine and SVCCA) pair an image with one of any class, so a pair
set that is similar only through its classes still looks "significant". Here every shuffle stays inside a
true class: the permutation test shuffles Y's rows only among images of the same label
(`p_value_within_class`), and the re-pairings are derangements inside each class (each image gets the map
of another image of its own class). What the true pairing beats these by belongs to the image itself.

Labels are (N,) integers, one per pair; every class needs at least 2 pairs (a lone pair cannot be
re-paired, and would stay in place in every shuffle) and there must be at least 2 classes (with one class
the within-class test is the plain test).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from core.metrics.idcor import idcor_sq_distances, permutation_generator, permutation_p_value, shuffled_joint_ids
from core.metrics.repairing import check_repairings, cosines_under_pairings, random_derangement, svcca_under_pairings
from core.metrics.twonn import twonn_id_from_sq_distances


def check_labels(labels: object, n: int) -> Tensor:
    """(N,) integer class labels as a CPU int64 tensor, or a one-line ValueError saying what is wrong."""
    if isinstance(labels, Tensor):
        labels = labels.detach().cpu().numpy()
    if not isinstance(labels, np.ndarray):
        raise ValueError(f"expected labels as a numpy array or torch tensor, got {type(labels).__name__}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"expected integer class labels, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"expected one label per pair, shape ({n},), got shape {labels.shape}")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"expected at least 2 classes for a within-class null, got 1 (label {classes[0]})")
    if counts.min() < 2:
        lone = classes[counts < 2]
        raise ValueError(f"expected at least 2 pairs in every class, got 1 pair in class(es) {lone[:10].tolist()}")
    return torch.from_numpy(labels.astype(np.int64))


def _class_members(labels: Tensor) -> list[Tensor]:
    """Positions of every class, [(n_c,) int64], in label order."""
    return [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]


def within_class_permutation(labels: Tensor, generator: torch.Generator) -> Tensor:
    """(N,) int64 permutation that moves every row only among rows of its own class: labels[perm] == labels."""
    perm = torch.arange(labels.numel())
    for members in _class_members(labels):
        perm[members] = members[torch.randperm(members.numel(), generator=generator)]
    return perm


def within_class_derangement(labels: Tensor, generator: torch.Generator) -> Tensor:
    """(N,) int64: a uniform random derangement inside every class (no fixed point, labels[perm] == labels)."""
    perm = torch.arange(labels.numel())
    for members in _class_members(labels):
        perm[members] = members[random_derangement(members.numel(), generator)]
    return perm


def p_value_within_class(x: Tensor, y: Tensor, labels: object, permutations: int = 100, seed: int = 0) -> dict:
    """IdCor's permutation test with Y's rows shuffled only inside each class: {"p_value", "shuffled_ids"}.

    p = (#{ID([X | Y[perm]]) < ID([X | Y])} + 1) / (P + 1) over `permutations` within-class permutations; a
    small p says the pairs share more than their class does.
    """
    if permutations < 1:
        raise ValueError(f"expected permutations >= 1 for a within-class p-value, got {permutations}")
    classes = check_labels(labels, x.shape[0])
    d2_x, d2_y = idcor_sq_distances(x, y)  # (N, N) each
    id_joint = twonn_id_from_sq_distances(d2_x + d2_y)
    generator = permutation_generator(seed)
    shuffled = shuffled_joint_ids(d2_x, d2_y, (within_class_permutation(classes, generator) for _ in range(permutations)))
    return {"p_value": permutation_p_value(shuffled, id_joint), "shuffled_ids": shuffled}


def within_class_repaired_cosine(a: Tensor, b: Tensor, labels: object, repairings: int = 10, seed: int = 0) -> dict:
    """Cosines of a[i] vs b[perm[i]] over `repairings` within-class derangements (the dict of `repaired_cosine`)."""
    check_repairings(repairings)
    classes = check_labels(labels, a.shape[0])
    generator = torch.Generator().manual_seed(seed)
    return cosines_under_pairings(a, b, (within_class_derangement(classes, generator) for _ in range(repairings)))


def within_class_repaired_svcca(
    a: Tensor, b: Tensor, labels: object, repairings: int = 10, seed: int = 0, accept_rate: float = 0.99
) -> dict:
    """SVCCA of a vs b[perm] over `repairings` within-class derangements (the dict of `repaired_svcca`)."""
    check_repairings(repairings)
    classes = check_labels(labels, a.shape[0])
    generator = torch.Generator().manual_seed(seed)
    pairings = (within_class_derangement(classes, generator) for _ in range(repairings))
    return svcca_under_pairings(a, b, pairings, accept_rate)
