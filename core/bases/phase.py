"""Fourier phase masks: x_F = Re(IFFT2(|FFT2 x| · exp(i · M ⊙ ∠FFT2 x))), the amplitude kept.

M = 1 gives the image back. M = 0 zeroes every phase: IFFT2 of the amplitude spectrum alone, a zero-phase
image, real and symmetric about the origin (x_F(−n) = x_F(n), indices mod H, W), its energy at the
corners of the pixel grid. Fractional M scales each phase angle towards 0 (angles in (−π, π], torch.angle).
The mask is not linear in the coefficients, so Parseval does not apply; |FFT2 x_F| equals |FFT2 x| wherever
M(k) = M(−k) (a phase of exactly π, a real negative coefficient, is the one case where scaling breaks the
Hermitian pairing and the real part then mixes k with −k). Same orders, layout and redundancy as `fourier`.
"""

from __future__ import annotations

import torch

from core.bases.base import Basis
from core.bases.fourier import FourierBasis, centred_spectrum_layout
from core.bases.layout import MapLayout


class PhaseBasis(Basis):
    """FFT2 coefficients; the map scales their phase angles, the amplitudes stay."""

    name = "phase"
    description = "Fourier phase mask: Re(IFFT2(|FFT2 x| · exp(i M ⊙ ∠FFT2 x))), maps stored fftshift-ed"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(images)  # (..., H, W) complex

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(coefficients).real

    def mask(self, coefficients: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        amplitude = coefficients.abs()
        # a zero coefficient has no phase: angle's gradient there is 0/0 (NaN), so take the angle of 1 instead;
        # its amplitude 0 keeps it zero whatever the map
        phase = torch.where(amplitude > 0, coefficients, torch.ones_like(coefficients)).angle()
        return torch.polar(amplitude, (maps * phase).to(amplitude.dtype))

    def nonredundant(self, height: int, width: int) -> torch.Tensor:
        """As for `fourier`: the phases at k and −k are negatives of each other."""
        return FourierBasis().nonredundant(height, width)

    def layout(self, height: int, width: int) -> MapLayout:
        return centred_spectrum_layout(self, height, width)

    def to_display_order(self, maps: torch.Tensor) -> torch.Tensor:
        return FourierBasis().to_display_order(maps)

    def to_natural_order(self, maps: torch.Tensor) -> torch.Tensor:
        return FourierBasis().to_natural_order(maps)
