"""The non-redundant half of centred Fourier maps: each Hermitian pair of frequencies once.

The spectrum of a real image satisfies F(−k) = conj(F(k)), so a map learnt on it behaves alike at k and −k
and M(k) ≈ M(−k): about half of the 3072 features of a CIFAR-10 map repeat the other half, and metrics
counting features (SVCCA's SVD cut-off, IdCor's distances, cosine) count that half twice. Keeping one
frequency of each pair (and the self-conjugate ones, k ≡ −k, once) removes the repetition.

Maps are stored fftshift-ed (METHOD §1): the shifted index i holds frequency i − ⌊H/2⌋, so the partner of
row i is (2·⌊H/2⌋ − i) mod H (odd H: H − 1 − i; even H: (H − i) mod H), and likewise for columns. Of each
pair the position with the smaller flat index i·W + j is kept. Channels are independent (one map per colour),
so every channel keeps the same positions. The function takes the maps and returns the kept columns, so a
per-basis selection can replace it without changing its callers.
"""

from __future__ import annotations

import torch
from torch import Tensor


def hermitian_partner_index(size: int) -> Tensor:
    """(size,) int64: the fftshift-ed index of frequency −k for every fftshift-ed index of frequency k."""
    if size < 1:
        raise ValueError(f"expected a size >= 1, got {size}")
    return (2 * (size // 2) - torch.arange(size)) % size


def hermitian_representatives(height: int, width: int) -> Tensor:
    """(H, W) bool: True at one position of each pair {k, −k} of an fftshift-ed map (self-conjugate ones too)."""
    rows, cols = hermitian_partner_index(height), hermitian_partner_index(width)
    flat = torch.arange(height * width).reshape(height, width)  # (H, W) flat index i·W + j
    partner_flat = rows[:, None] * width + cols[None, :]  # (H, W) flat index of the partner
    return flat <= partner_flat


def nonredundant_coefficients(maps: Tensor) -> Tensor:
    """(N, C, H, W) fftshift-ed maps -> (N, C·K): the kept positions of every channel, in C, H, W order.

    K = (H·W + s) / 2, s = the number of self-conjugate frequencies (4 for even H and W: 514 of 1024 at 32×32).
    """
    if maps.ndim != 4:
        raise ValueError(f"expected maps of shape (N, C, H, W) for the half spectrum, got shape {tuple(maps.shape)}")
    keep = hermitian_representatives(*maps.shape[-2:]).to(maps.device)  # (H, W)
    return maps[:, :, keep].reshape(maps.shape[0], -1)  # (N, C, K) -> (N, C·K)
