"""Fourier amplitude masks (METHOD §1), the default basis: x_F = Re(IFFT2(M ⊙ FFT2(x))).

M = 1 gives the image back; M = 0 gives the zero image; M = 0 at one frequency removes that frequency (and,
through the real part, half of its Hermitian partner −k). Natural order has the zero frequency at [0, 0];
maps are stored and shown fftshift-ed (zero frequency at [H // 2, W // 2]). `apply` is
core.fourier.apply_fourier_maps itself, so the default basis is bit for bit what the project always computed.
"""

from __future__ import annotations

import torch

from core.bases.base import Basis
from core.bases.layout import MapLayout
from core.fourier import apply_fourier_maps, to_display_order, to_natural_order, zero_frequency_index


class FourierBasis(Basis):
    """FFT2 coefficients (complex, unnormalised: ‖FFT2 x‖² = H·W·‖x‖²); the map multiplies them."""

    name = "fourier"
    description = "Fourier amplitude mask: Re(IFFT2(M ⊙ FFT2(x))), maps stored fftshift-ed"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(images)  # (..., H, W) complex

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(coefficients).real

    def apply(self, images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return apply_fourier_maps(images, maps)

    def nonredundant(self, height: int, width: int) -> torch.Tensor:
        """One frequency of each Hermitian pair {k, −k} (self-conjugate ones once), fftshift-ed."""
        # imported here: core.metrics may come to select features per basis, and then it imports core.bases
        from core.metrics.half_spectrum import hermitian_representatives

        self.check_size(height, width)
        return hermitian_representatives(height, width)

    def layout(self, height: int, width: int) -> MapLayout:
        return centred_spectrum_layout(self, height, width)

    def to_display_order(self, maps: torch.Tensor) -> torch.Tensor:
        return to_display_order(maps)

    def to_natural_order(self, maps: torch.Tensor) -> torch.Tensor:
        return to_natural_order(maps)


def centred_spectrum_layout(basis: Basis, height: int, width: int) -> MapLayout:
    """The fftshift-ed layout shared by the Fourier amplitude and phase bases: signed frequencies, zero at the centre."""
    basis.check_size(height, width)
    centre = zero_frequency_index(height, width)
    return MapLayout(
        name="centred spectrum",
        row_label="vertical frequency (cycles per image)",
        col_label="horizontal frequency (cycles per image)",
        row_values=tuple(i - centre[0] for i in range(height)),
        col_values=tuple(j - centre[1] for j in range(width)),
        origin=centre,
    )
