"""IdCor: correlation of two paired data sets through intrinsic dimensions (Basile et al., ICLR 2025).

As in the paper's code (METHOD §4): preprocess each set on its own (standardise every feature
with the unbiased std + 1e-6, then unit-L2 rows); id_x = ID(X), id_y = ID(Y), id_joint =
ID([X | Y]); IdCor = (id_x + id_y - id_joint) / max(id_x, id_y). P-value by permutation: shuffle
the rows of Y, recompute ID([X | Y_shuffled]); p = (#{shuffled IDs < id_joint} + 1) / (P + 1).

Fast permutation test (same numbers as the published loop, far fewer flops): squared Euclidean
distances of concatenated features add up, D²([X | Y]) = D²(X) + D²(Y), and shuffling Y's rows
by `perm` only re-indexes D²(Y) -> D²(Y)[perm][:, perm]. So each permutation costs one (N, N)
gather and a top-2 search instead of a new N×N×(Dx+Dy) distance computation. Runs on the data's
device; permutations come from a CPU torch.Generator seeded with `seed`, so they are the same on
every device.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.metrics.twonn import _twonn_id_in_place, squared_distances, twonn_id_from_sq_distances

STD_EPS = 1e-6  # added to the unbiased std before dividing (METHOD §4)


@dataclass
class IdCorResult:
    """IdCor of one pair of data sets, with its permutation test."""

    idcor: float  # (id_x + id_y - id_joint) / max(id_x, id_y)
    p_value: float | None  # (#{shuffled_ids < id_joint} + 1) / (permutations + 1); None without permutations
    id_x: float  # TwoNN ID of the preprocessed X
    id_y: float  # TwoNN ID of the preprocessed Y
    id_joint: float  # TwoNN ID of [X | Y]
    shuffled_ids: np.ndarray  # (permutations,) ID of [X | Y[perm]] for each permutation, in order
    n: int  # number of paired rows
    permutations: int  # number of permutations in the test


def idcor_preprocess(x: Tensor) -> Tensor:
    """(N, D) -> (N, D) float64: each feature standardised (unbiased std + 1e-6), then rows scaled to unit L2.

    A one-feature set is only standardised: normalising it would map every row to ±1 (the
    published code skips it likewise). Zero rows stay zero (F.normalize's eps).
    """
    if x.ndim != 2:
        raise ValueError(f"expected an (N, D) array, got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"expected at least 2 rows to standardise, got {x.shape[0]}")
    x = x.double()
    x = (x - x.mean(dim=0)) / (x.std(dim=0) + STD_EPS)
    return F.normalize(x, dim=1) if x.shape[1] > 1 else x


def permutation_generator(seed: int) -> torch.Generator:
    """The CPU generator the permutation test draws from (also used by tests and benchmarks)."""
    return torch.Generator().manual_seed(seed)


def null_idcor(id_x: float, id_y: float, shuffled_ids: np.ndarray) -> np.ndarray:
    """IdCor of each shuffled pairing: (id_x + id_y - shuffled_id) / max(id_x, id_y), shape (permutations,).

    Shuffling Y's rows leaves ID(X) and ID(Y) as they are, so the permutation test's joint IDs give the IdCor
    that unrelated pairs reach: the baseline the observed IdCor has to beat. It is not 0: TwoNN is biased, upwards
    at a few hundred points here, downwards at about a hundred (PGD 1/255 in docs/RESULTS.md).
    """
    return (id_x + id_y - np.asarray(shuffled_ids, dtype=np.float64)) / max(id_x, id_y)


def idcor_sq_distances(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Squared distances of the preprocessed rows of paired x (N, Dx) and y (N, Dy): two (N, N) float64 matrices.

    D²([X | Y]) is their sum; every resampling of IdCor (permutations, subsamples) re-indexes these two matrices.
    """
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"expected two (N, D) arrays, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"expected the same number of rows (paired data), got {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] < 3:
        raise ValueError(f"expected at least 3 paired rows for IdCor, got {x.shape[0]}")
    return squared_distances(idcor_preprocess(x)), squared_distances(idcor_preprocess(y.to(x.device)))


def reindexed(d2: Tensor, rows: Tensor) -> Tensor:
    """D²[rows][:, rows] as a fresh (len(rows), len(rows)) tensor: the distances of the selected / reordered points."""
    return d2.index_select(0, rows).index_select(1, rows)


def shuffled_joint_ids(d2_x: Tensor, d2_y: Tensor, perms: Iterable[Tensor]) -> np.ndarray:
    """ID of [X | Y[perm]] for each perm (N,): D²(X) + D²(Y)[perm][:, perm], no distance recomputed."""
    n = d2_x.shape[0]
    ids = []
    for perm in perms:
        perm = perm.to(d2_x.device)  # (N,)
        rows = d2_y.index_select(0, perm)  # (N, N) = D²(Y)[perm]: contiguous row copies
        d2_joint = torch.gather(rows, 1, perm.expand(n, n))  # (N, N) = D²(Y)[perm][:, perm], a fresh tensor
        d2_joint += d2_x
        ids.append(_twonn_id_in_place(d2_joint))
    return np.asarray(ids, dtype=np.float64)


def permutation_p_value(shuffled_ids: np.ndarray, id_joint: float) -> float | None:
    """(#{shuffled IDs < id_joint} + 1) / (P + 1); None without shuffles."""
    count = len(shuffled_ids)
    return float(((np.asarray(shuffled_ids) < id_joint).sum() + 1) / (count + 1)) if count else None


def idcor_from_ids(id_x: float, id_y: float, id_joint: float) -> float:
    """(id_x + id_y - id_joint) / max(id_x, id_y)."""
    return (id_x + id_y - id_joint) / max(id_x, id_y)


def idcor(x: Tensor, y: Tensor, permutations: int = 100, seed: int = 0) -> IdCorResult:
    """IdCor of paired rows x (N, Dx) and y (N, Dy) with a `permutations`-fold permutation test."""
    if permutations < 0:
        raise ValueError(f"expected permutations >= 0, got {permutations}")
    d2_x, d2_y = idcor_sq_distances(x, y)  # (N, N) each
    n = x.shape[0]
    id_x = twonn_id_from_sq_distances(d2_x)
    id_y = twonn_id_from_sq_distances(d2_y)
    id_joint = twonn_id_from_sq_distances(d2_x + d2_y)
    generator = permutation_generator(seed)
    perms = (torch.randperm(n, generator=generator) for _ in range(permutations))
    shuffled = shuffled_joint_ids(d2_x, d2_y, perms)
    return IdCorResult(
        idcor=idcor_from_ids(id_x, id_y, id_joint),
        p_value=permutation_p_value(shuffled, id_joint),
        id_x=id_x,
        id_y=id_y,
        id_joint=id_joint,
        shuffled_ids=shuffled,
        n=n,
        permutations=permutations,
    )
