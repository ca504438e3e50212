"""Orthonormal 2-D DCT-II masks: x_F = IDCT(M ⊙ DCT(x)) per channel, coefficient (0, 0) (the mean) in the corner.

DCT(x) = D_H · x · D_Wᵀ with the orthonormal DCT-II matrix D_N[k, n] = s_k · cos(π (2n + 1) k / 2N),
s_0 = √(1/N), s_k = √(2/N) (scipy.fft.dctn(norm="ortho")); the inverse is D_Hᵀ · c · D_W. Real and orthonormal:
energy is kept, no coefficient repeats another, and masking one coefficient changes that one alone.
M = 1 gives the image back, M = 0 the zero image. Row index k_y (vertical) and column index k_x (horizontal)
count half cycles per image; natural and display order are the same. Any size from 1 × 1.
Matrix products: H² W + H W² multiply-adds per channel, cheap at 32 × 32 and fine at 224 × 224.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from core.bases.base import Basis
from core.bases.layout import MapLayout


@lru_cache(maxsize=64)
def dct_matrix(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, N) orthonormal DCT-II matrix D[k, n]: coefficients = D @ signal. Built in float64, then cast."""
    n = torch.arange(size, dtype=torch.float64)
    k = n[:, None]
    matrix = torch.cos(math.pi * (2 * n[None, :] + 1) * k / (2 * size)) * math.sqrt(2 / size)  # (N, N)
    matrix[0] /= math.sqrt(2)
    return matrix.to(dtype=dtype, device=device)


class DctBasis(Basis):
    """Orthonormal DCT-II over the last two axes."""

    name = "dct"
    description = "orthonormal 2-D DCT-II mask: IDCT(M ⊙ DCT(x)), (0, 0) in the top-left corner"
    orthonormal = True

    def _matrices(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = x.shape[-2:]
        return dct_matrix(height, x.dtype, x.device), dct_matrix(width, x.dtype, x.device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rows, cols = self._matrices(images)
        return rows @ images @ cols.T  # (..., H, W)

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        rows, cols = self._matrices(coefficients)
        return rows.T @ coefficients @ cols  # (..., H, W)

    def layout(self, height: int, width: int) -> MapLayout:
        self.check_size(height, width)
        return MapLayout(
            name="DCT corner",
            row_label="vertical frequency k_y (half cycles per image)",
            col_label="horizontal frequency k_x (half cycles per image)",
            row_values=tuple(range(height)),
            col_values=tuple(range(width)),
            origin=(0, 0),
        )
