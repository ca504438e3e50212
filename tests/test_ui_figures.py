"""The app's pure helpers (ui/arrays.py) and Plotly builders (ui/figures.py), against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ui import figures
from ui.arrays import (
    amplified_perturbation,
    cosine,
    frequency_axis,
    log_spectrum,
    perturbation_norms,
    pool_map,
    pooled_frequency_axis,
    radial_profile,
    to_hwc_uint8,
    top_k,
)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("n, first, last", [(32, -16, 15), (224, -112, 111), (7, -3, 3), (1, 0, 0)])
def test_frequency_axis_matches_fftshift(n, first, last):
    axis = frequency_axis(n)
    assert axis[0] == first and axis[-1] == last
    # the fftshift of numpy's own frequency grid (in cycles per image) is the same axis
    np.testing.assert_array_equal(axis, np.fft.fftshift(np.fft.fftfreq(n, d=1 / n)).round().astype(int))
    assert axis[n // 2] == 0


def test_pooled_frequency_axis_is_bin_mean():
    axis = pooled_frequency_axis(224, 32)
    assert axis[0] == pytest.approx(np.mean(np.arange(-112, -105)))
    assert len(axis) == 32
    with pytest.raises(ValueError, match="expected a bin count dividing 224"):
        pooled_frequency_axis(224, 30)


@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 9, 10), (1, 8, 8)], ids=["cifar", "odd", "grey"])
def test_radial_profile_matches_plain_loop(shape):
    m = RNG.uniform(size=shape)
    c, h, w = shape
    sums, counts = {}, {}
    for k in range(c):
        for y in range(h):
            for x in range(w):
                r = round(math.hypot(y - h // 2, x - w // 2))
                sums[r] = sums.get(r, 0.0) + m[k, y, x]
                counts[r] = counts.get(r, 0) + 1
    radii, values = radial_profile(m)
    assert list(radii) == sorted(sums)
    np.testing.assert_allclose(values, [sums[r] / counts[r] for r in radii], rtol=1e-12)


def test_radial_profile_of_dc_only_map():
    m = np.zeros((3, 32, 32))
    m[:, 16, 16] = 1
    radii, values = radial_profile(m)
    assert radii[0] == 0 and values[0] == pytest.approx(1.0)
    assert np.all(values[1:] == 0)


def test_pool_map_matches_torch_adaptive_average():
    from core.metrics.pooling import pool_maps

    m = RNG.uniform(size=(3, 224, 224)).astype(np.float32)
    expected = pool_maps(torch.from_numpy(m)[None], size=32, mode="avg")[0].numpy()
    np.testing.assert_allclose(pool_map(m, 32), expected, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 32"):
        pool_map(m[:, :100, :100], 32)


def test_log_spectrum_matches_core_fourier():
    from core.fourier import log_magnitude_spectrum

    image = RNG.uniform(size=(3, 32, 32))
    expected = log_magnitude_spectrum(torch.from_numpy(image)).mean(dim=0).numpy()
    np.testing.assert_allclose(log_spectrum(image), expected, rtol=1e-10)
    # the centre holds the zero frequency: log(1 + sum of the pixels), channel mean
    assert log_spectrum(image)[16, 16] == pytest.approx(np.mean(np.log1p(image.sum(axis=(1, 2)))))


def test_top_k_and_cosine_and_norms():
    probs = np.array([0.1, 0.5, 0.05, 0.35])
    assert top_k(probs, 3) == [(1, 0.5), (3, 0.35), (0, 0.1)]
    a, b = RNG.uniform(size=(3, 8, 8)), RNG.uniform(size=(3, 8, 8))
    from core.metrics.cosine import cosine_similarities

    expected = cosine_similarities(torch.from_numpy(a.reshape(1, -1)), torch.from_numpy(b.reshape(1, -1)))[0].item()
    assert cosine(a, b) == pytest.approx(expected, rel=1e-12)
    assert cosine(np.zeros(4), np.ones(4)) == 0.0
    clean = RNG.uniform(size=(3, 4, 4))
    adv = clean.copy()
    adv[0, 0, 0] += 0.03
    adv[1, 2, 2] -= 0.04
    linf, l2 = perturbation_norms(clean, adv)
    assert linf == pytest.approx(0.04) and l2 == pytest.approx(0.05)


def test_amplified_perturbation_reaches_the_edge():
    clean = RNG.uniform(0.2, 0.8, size=(3, 8, 8))
    adv = clean + RNG.uniform(-0.01, 0.01, size=clean.shape)
    picture, gain = amplified_perturbation(clean, adv)
    assert np.abs(picture - 0.5).max() == pytest.approx(0.5)
    np.testing.assert_allclose(picture, 0.5 + (adv - clean) * gain)
    grey, zero = amplified_perturbation(clean, clean)
    assert zero == 0 and np.all(grey == 0.5)


def test_to_hwc_uint8_rounds_and_clips():
    image = np.array([[[0.0, 1.2]], [[0.5, -1.0]], [[1.0, 0.002]]])  # (3, 1, 2)
    assert to_hwc_uint8(image).tolist() == [[[0, 128, 255], [255, 0, 1]]]
    with pytest.raises(ValueError, match=r"expected an image of shape \(3, H, W\)"):
        to_hwc_uint8(np.zeros((4, 2, 2)))


def test_map_channel_figure_axes_and_colorbar():
    m = RNG.uniform(size=(3, 32, 32))
    fig = figures.map_channel_figure(m, "title")
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 3
    for k, trace in enumerate(heatmaps):
        np.testing.assert_array_equal(trace.x, np.arange(-16, 16))
        np.testing.assert_array_equal(trace.y, np.arange(-16, 16))
        np.testing.assert_array_equal(np.asarray(trace.z), m[k])
    assert fig.layout.coloraxis.colorbar.title.text == "map value"
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1
    assert "cycles/image" in fig.layout.xaxis.title.text
    assert fig.layout.yaxis.autorange == "reversed"
    with pytest.raises(ValueError, match=r"expected map of shape \(3, H, W\)"):
        figures.map_channel_figure(np.zeros((32, 32)), "t")


def test_map_rgb_figure_places_zero_frequency_at_origin():
    m = np.zeros((3, 32, 32))
    m[:, 16, 16] = 1
    fig = figures.map_rgb_figure(m, "t")
    image = fig.data[0]
    assert image.x0 == -16 and image.y0 == -16 and image.dx == 1
    z = np.asarray(image.z)
    assert z.shape == (32, 32, 3) and z[16, 16].tolist() == [255, 255, 255] and z.sum() == 3 * 255
    pooled = figures.map_rgb_figure(np.zeros((3, 32, 32)), "t", axis_y=pooled_frequency_axis(224, 32),
                                    axis_x=pooled_frequency_axis(224, 32))
    assert pooled.data[0].dx == pytest.approx(7.0) and pooled.data[0].x0 == pytest.approx(-109.0)


def test_radial_profile_figure_uses_the_profile():
    m = RNG.uniform(size=(3, 16, 16))
    fig = figures.radial_profile_figure([("essential", m)], "t")
    radii, values = radial_profile(m)
    np.testing.assert_allclose(fig.data[0].y, values)
    np.testing.assert_array_equal(fig.data[0].x, radii)
    assert "cycles/image" in fig.layout.xaxis.title.text


def test_spectra_figure_shares_one_scale():
    spectra = [("a", np.ones((8, 8))), ("b", 3 * np.ones((8, 8)))]
    fig = figures.spectra_figure(spectra, "t")
    assert len(fig.data) == 2 and fig.layout.coloraxis.cmax == 3
    assert fig.layout.coloraxis.colorbar.title.text == "log(1+|F|)"
    with pytest.raises(ValueError, match="at least one spectrum"):
        figures.spectra_figure([], "t")


def test_top_k_figure_marks_the_true_class():
    fig = figures.top_k_figure(np.array([0.1, 0.6, 0.3]), ["cat", "dog", "ship"], "t", true_label=2)
    assert list(fig.data[0].y) == ["cat", "ship ✓", "dog"]  # reversed: best on top
    np.testing.assert_allclose(fig.data[0].x, [10, 30, 60])


def test_accuracy_heatmap_annotates_cells():
    matrix = np.array([[0.92, 0.83], [0.04, np.nan]])
    fig = figures.accuracy_heatmap_figure(matrix, ["clean", "FMN"], ["no map", "FMN"], "t")
    assert fig.data[0].text[0][0] == "0.92" and fig.data[0].text[1][1] == ""
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 1
    with pytest.raises(ValueError, match=r"expected a \(2, 3\) matrix"):
        figures.accuracy_heatmap_figure(matrix, ["a", "b"], ["x", "y", "z"], "t")


def test_histograms_and_null_distribution():
    paired, repaired = RNG.uniform(0.4, 0.9, 50), RNG.uniform(0.0, 0.4, 500)
    fig = figures.cosine_histogram_figure(paired, repaired, "t")
    assert [t.type for t in fig.data] == ["histogram", "histogram"]
    assert len(fig.layout.shapes) == 2  # a mean line per distribution
    assert fig.layout.shapes[0].x0 == pytest.approx(paired.mean())
    null = figures.null_distribution_figure(RNG.normal(6, 1, 100), 4.2, 0.0099, "t")
    assert null.layout.shapes[0].x0 == pytest.approx(4.2)
    assert "p = 0.010" in null.layout.annotations[0].text


def test_grids_check_shapes():
    maps = RNG.uniform(size=(4, 3, 8, 8))
    fig = figures.class_maps_grid_figure(maps, ["a", "b", "c", "d"], "t", columns=2)
    assert len(fig.data) == 4
    with pytest.raises(ValueError, match=r"expected \(3, 3, H, W\) class maps"):
        figures.class_maps_grid_figure(maps, ["a", "b", "c"], "t")
    pair = figures.map_pair_grid_figure([("essential", maps[:, 0]), ("adversarial", maps[:, 1])], list("abcd"), "t")
    assert len(pair.data) == 8


def test_eps_sweep_draws_paper_dashed():
    fig = figures.eps_sweep_figure([1.0, 8.0], {"IdCor": [0.5, None]}, {"IdCor": [0.59, 0.53, 0.60]}, [1.0, 3.0, 8.0], "t")
    assert len(fig.data) == 2 and fig.data[1].line.dash == "dash"
    assert np.isnan(fig.data[0].y[1])


def test_no_figure_uses_streamlit_theme_placeholder_colours():
    """Streamlit's chart theme replaces #000001..#000010 by its own palette (Magma starts with #000004)."""
    import re

    rng = np.random.default_rng(3)
    m, image = rng.uniform(size=(3, 8, 8)), rng.uniform(size=(3, 8, 8))
    built = [
        figures.spectra_figure([("a", log_spectrum(image))], "t"), figures.map_channel_figure(m, "t"),
        figures.map_rgb_figure(m, "t"), figures.accuracy_heatmap_figure(np.eye(2), ["a", "b"], ["c", "d"], "t"),
        figures.map_pair_grid_figure([("e", m)], ["r", "g", "b"], "t"), figures.radial_profile_figure([("e", m)], "t"),
        figures.cosine_histogram_figure(rng.uniform(size=9), rng.uniform(size=9), "t"),
        figures.eps_sweep_figure([1.0], {"IdCor": [0.5]}, {"IdCor": [0.6]}, [1.0], "t"),
    ]
    for fig in built:
        # only our own colours: the layout template is the global default, which importing
        # Streamlit sets to its own theme (whose placeholders it then replaces, as intended)
        fig.layout.template = None
        assert not re.search(r"#0000(0[1-9]|10)\b", fig.to_json(), flags=re.IGNORECASE)


def test_combined_rows_hold_one_panel_per_input():
    rng = np.random.default_rng(4)
    maps = [("essential", rng.uniform(size=(3, 8, 8))), ("adversarial", rng.uniform(size=(3, 8, 8)))]
    grid = figures.map_channels_grid_figure(maps, "t")
    assert len(grid.data) == 6 and all(t.type == "heatmap" for t in grid.data)
    np.testing.assert_array_equal(np.asarray(grid.data[4].z), maps[1][1][1])  # row 2, green channel
    np.testing.assert_array_equal(grid.data[0].x, np.arange(-4, 4))
    rgb = figures.maps_rgb_row_figure(maps, "t")
    assert [t.x0 for t in rgb.data] == [-4, -4] and "cycles/image" in rgb.layout.xaxis2.title.text
    row = figures.image_row_figure([("a", maps[0][1]), ("b", maps[1][1]), ("c", maps[0][1])], "t")
    assert len(row.data) == 3 and np.asarray(row.data[1].z).shape == (8, 8, 3)
    bars = figures.top_k_row_figure([("clean", np.array([0.7, 0.2, 0.1])), ("adv", np.array([0.1, 0.3, 0.6]))],
                                    ["cat", "dog", "ship"], "t", true_label=0)
    assert list(bars.data[0].y) == ["ship", "dog", "cat ✓"] and list(bars.data[1].y) == ["cat ✓", "dog", "ship"]
    with pytest.raises(ValueError, match="at least one"):
        figures.top_k_row_figure([], ["cat"], "t")
