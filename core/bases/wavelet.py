"""Multi-level 2-D discrete wavelet masks (orthogonal Daubechies, periodization): x_F = IDWT(M ⊙ DWT(x)).

One level filters rows and columns with the wavelet's low- and high-pass decomposition filters and keeps every
second sample, wrapping around the edges (PyWavelets' mode="periodization"): an orthogonal N × N matrix A_N
whose first N/2 rows are the low pass and last N/2 the high pass, with the same alignment as pywt.dwt, so
one level of an (H, W) image is A_H · x · A_Wᵀ. Level l + 1 transforms the top-left (approximation) quarter
of level l again. The result is the standard pyramid that pywt.coeffs_to_array(pywt.wavedec2(x, wavelet,
mode="periodization", level=L)) packs: the coarsest approximation top-left, and at level l (1 = finest) on
an (H/2^l, W/2^l) grid the horizontal detail cH bottom-left, the vertical detail cV top-right, the diagonal
cD bottom-right of the (H/2^(l−1), W/2^(l−1)) block. So maps are (C, H, W) like the others.

Orthonormal: energy kept, no redundancy, masking one coefficient changes that one alone; M = 1 gives the
image back, M = 0 the zero image. Size rule: H and W divisible by 2^L, and L at most pywt.dwt_max_level
(⌊log2(min(H, W) / (filter length − 1))⌋), deeper levels being all boundary effect.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from core.bases.base import Basis
from core.bases.layout import MapLayout, Subband

_SQRT3 = math.sqrt(3)
# decomposition low-pass filters as pywt.Wavelet(name).dec_lo lists them (closed forms)
WAVELETS: dict[str, tuple[float, ...]] = {
    "haar": (1 / math.sqrt(2), 1 / math.sqrt(2)),
    "db2": tuple(c / (4 * math.sqrt(2)) for c in (1 - _SQRT3, 3 - _SQRT3, 3 + _SQRT3, 1 + _SQRT3)),
}
DEFAULT_WAVELET = "haar"
DEFAULT_LEVELS = 3


def high_pass(low_pass: tuple[float, ...]) -> tuple[float, ...]:
    """The quadrature-mirror decomposition high pass: g[j] = (−1)^(j+1) · h[L − 1 − j] (pywt's dec_hi)."""
    length = len(low_pass)
    return tuple((-1) ** (j + 1) * low_pass[length - 1 - j] for j in range(length))


@lru_cache(maxsize=64)
def analysis_matrix(
    wavelet: str, size: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(N, N) one-level periodized DWT matrix: rows [0, N/2) low pass, [N/2, N) high pass; orthogonal.

    Row k of each half takes x[(2k + L/2 − j) mod N] with filter tap j (L taps), pywt.dwt's periodization
    alignment. Built in float64, then cast.
    """
    low = WAVELETS[wavelet]
    half, taps = size // 2, len(low)
    matrix = torch.zeros(size, size, dtype=torch.float64)
    for k in range(half):
        for j in range(taps):
            n = (2 * k + taps // 2 - j) % size
            matrix[k, n] += low[j]
            matrix[half + k, n] += high_pass(low)[j]
    return matrix.to(dtype=dtype, device=device)


def max_level(size: int, wavelet: str) -> int:
    """pywt.dwt_max_level(size, filter length): the deepest level with no more boundary than signal."""
    return max(0, int(math.floor(math.log2(size / (len(WAVELETS[wavelet]) - 1)))))


def possible_levels(height: int, width: int, wavelet: str) -> int:
    """The deepest level L an (H, W) image takes: H, W divisible by 2^L and L <= max_level."""
    levels = 0
    limit = max_level(min(height, width), wavelet)
    while levels < limit and height % 2 ** (levels + 1) == 0 and width % 2 ** (levels + 1) == 0:
        levels += 1
    return levels


class WaveletBasis(Basis):
    """Multi-level periodized 2-D DWT packed as a pyramid; `wavelet` in WAVELETS, `levels` >= 1."""

    name = "wavelet"
    description = "wavelet mask: IDWT(M ⊙ DWT(x)), periodization, coefficients packed as a pyramid"
    orthonormal = True

    def __init__(self, *, wavelet: str = DEFAULT_WAVELET, levels: int = DEFAULT_LEVELS) -> None:
        if wavelet not in WAVELETS:
            raise ValueError(f"expected a wavelet in {sorted(WAVELETS)}, got {wavelet!r}")
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"expected levels >= 1, got {levels!r}")
        self.wavelet, self.levels = wavelet, levels

    @property
    def key(self) -> str:
        return f"{self.name}-{self.wavelet}-L{self.levels}"

    def check_size(self, height: int, width: int) -> None:
        super().check_size(height, width)
        possible = possible_levels(height, width, self.wavelet)
        if self.levels > possible:
            raise ValueError(
                f"expected at most {possible} {self.wavelet} levels for {height} × {width} images (H, W divisible by "
                f"2^levels, levels <= {max_level(min(height, width), self.wavelet)} for filter length "
                f"{len(WAVELETS[self.wavelet])}), got levels={self.levels}"
            )

    def _matrix(self, size: int, x: torch.Tensor) -> torch.Tensor:
        return analysis_matrix(self.wavelet, size, x.dtype, x.device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_size(*images.shape[-2:])
        return self._forward_levels(images, self.levels)

    def _forward_levels(self, block: torch.Tensor, levels: int) -> torch.Tensor:
        """One level on `block` (..., h, w), then the remaining levels on its approximation quarter."""
        height, width = block.shape[-2:]
        out = self._matrix(height, block) @ block @ self._matrix(width, block).T  # (..., h, w)
        if levels == 1:
            return out
        top, bottom = out[..., : height // 2, :], out[..., height // 2 :, :]
        approx = self._forward_levels(top[..., : width // 2], levels - 1)
        return torch.cat([torch.cat([approx, top[..., width // 2 :]], dim=-1), bottom], dim=-2)

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        self.check_size(*coefficients.shape[-2:])
        return self._inverse_levels(coefficients, self.levels)

    def _inverse_levels(self, block: torch.Tensor, levels: int) -> torch.Tensor:
        """The inverse of `_forward_levels`: rebuild the approximation quarter first, then undo this level."""
        height, width = block.shape[-2:]
        if levels > 1:
            top, bottom = block[..., : height // 2, :], block[..., height // 2 :, :]
            approx = self._inverse_levels(top[..., : width // 2], levels - 1)
            block = torch.cat([torch.cat([approx, top[..., width // 2 :]], dim=-1), bottom], dim=-2)
        return self._matrix(height, block).T @ block @ self._matrix(width, block)  # A orthogonal: A⁻¹ = Aᵀ

    def subbands(self, height: int, width: int) -> tuple[Subband, ...]:
        """The pyramid's rectangles, coarsest approximation first, then details from the deepest level to level 1."""
        self.check_size(height, width)
        coarse_h, coarse_w = height >> self.levels, width >> self.levels
        bands = [Subband(self.levels, "approximation", (0, coarse_h), (0, coarse_w))]
        for level in range(self.levels, 0, -1):
            h, w = height >> level, width >> level
            bands += [
                Subband(level, "horizontal", (h, 2 * h), (0, w)),
                Subband(level, "vertical", (0, h), (w, 2 * w)),
                Subband(level, "diagonal", (h, 2 * h), (w, 2 * w)),
            ]
        return tuple(bands)

    def layout(self, height: int, width: int) -> MapLayout:
        return MapLayout(
            name="wavelet pyramid",
            row_label="row of the packed coefficients (coarse at the top)",
            col_label="column of the packed coefficients (coarse at the left)",
            row_values=tuple(range(height)),
            col_values=tuple(range(width)),
            origin=(0, 0),
            subbands=self.subbands(height, width),
        )
