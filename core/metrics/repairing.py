"""The re-paired baseline: how similar are maps of *different* images?

Essential and adversarial maps all share structure (the zero frequency, low frequencies, the
sparsity penalty), so cosine and SVCCA are far from 0 even for unrelated pairs. Pairing each
essential map with the adversarial map of another image (a derangement: no image keeps its own
partner) and recomputing the metric gives the similarity that all maps share; only the excess
of the true pairing over this baseline belongs to the pair.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from core.metrics.cosine import cosine_similarities, cosine_summary
from core.metrics.svcca import check_paired_rows, details_from_reduced, svd_reduction


def random_derangement(n: int, generator: torch.Generator) -> Tensor:
    """A uniformly random permutation of range(n) with no fixed point, (n,) int64 on the CPU.

    Rejection sampling: a random permutation is a derangement with probability ≈ 1/e, so about
    2.7 draws are needed on average, and the result is uniform over all derangements.
    """
    if n < 2:
        raise ValueError(f"expected n >= 2 (a single item cannot be re-paired), got {n}")
    identity = torch.arange(n)
    while True:
        perm = torch.randperm(n, generator=generator)
        if not bool((perm == identity).any()):
            return perm


def check_repairings(repairings: int) -> None:
    if repairings < 1:
        raise ValueError(f"expected repairings >= 1, got {repairings}")


def repaired_cosine(a: Tensor, b: Tensor, repairings: int = 10, seed: int = 0) -> dict:
    """Cosines of a[i] vs b[perm[i]] over `repairings` derangements of (N, D) rows.

    Returns {"values": (repairings, N) float64 tensor, "mean", "std" (population std over all
    values, comparable to the paired cosine std), "means": per-derangement means, "repairings"}.
    """
    check_repairings(repairings)
    generator = torch.Generator().manual_seed(seed)
    return cosines_under_pairings(a, b, (random_derangement(a.shape[0], generator) for _ in range(repairings)))


def cosines_under_pairings(a: Tensor, b: Tensor, pairings: Iterable[Tensor]) -> dict:
    """Cosines of a[i] vs b[perm[i]] for each perm (N,) in pairings: the dict `repaired_cosine` documents."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"expected two (N, D) arrays of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    values = torch.stack([cosine_similarities(a, b[perm.to(b.device)]) for perm in pairings])  # (repairings, N)
    mean, std = cosine_summary(values.flatten())
    return {"values": values, "mean": mean, "std": std, "means": values.mean(dim=1).tolist(), "repairings": len(values)}


def repaired_svcca(a: Tensor, b: Tensor, repairings: int = 10, seed: int = 0, accept_rate: float = 0.99) -> dict:
    """SVCCA of a vs b[perm] over `repairings` derangements: {"values", "mean", "std" (population), "repairings"}.

    The SVD reduction of b[perm] is the reduction of b with its rows permuted (the right
    singular vectors do not depend on row order), so each set is reduced once.
    """
    check_repairings(repairings)
    generator = torch.Generator().manual_seed(seed)
    pairings = (random_derangement(a.shape[0], generator) for _ in range(repairings))
    return svcca_under_pairings(a, b, pairings, accept_rate)


def svcca_under_pairings(a: Tensor, b: Tensor, pairings: Iterable[Tensor], accept_rate: float = 0.99) -> dict:
    """SVCCA of a vs b[perm] for each perm (N,) in pairings: the dict `repaired_svcca` documents."""
    a, b = check_paired_rows(a, b, accept_rate)
    reduced_a, reduced_b = svd_reduction(a, accept_rate), svd_reduction(b, accept_rate)  # (N, k1), (N, k2)
    values = [details_from_reduced(reduced_a, reduced_b[perm.to(b.device)]).svcca for perm in pairings]
    return spread_of(values)


def spread_of(values: list[float]) -> dict:
    """{"values", "mean", "std" (population), "repairings"} of one metric over several re-pairings."""
    spread = torch.tensor(values, dtype=torch.float64)
    return {
        "values": values,
        "mean": float(spread.mean()),
        "std": float(spread.std(correction=0)),
        "repairings": len(values),
    }
