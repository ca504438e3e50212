"""SVCCA between two sets of paired rows, exactly as the published code computes it (METHOD §4).

The published code calls `1 - anatome.svcca_distance(x, y, accept_rate=0.99, backend='svd')`:
1. for each matrix separately: thin SVD *without centring*, keep the k leading right singular
   vectors with k = #{i : cumsum(s)_i / sum(s) < accept_rate}, project onto them (X·V[:, :k]);
2. centre both projections, orthonormalise each (thin SVD, keep U), and take the singular values
   of U1ᵀU2: the canonical correlations ρ;
3. SVCCA = Σρ / min(k1, k2).
Everything runs in float64 on the inputs' device. If either k is 0 (one direction carries
>= accept_rate of the singular-value mass) anatome divides by zero; here the value is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SvccaDetails:
    """SVCCA with what it was made of."""

    svcca: float  # Σρ / min(k1, k2); NaN when min(k1, k2) == 0
    k1: int  # singular directions kept for the first set
    k2: int  # singular directions kept for the second set
    correlations: Tensor  # (min(k1, k2),) canonical correlations ρ, descending, float64


def svd_reduction(x: Tensor, accept_rate: float = 0.99) -> Tensor:
    """(N, D) -> (N, k): X·V[:, :k], k = #{i : cumsum(s)_i / sum(s) < accept_rate}, no centring."""
    _, s, vh = torch.linalg.svd(x, full_matrices=False)  # s: (min(N, D),), vh: (min(N, D), D)
    ratio = s.abs().cumsum(dim=0) / s.abs().sum()
    k = int((ratio < accept_rate).sum())
    return x @ vh[:k].T  # (N, k)


def reduction_from_gram(gram: Tensor, accept_rate: float = 0.99) -> Tensor:
    """`svd_reduction` of the rows X whose Gram matrix G = X·Xᵀ (N, N) is given: (N, N) -> (N, k).

    X = U·S·Vᵀ gives X·V[:, :k] = U[:, :k]·S[:k] and G = U·S²·Uᵀ, so an (N, N) eigendecomposition replaces the
    SVD of an (N, D) matrix; for D much larger than N (3072 features, a few hundred rows) and many row subsets of
    one set (the SVCCA interval) it is far cheaper. Eigenvalues below N·eps·λ_max are rounding noise of a rank
    deficiency and count as 0 (their square roots, ~1e-8·s_max, would otherwise enter the cumulative sum).
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(gram.double())  # ascending, (N,), (N, N)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # descending
    tolerance = gram.shape[0] * torch.finfo(torch.float64).eps * eigenvalues[0].clamp_min(0)
    s = torch.where(eigenvalues > tolerance, eigenvalues, torch.zeros_like(eigenvalues)).sqrt()  # (N,)
    ratio = s.cumsum(dim=0) / s.sum()
    k = int((ratio < accept_rate).sum())
    return eigenvectors[:, :k] * s[:k]  # (N, k)


def canonical_correlations(x: Tensor, y: Tensor) -> Tensor:
    """(N, k1), (N, k2) -> (min(k1, k2),) singular values of U1ᵀU2 after centring (anatome's 'svd' backend)."""
    if min(x.shape[1], y.shape[1]) == 0:
        return x.new_zeros(0)
    u1 = torch.linalg.svd(x - x.mean(dim=0, keepdim=True), full_matrices=False)[0]  # (N, k1)
    u2 = torch.linalg.svd(y - y.mean(dim=0, keepdim=True), full_matrices=False)[0]  # (N, k2)
    return torch.linalg.svdvals(u1.T @ u2)  # (min(k1, k2),)


def check_paired_rows(a: Tensor, b: Tensor, accept_rate: float) -> tuple[Tensor, Tensor]:
    """Validate two (N, D) row sets and accept_rate; return both as float64 on a's device."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"expected two (N, D) arrays, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"expected the same number of rows (paired maps), got {a.shape[0]} and {b.shape[0]}")
    if not 0 < accept_rate <= 1:
        raise ValueError(f"expected 0 < accept_rate <= 1, got {accept_rate}")
    return a.double(), b.double().to(a.device)


def svcca_details(a: Tensor, b: Tensor, accept_rate: float = 0.99) -> SvccaDetails:
    """SVCCA of (N, D1) and (N, D2) rows with k1, k2 and the canonical correlations."""
    a, b = check_paired_rows(a, b, accept_rate)
    reduced_a, reduced_b = svd_reduction(a, accept_rate), svd_reduction(b, accept_rate)
    return details_from_reduced(reduced_a, reduced_b)


def details_from_reduced(reduced_a: Tensor, reduced_b: Tensor) -> SvccaDetails:
    """SVCCA from the two (N, k) SVD reductions (lets re-pairing reuse one reduction per set)."""
    k1, k2 = reduced_a.shape[1], reduced_b.shape[1]
    rho = canonical_correlations(reduced_a, reduced_b)
    value = float(rho.sum() / min(k1, k2)) if min(k1, k2) > 0 else float("nan")
    return SvccaDetails(svcca=value, k1=k1, k2=k2, correlations=rho)


def svcca(a: Tensor, b: Tensor, accept_rate: float = 0.99) -> float:
    """1 - anatome.svcca_distance(a, b, accept_rate, backend='svd') for (N, D1), (N, D2) rows."""
    return svcca_details(a, b, accept_rate).svcca
