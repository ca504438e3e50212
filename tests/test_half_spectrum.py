"""The non-redundant half of fftshift-ed Fourier maps against a plain loop over frequencies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.metrics import correlate, hermitian_representatives, nonredundant_coefficients


def reference_positions(height: int, width: int) -> list[tuple[int, int]]:
    """Loop over unshifted frequencies (u, v); keep the pair {k, −k} once, at its smaller shifted flat index."""
    kept = set()
    for u in range(height):
        for v in range(width):
            shifted = ((u + height // 2) % height, (v + width // 2) % width)  # np.fft.fftshift's move
            partner = (((-u) % height + height // 2) % height, ((-v) % width + width // 2) % width)
            kept.add(min(shifted, partner, key=lambda p: p[0] * width + p[1]))
    return sorted(kept)


@pytest.mark.parametrize(("height", "width"), [(32, 32), (7, 7), (6, 5), (1, 4), (224, 224)])
def test_representatives_equal_the_loop(height, width):
    mask = hermitian_representatives(height, width)
    assert [tuple(p) for p in torch.nonzero(mask).tolist()] == reference_positions(height, width)


def test_32x32_keeps_514_per_channel_and_real_spectra_lose_nothing():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 3, 32, 32))
    spectra = np.abs(np.fft.fftshift(np.fft.fft2(images), axes=(-2, -1)))  # (4, 3, 32, 32), |F(k)| = |F(-k)|
    kept = nonredundant_coefficients(torch.from_numpy(spectra))
    assert kept.shape == (4, 3 * 514)
    # every dropped coefficient equals its kept partner: the full map is recoverable from the half
    rows = torch.arange(32)
    partner = (32 - rows) % 32
    np.testing.assert_allclose(spectra, spectra[:, :, partner][:, :, :, partner], rtol=1e-10)
    mask = hermitian_representatives(32, 32).numpy()
    np.testing.assert_array_equal(kept.numpy().reshape(4, 3, -1), spectra[:, :, mask])


def test_correlate_half_spectrum_equals_correlate_on_the_selected_columns():
    rng = np.random.default_rng(1)
    a = rng.uniform(size=(30, 3, 8, 8))
    b = a + 0.3 * rng.normal(size=a.shape)
    half = correlate(a, b, permutations=5, half_spectrum=True)
    mask = hermitian_representatives(8, 8).numpy()
    direct = correlate(a[:, :, mask].reshape(30, -1), b[:, :, mask].reshape(30, -1), permutations=5)
    assert half["half_spectrum"] is True and half["dim"] == 3 * (64 + 4) // 2
    for key in ("cosine_mean", "svcca", "idcor", "p_value"):
        assert half[key] == pytest.approx(direct[key], rel=1e-12), key
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) maps for half_spectrum"):
        correlate(a.reshape(30, -1), b.reshape(30, -1), half_spectrum=True)
