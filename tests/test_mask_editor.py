"""The Lab mask editor's pure operations (ui/mask_editor.py), each against a plain Python loop over coefficients."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ui import mask_editor as me
from ui.basis_figures import map_layout

SIZES = [(32, 32), (9, 12)]  # even (Nyquist rows are their own partners) and odd × even


def _radius_loop(layout) -> np.ndarray:
    h, w = len(layout.row_values), len(layout.col_values)
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = math.hypot(layout.row_values[i], layout.col_values[j])
    return out


@pytest.mark.parametrize("basis", ["fourier", "phase", "dct"])
@pytest.mark.parametrize(("height", "width"), SIZES, ids=["32x32", "9x12"])
def test_band_regions_match_a_loop_over_radii(basis, height, width):
    layout = map_layout(basis, height, width)
    radius = _radius_loop(layout)
    np.testing.assert_allclose(me.coefficient_radius(layout), radius, rtol=0, atol=1e-12)
    for r in (0.0, 2.5, 5.0):
        low = me.band_region(layout, me.LOW_PASS, r)
        high = me.band_region(layout, me.HIGH_PASS, r)
        band = me.band_region(layout, me.BAND_PASS, r, r + 3)
        for i in range(height):
            for j in range(width):
                assert low[i, j] == (radius[i, j] <= r)
                assert high[i, j] == (radius[i, j] >= r)
                assert band[i, j] == (r <= radius[i, j] <= r + 3)


def test_low_pass_of_radius_zero_keeps_only_the_origin():
    for basis, origin in (("fourier", (16, 16)), ("dct", (0, 0))):
        region = me.band_region(map_layout(basis, 32, 32), me.LOW_PASS, 0.0)
        assert region.sum() == 1 and region[origin]


def test_band_pass_needs_an_outer_radius_and_bad_kinds_are_refused():
    layout = map_layout("fourier", 8, 8)
    with pytest.raises(ValueError, match="outer radius"):
        me.band_region(layout, me.BAND_PASS, 3.0, 1.0)
    with pytest.raises(ValueError, match="expected a band in"):
        me.band_region(layout, "notch", 3.0)


@pytest.mark.parametrize("key", ["wavelet-haar-L3", "wavelet-db2-L2"])
def test_subband_regions_match_a_loop_over_rectangles(key):
    layout = map_layout(key, 32, 32)
    labels = me.subband_labels(layout)
    assert labels[0].endswith("approximation") and len(labels) == 1 + 3 * int(key[-1])
    keep = {labels[0], labels[2], labels[-1]}
    region = me.subband_region(layout, keep, (32, 32))
    expected = np.zeros((32, 32), bool)
    for band in layout.subbands:
        for i in range(*band.rows):
            for j in range(*band.cols):
                if band.label in keep:
                    expected[i, j] = True
    np.testing.assert_array_equal(region, expected)
    every = me.subband_region(layout, labels, (32, 32))
    assert every.all()  # the subbands tile the whole pyramid
    with pytest.raises(ValueError, match="expected subbands in"):
        me.subband_region(layout, {"level 9 diagonal"}, (32, 32))


def test_apply_region_keeps_or_removes_in_every_channel():
    rng = np.random.default_rng(0)
    start = rng.uniform(0, 1, (3, 6, 6)).astype(np.float32)
    region = rng.uniform(0, 1, (6, 6)) > 0.5
    kept = me.apply_region(start, region, me.KEEP)
    removed = me.apply_region(start, region, me.REMOVE)
    for c in range(3):
        for i in range(6):
            for j in range(6):
                assert kept[c, i, j] == (start[c, i, j] if region[i, j] else 0)
                assert removed[c, i, j] == (0 if region[i, j] else start[c, i, j])
    with pytest.raises(ValueError, match="expected an action"):
        me.apply_region(start, region, "flip")


@pytest.mark.parametrize(("height", "width"), SIZES, ids=["32x32", "9x12"])
def test_hermitian_partner_is_the_cell_of_minus_k(height, width):
    layout = map_layout("fourier", height, width)
    fy, fx = layout.row_values, layout.col_values
    for i in range(height):
        for j in range(width):
            pi, pj = me.hermitian_partner(layout, i, j)
            # −k, folded back into the band [−⌊n/2⌋, ⌈n/2⌉ − 1]
            assert (fy[pi] + fy[i]) % height == 0 and (fx[pj] + fx[j]) % width == 0
            assert me.hermitian_partner(layout, pi, pj) == (i, j)


def test_hermitian_partner_agrees_with_the_fft_of_a_real_image():
    """Independent check: the FFT of a real image is Hermitian, so X[partner] = conj X[cell] (display order)."""
    rng = np.random.default_rng(1)
    for height, width in SIZES:
        spectrum = np.fft.fftshift(np.fft.fft2(rng.normal(size=(height, width))))
        layout = map_layout("fourier", height, width)
        for i in range(height):
            for j in range(width):
                pi, pj = me.hermitian_partner(layout, i, j)
                assert abs(spectrum[pi, pj] - np.conj(spectrum[i, j])) < 1e-9


def test_toggle_flips_a_coefficient_and_its_partner_for_fourier_only():
    start = np.zeros((3, 32, 32), np.float32)
    fourier, dct = map_layout("fourier", 32, 32), map_layout("dct", 32, 32)
    on = me.toggle_coefficient(start, fourier, 10, 20)
    assert on[:, 10, 20].tolist() == [1, 1, 1] and on[:, 22, 12].tolist() == [1, 1, 1] and on.sum() == 6
    assert me.toggle_coefficient(on, fourier, 22, 12).sum() == 0  # clicking the partner flips both back
    assert start.sum() == 0  # not changed in place
    on_dct = me.toggle_coefficient(start, dct, 10, 20)
    assert on_dct.sum() == 3 and on_dct[:, 10, 20].tolist() == [1, 1, 1]
    centre = me.toggle_coefficient(start, fourier, 16, 16)  # the zero frequency is its own partner
    assert centre.sum() == 3
    with pytest.raises(ValueError, match="inside 32 × 32"):
        me.toggle_coefficient(start, dct, 32, 0)


def test_edited_map_applies_the_region_then_the_clicks_in_order():
    layout = map_layout("fourier", 16, 16)
    ones = np.ones((3, 16, 16), np.float32)
    region = me.band_region(layout, me.LOW_PASS, 2.0)
    edit = me.Edit(region=region, action=me.KEEP, clicks=[(0, 0), (8, 8), (0, 0)])
    out = me.edited_map(ones, layout, edit)
    expected = np.where(region[None], ones, 0)
    expected[:, 8, 8] = 0  # the zero frequency, inside the band, clicked off once; (0, 0) clicked on and off
    np.testing.assert_array_equal(out, expected)
    assert me.kept_share(out) == pytest.approx((region.sum() - 1) / 256, abs=1e-12)
