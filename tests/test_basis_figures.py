"""Maps drawn in their basis's layout (ui/basis_figures.py): axes, outlines, colour bar, and fourier unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from ui import basis_figures as bf
from ui import figures
from ui.map_basis import basis_from_key, filter_in_basis, manifest_basis_key, manifest_layer

KEYS = ["fourier", "phase", "dct", "wavelet-haar-L3", "wavelet-db2-L2"]


def _map(c: int = 3, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (c, size, size)).astype(np.float32)


def test_fourier_figures_are_ui_figures_own():
    maps = [("essential", _map()), ("adversarial", _map(seed=1))]
    assert bf.basis_channels_figure(maps, "fourier", "t").to_json() == figures.map_channels_grid_figure(maps, "t").to_json()
    assert bf.basis_rgb_figure(maps, "fourier", "t").to_json() == figures.maps_rgb_row_figure(maps, "t").to_json()


@pytest.mark.parametrize("key", KEYS)
def test_coefficient_figure_axes_follow_the_layout(key):
    plane = _map()[0]
    fig = bf.coefficient_figure(plane, key, "A map", subtitle="channel 0", clickable=True)
    heat, points = fig.data
    layout = basis_from_key(key).layout(32, 32)
    assert list(heat.x) == list(layout.col_values) and list(heat.y) == list(layout.row_values)
    np.testing.assert_array_equal(np.asarray(heat.z), plane)
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1
    assert fig.layout.xaxis.title.text == layout.col_label and fig.layout.yaxis.autorange == "reversed"
    # Streamlit turns click selection off while the drag mode is box or lasso select (tests/e2e clicks one)
    assert fig.layout.clickmode == "event+select" and fig.layout.dragmode not in ("select", "lasso")
    # one clickable point per coefficient, its customdata the display (row, col) under it
    custom = np.asarray(points.customdata)
    assert custom.shape == (32 * 32, 2)
    for row, col in custom[[0, 33, 1023]]:
        k = row * 32 + col
        assert points.x[k] == layout.col_values[col] and points.y[k] == layout.row_values[row]
    if key in ("fourier", "phase"):
        assert heat.x[0] == -16 and heat.x[16] == 0 and heat.x[-1] == 15  # signed, zero frequency centred
    else:
        assert heat.x[0] == 0 and heat.y[0] == 0  # (0, 0) top-left


@pytest.mark.parametrize("key", ["wavelet-haar-L3", "wavelet-db2-L2"])
def test_wavelet_subbands_are_outlined_and_labelled(key):
    layout = basis_from_key(key).layout(32, 32)
    fig = bf.coefficient_figure(_map()[0], key, "t")
    rects = [(s.x0, s.x1, s.y0, s.y1) for s in fig.layout.shapes]
    expected = [(b.cols[0] - 0.5, b.cols[1] - 0.5, b.rows[0] - 0.5, b.rows[1] - 0.5) for b in layout.subbands]
    assert rects == expected
    texts = [a.text for a in fig.layout.annotations]
    levels = int(key[-1])
    assert f"A{levels}" in texts and "D1" in texts and "H1" in texts and "V1" in texts
    grid = bf.basis_channels_figure([("essential", _map()), ("adversarial", _map())], key, "t")
    assert len(grid.layout.shapes) == 6 * len(layout.subbands)  # every panel of 2 maps × 3 channels


def test_hidden_layer_maps_show_the_channel_mean_and_say_so():
    hidden = _map(c=16)
    fig = bf.basis_channels_figure([("essential", hidden)], "fourier", "t", layer="layer1")
    assert len(fig.data) == 1
    np.testing.assert_allclose(np.asarray(fig.data[0].z), hidden.mean(axis=0), rtol=0, atol=1e-6)
    assert "mean of the 16 channels of layer1" in [a.text for a in fig.layout.annotations]
    plane, what = bf.map_plane(hidden, 3)
    np.testing.assert_array_equal(plane, hidden[3])
    assert what == "channel 3 of 16"
    assert bf.map_plane(hidden)[1] == "mean of its 16 channels"
    with pytest.raises(ValueError, match=r"channel in \[0, 16\)"):
        bf.map_plane(hidden, 16)


def test_outlined_picture_draws_the_subband_edges():
    picture = np.zeros((64, 64, 3), np.uint8)  # a 32 × 32 map enlarged twice
    out = bf.outlined_picture(picture, "wavelet-haar-L1", 32, 32)
    assert out[0, :].min() == 255 and out[:, 32].min() == 255 and out[32, :].min() == 255  # level-1 cross
    assert out[10, 10].max() == 0  # inside a subband: untouched
    assert bf.outlined_picture(picture, "dct", 32, 32) is picture


@pytest.mark.parametrize("key", KEYS[1:])
def test_filter_in_basis_is_the_basis_own_filter(key):
    """Against a second computation: the identity map gives the image back, and a map of one DCT / wavelet
    coefficient gives that coefficient's basis image times the coefficient (orthonormal bases)."""
    import torch

    image = _map(seed=3)
    np.testing.assert_allclose(filter_in_basis(image, np.ones_like(image), key), image, rtol=0, atol=1e-5)
    basis = basis_from_key(key)
    if basis.orthonormal:
        one = np.zeros_like(image)
        one[1, 2, 3] = 1
        coefficients = basis.forward(torch.as_tensor(image, dtype=torch.float64))  # (3, H, W) natural order
        unit = torch.zeros_like(coefficients)
        unit[1, 2, 3] = coefficients[1, 2, 3]
        expected = basis.inverse(unit).numpy()
        np.testing.assert_allclose(filter_in_basis(image, one, key), expected, rtol=0, atol=1e-6)


def test_manifests_without_basis_read_as_fourier_at_the_input():
    assert manifest_basis_key({}) == "fourier" and manifest_layer({"config": {}}) == "input"
    assert manifest_basis_key({"basis": "wavelet-db2-L3"}) == "wavelet-db2-L3"
    assert manifest_layer({"layer": "layer1"}) == "layer1" and manifest_layer({"config": {"layer": "layer2"}}) == "layer2"
    assert basis_from_key("wavelet-db2-L3").key == "wavelet-db2-L3"
    with pytest.raises(ValueError, match="expected a basis key"):
        basis_from_key("fourier-x")


@pytest.mark.parametrize("key", KEYS)
def test_class_maps_figure_draws_each_class_in_the_basis_layout(key):
    classes = ["cat", "dog", "ship"]
    maps = np.stack([_map(seed=s) for s in range(3)])  # (3 classes, 3, 32, 32)
    fig = bf.class_maps_figure(maps, classes, "Class maps", key)
    if key == "fourier":
        assert fig.to_json() == figures.class_maps_grid_figure(maps, classes, "Class maps").to_json()
        return
    assert [trace.type for trace in fig.data] == ["image"] * 3
    np.testing.assert_array_equal(np.asarray(fig.data[1].z), np.rint(maps[1].transpose(1, 2, 0) * 255))
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert bf.layout_note(key, 32, 32) in notes and "white: all three" in notes
    subbands = len(basis_from_key(key).layout(32, 32).subbands)
    assert len(fig.layout.shapes) == 3 * subbands  # wavelet subbands outlined on every class; none elsewhere


def test_class_maps_figure_at_a_hidden_layer_shows_channel_means():
    maps = np.stack([_map(c=16, seed=s) for s in range(2)])  # (2 classes, 16 channels, 32, 32)
    fig = bf.class_maps_figure(maps, ["cat", "dog"], "Class maps", "dct", layer="layer1")
    assert [trace.type for trace in fig.data] == ["heatmap"] * 2
    np.testing.assert_allclose(np.asarray(fig.data[0].z), maps[0].mean(axis=0), rtol=1e-6)
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "of the layer1 features" in notes and "mean over the 16 feature channels" in notes
    with pytest.raises(ValueError, match=r"expected \(3, C, H, W\) class maps"):
        bf.class_maps_figure(maps, ["cat", "dog", "ship"], "t", "dct")


def test_map_picture_is_a_composite_or_a_channel_mean():
    rgb, what = bf.map_picture(_map(), "dct", 2)
    assert what == "RGB composite" and rgb.shape == (64, 64, 3)
    np.testing.assert_array_equal(rgb[::2, ::2], np.rint(_map().transpose(1, 2, 0) * 255))
    hidden = _map(c=16)
    heat, what = bf.map_picture(hidden, "wavelet-haar-L3", 1)
    assert what == "mean of its 16 channels" and heat.shape == (32, 32, 3)
    outline = bf.outlined_picture(np.zeros((32, 32, 3), np.uint8), "wavelet-haar-L3", 32, 32)
    assert (heat[outline.any(axis=2)] == 255).all()  # the subband edges drawn white over the heat map
