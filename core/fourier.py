"""The Fourier map layer (METHOD §1): x_F = Re(IFFT2(M ⊙ FFT2(x))).

Convention: a map tensor M used in computation is in the FFT's natural order (zero frequency
at index [0, 0]); maps are *stored and shown* fftshift-ed (zero frequency at the centre,
index [H // 2, W // 2]). Only the two frequency axes are shifted, never the colour channels
(the published code also rolled the channels; see `published_channel_order`).
"""

from __future__ import annotations

import torch


def apply_fourier_maps(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Filter images by maps in natural FFT order.

    images: (B, C, H, W) real. maps: (B, C, H, W), or (C, H, W) / (1, C, H, W) shared by the batch.
    Returns (B, C, H, W) real: the real part of the inverse FFT of the masked spectrum.
    """
    if maps.shape[-3:] != images.shape[-3:]:
        raise ValueError(f"expected maps of shape (..., {tuple(images.shape[-3:])}), got {tuple(maps.shape)}")
    spectrum = torch.fft.fft2(images)  # (B, C, H, W) complex, over the last two axes
    return torch.fft.ifft2(maps * spectrum).real


def to_display_order(maps: torch.Tensor) -> torch.Tensor:
    """Natural FFT order -> centred (fftshift over the last two axes). (..., H, W) -> (..., H, W)."""
    return torch.fft.fftshift(maps, dim=(-2, -1))


def to_natural_order(maps: torch.Tensor) -> torch.Tensor:
    """Centred -> natural FFT order (ifftshift over the last two axes); inverse of `to_display_order`."""
    return torch.fft.ifftshift(maps, dim=(-2, -1))


def published_channel_order(maps_display: torch.Tensor) -> torch.Tensor:
    """Our centred (..., 3, H, W) maps in the channel order the published code saved (B, R, G).

    The published `torch.fft.fftshift(M)` without `dim` also rolled the channel axis by one;
    `saved[..., [1, 2, 0], :, :]` recovers RGB from its files, and this is the inverse.
    """
    return torch.roll(maps_display, shifts=1, dims=-3)


def log_magnitude_spectrum(images: torch.Tensor) -> torch.Tensor:
    """log(1 + |FFT2(x)|), centred, for display. (..., H, W) -> (..., H, W)."""
    return torch.log1p(torch.fft.fftshift(torch.fft.fft2(images), dim=(-2, -1)).abs())


def zero_frequency_index(height: int, width: int) -> tuple[int, int]:
    """Where the zero frequency sits in a centred (display-order) map."""
    return height // 2, width // 2
