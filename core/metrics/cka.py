"""Linear CKA (Kornblith et al. 2019, "Similarity of neural network representations revisited").

With column-centred X (N, D1) and Y (N, D2), linear CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F). The same number
from the centred Gram matrices K = X·Xᵀ and L = Y·Yᵀ (N, N): ⟨K, L⟩_F / (‖K‖_F · ‖L‖_F), since ‖YᵀX‖²_F =
tr(K·L). The Gram form costs N²·(D1 + D2) and lets re-pairing re-index L (rows of Y permuted by `perm` give
L[perm][:, perm], and centring commutes with permuting rows), so it is used throughout; with N ≫ D the
feature form would be cheaper, but map sets have a few hundred rows of 3072 features.

Unlike SVCCA, CKA has no per-set SVD cut-off: it is invariant to orthogonal transforms and isotropic scaling
of either set, not to arbitrary invertible linear maps, and it weights directions by their variance. Runs in
float64 on the inputs' device.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from core.metrics.repairing import check_repairings, random_derangement, spread_of


def centred_gram(x: Tensor) -> Tensor:
    """(N, D) -> (N, N) float64 Gram matrix of the column-centred rows."""
    if x.ndim != 2:
        raise ValueError(f"expected an (N, D) array, got shape {tuple(x.shape)}")
    centred = x.double() - x.double().mean(dim=0, keepdim=True)  # (N, D)
    return centred @ centred.T  # (N, N)


def cka_from_grams(k: Tensor, l: Tensor) -> float:  # noqa: E741 (the paper's letters)
    """⟨K, L⟩_F / (‖K‖_F · ‖L‖_F) of two centred (N, N) Gram matrices; NaN when either set is constant."""
    denominator = float(torch.linalg.matrix_norm(k) * torch.linalg.matrix_norm(l))
    return float((k * l).sum()) / denominator if denominator > 0 else float("nan")


def linear_cka(a: Tensor, b: Tensor) -> float:
    """Linear CKA of paired rows a (N, D1) and b (N, D2); the widths may differ. NaN when a set is constant."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected two (N, D) arrays with the same N, got {tuple(a.shape)} and {tuple(b.shape)}")
    return cka_from_grams(centred_gram(a), centred_gram(b.to(a.device)))


def cka_under_pairings(a: Tensor, b: Tensor, pairings: Iterable[Tensor]) -> dict:
    """CKA of a vs b[perm] for each perm (N,): {"values", "mean", "std" (population), "repairings"}."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected two (N, D) arrays with the same N, got {tuple(a.shape)} and {tuple(b.shape)}")
    k, l = centred_gram(a), centred_gram(b.to(a.device))  # noqa: E741
    values = []
    for perm in pairings:
        perm = perm.to(l.device)
        values.append(cka_from_grams(k, l.index_select(0, perm).index_select(1, perm)))
    return spread_of(values)


def repaired_cka(a: Tensor, b: Tensor, repairings: int = 10, seed: int = 0) -> dict:
    """CKA of a vs b[perm] over `repairings` random derangements (the re-paired baseline, as for SVCCA)."""
    check_repairings(repairings)
    generator = torch.Generator().manual_seed(seed)
    return cka_under_pairings(a, b, (random_derangement(a.shape[0], generator) for _ in range(repairings)))
