"""The pictures behind the app's fast views (ui/pictures.py) and the pictures rendering of one image's views."""

from __future__ import annotations

import io

import numpy as np
import plotly.colors
import pytest

from ui import figures
from ui.arrays import radial_bands, radial_profile
from ui.pictures import (
    AXIS_BOTTOM,
    AXIS_RGB,
    LUT_SIZE,
    NAN_RGB,
    PANEL_MARGIN,
    axis_gutter,
    colormap_lut,
    colour_bar,
    display_factor,
    encode_png,
    frequency_ticks,
    heat_picture,
    image_picture,
    indented,
    upscale,
    value_range,
    with_frequency_axes,
    with_margin,
)

RNG = np.random.default_rng(0)


def _hex(colour: str) -> list[int]:
    return [int(colour[i:i + 2], 16) for i in (1, 3, 5)]


@pytest.mark.parametrize("name", ["Magma", "Viridis"])
def test_lut_endpoints_are_the_plotly_scale_ends(name):
    lut = colormap_lut(name)
    assert lut.shape == (LUT_SIZE, 3) and lut.dtype == np.uint8
    scale = plotly.colors.get_colorscale(name)
    assert lut[0].tolist() == _hex(scale[0][1]) and lut[-1].tolist() == _hex(scale[-1][1])
    assert lut[0].tolist() == _hex(getattr(plotly.colors.sequential, name)[0])


def test_lut_passes_through_every_stop_and_interpolates_between():
    colours = plotly.colors.sequential.Magma  # 10 evenly spaced stops
    lut = colormap_lut(colours)
    for k, colour in enumerate(colours):
        at = k / (len(colours) - 1) * (LUT_SIZE - 1)
        if float(at).is_integer():  # stops that fall on an entry (first and last here)
            assert lut[int(at)].tolist() == _hex(colour)
    # each entry lies between its two neighbouring stops, channel by channel
    stops = np.array([_hex(c) for c in colours], float)
    for i in range(LUT_SIZE):
        k = min(int(i / (LUT_SIZE - 1) * (len(colours) - 1)), len(colours) - 2)
        low, high = np.minimum(stops[k], stops[k + 1]), np.maximum(stops[k], stops[k + 1])
        assert np.all(lut[i] >= low - 0.5) and np.all(lut[i] <= high + 0.5)


def test_lut_of_the_app_spectrum_scale_and_bad_scales():
    lut = colormap_lut(figures.SPECTRUM_SCALE)  # Magma with a pure black first colour
    assert lut[0].tolist() == [0, 0, 0] and lut[-1].tolist() == _hex(plotly.colors.sequential.Magma[-1])
    assert colormap_lut(["rgb(0, 0, 0)", "rgb(255, 255, 255)"])[128].tolist() == [128, 128, 128]
    with pytest.raises(ValueError, match="at least two colours"):
        colormap_lut(["#000000"])
    with pytest.raises(ValueError, match="expected a colour"):
        colormap_lut(["black", "white"])
    assert not colormap_lut("Magma").flags.writeable  # cached and shared: read-only


def test_heat_picture_maps_min_to_first_and_max_to_last_colour():
    lut = colormap_lut("Magma")
    values = RNG.normal(size=(5, 7)) * 3 + 1
    picture = heat_picture(values, lut)
    assert picture.shape == (5, 7, 3) and picture.dtype == np.uint8
    low, high = np.unravel_index(values.argmin(), values.shape), np.unravel_index(values.argmax(), values.shape)
    assert picture[low].tolist() == lut[0].tolist() and picture[high].tolist() == lut[-1].tolist()
    # a fixed range: the middle value to the middle entry, values outside clipped to the ends
    fixed = heat_picture(np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]]), lut, 0.0, 1.0)
    assert fixed[0].tolist() == [lut[0].tolist(), lut[0].tolist(), lut[128].tolist(), lut[-1].tolist(),
                                 lut[-1].tolist()]


def test_heat_picture_handles_nan_and_constant_inputs():
    lut = colormap_lut("Viridis")
    values = np.array([[0.0, np.nan], [np.inf, 2.0]])
    picture = heat_picture(values, lut)
    assert picture[0, 0].tolist() == lut[0].tolist() and picture[1, 1].tolist() == lut[-1].tolist()
    assert picture[0, 1].tolist() == list(NAN_RGB) and picture[1, 0].tolist() == list(NAN_RGB)
    constant = heat_picture(np.full((3, 4), 0.7), lut)  # no range: the first colour, no division by zero
    assert (constant == lut[0]).all()
    assert (heat_picture(np.full((2, 2), np.nan), lut) == NAN_RGB).all()
    assert (heat_picture(np.ones((2, 2)), lut, 0.0, 1.0) == lut[-1]).all()  # a fixed range still applies
    assert value_range(np.full(3, np.nan)) == (0.0, 0.0)
    assert value_range([np.array([1.0, np.nan]), np.array([-2.0, 5.0])]) == (-2.0, 5.0)
    with pytest.raises(ValueError, match=r"\(H, W\) array"):
        heat_picture(np.zeros((3, 2, 2)), lut)


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 3)])
def test_upscale_repeats_each_pixel_into_a_block(shape):
    picture = RNG.integers(0, 256, shape, dtype=np.uint8)
    big = upscale(picture, 6)
    assert big.shape == (24, 30, *shape[2:]) and big.dtype == np.uint8
    np.testing.assert_array_equal(big[::6, ::6], picture)  # one pixel per block
    blocks = big.reshape(4, 6, 5, 6, *shape[2:])
    assert (blocks == blocks[:, :1, :, :1]).all()  # crisp: every block is one colour
    assert upscale(picture, 1) is picture
    with pytest.raises(ValueError, match="factor >= 1"):
        upscale(picture, 0)


@pytest.mark.parametrize("size, factor", [(32, 6), (64, 3), (224, 1), (1, 192), (500, 1)])
def test_display_factor(size, factor):
    assert display_factor(size) == factor
    assert display_factor(32, 224) == 7


def test_image_picture_is_hwc_uint8_enlarged():
    image = RNG.random((3, 8, 8)).astype(np.float32)
    picture = image_picture(image, 3)
    assert picture.shape == (24, 24, 3) and picture.dtype == np.uint8
    assert picture[0, 0].tolist() == np.rint(image[:, 0, 0] * 255).astype(int).tolist()


def test_colour_bar_runs_from_first_to_last_colour():
    lut = colormap_lut("Magma")
    bar = colour_bar(lut, 100, 10)
    assert bar.shape == (10, 100, 3) and bar.dtype == np.uint8
    assert bar[:, 0].tolist() == [lut[0].tolist()] * 10 and bar[:, -1].tolist() == [lut[-1].tolist()] * 10
    vertical = colour_bar(lut, 100, 10, vertical=True)
    assert vertical.shape == (100, 10, 3)
    assert vertical[0, 0].tolist() == lut[-1].tolist() and vertical[-1, 0].tolist() == lut[0].tolist()  # high on top


def test_margin_is_transparent_and_png_is_lossless():
    from PIL import Image

    picture = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    padded = with_margin(picture, 2)
    assert padded.shape == (6, 9, 4) and padded.dtype == np.uint8
    np.testing.assert_array_equal(padded[:, 2:7, :3], picture)
    assert (padded[:, 2:7, 3] == 255).all() and (padded[:, :2, 3] == 0).all() and (padded[:, 7:, 3] == 0).all()
    for array in (picture, padded):
        decoded = np.asarray(Image.open(io.BytesIO(encode_png(array))))
        np.testing.assert_array_equal(decoded, array)
    rgba = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)  # a picture with its own transparent parts keeps them
    np.testing.assert_array_equal(with_margin(rgba, 2)[:, 2:7], rgba)
    shifted = indented(picture, 3)
    assert shifted.shape == (6, 8, 4) and (shifted[:, :3, 3] == 0).all() and (shifted[:, 3:, 3] == 255).all()
    np.testing.assert_array_equal(shifted[:, 3:, :3], picture)
    np.testing.assert_array_equal(indented(rgba, 2)[:, 2:], rgba)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) or \(H, W, 4\) picture"):
        with_margin(np.zeros((2, 2), np.uint8))


def test_frequency_ticks_mark_the_quarters_of_the_band():
    assert frequency_ticks(32) == [-16, -8, 0, 8]
    assert frequency_ticks(224) == [-112, -56, 0, 56]
    assert frequency_ticks(64) == [-32, -16, 0, 16]
    assert frequency_ticks(2) == [-1, 0] and frequency_ticks(1) == [0]
    with pytest.raises(ValueError, match="cells >= 1"):
        frequency_ticks(0)


def plot_area(panel: np.ndarray) -> np.ndarray:
    """The picture inside a with_frequency_axes panel (opaque), without its gutters: (H, W, 3)."""
    inside = panel[:-AXIS_BOTTOM, panel.shape[1] - (panel.shape[0] - AXIS_BOTTOM):]  # square pictures
    assert (inside[..., 3] == 255).all()
    return inside[..., :3]


@pytest.mark.parametrize(("cells", "factor"), [(32, 6), (32, 7), (224, 1)])
def test_frequency_axes_keep_the_picture_and_tick_each_quarter(cells, factor):
    picture = upscale(RNG.integers(0, 256, (cells, cells, 3), dtype=np.uint8), factor)  # (P, P, 3)
    size = cells * factor
    per_cell = 7 if cells == 32 and factor == 7 else 1
    panel = with_frequency_axes(picture, cells, cycles_per_cell=per_cell)
    left = axis_gutter(cells, per_cell)
    assert panel.shape == (size + AXIS_BOTTOM, left + size, 4) and panel.dtype == np.uint8
    np.testing.assert_array_equal(plot_area(panel), picture)
    # the first row under the picture holds only the tick marks: one at the centre column of each ticked cell
    centre = [int((f + cells // 2 + 0.5) * factor) for f in frequency_ticks(cells)]
    below = panel[size]  # (W, 4)
    assert np.flatnonzero(below[:, 3]).tolist() == [left + c for c in centre]
    assert (below[below[:, 3] > 0, :3] == AXIS_RGB).all()
    beside = panel[:size, left - 1]  # the column just left of the picture: the vertical axis' ticks
    assert np.flatnonzero(beside[:, 3]).tolist() == centre
    assert (panel[:, 0, 3] == 0).all()  # the widest label fits: the first column stays empty
    gutter = np.concatenate([panel[:, :left].reshape(-1, 4), panel[size:].reshape(-1, 4)])
    assert (gutter[:, 3] == 0).mean() > 0.6  # mostly transparent: the page shows through around the labels
    with pytest.raises(ValueError, match="equal cells"):
        with_frequency_axes(picture[:-1], cells)


def test_radial_bands_average_the_radial_profile_by_ring_size():
    m = RNG.random((3, 32, 32))
    bands = radial_bands(m)
    assert [(a, b) for a, b, _ in bands] == [(0, 0), (1, 2), (3, 4), (5, 8), (9, 16), (17, 23)]
    radii, values = radial_profile(m)
    counts = np.bincount(np.rint(np.hypot(*np.meshgrid(np.arange(32) - 16, np.arange(32) - 16))).astype(int).ravel())
    for first, last, mean in bands:
        ring = (radii >= first) & (radii <= last)
        assert mean == pytest.approx(np.average(values[ring], weights=counts[radii[ring]]))
    assert radial_bands(np.ones((224, 224)))[-1][:2] == (129, 158)


# ---------- the pictures rendering of one image's views (ui.pair_pictures, no Streamlit run) ----------

CLASSES = ("cat", "dog", "ship")


def _views(size: int, *, maps: bool = True):
    """An ImageViews with random images and maps; without `maps`, no map, nothing filtered (a model is irrelevant)."""
    from ui.arrays import log_spectrum
    from ui.image_views import ImageSide, ImageViews

    clean = RNG.random((3, size, size)).astype(np.float32)
    adversarial = np.clip(clean + 0.01, 0, 1)
    probs = np.array([0.7, 0.2, 0.1])

    def side(image: np.ndarray, probs: np.ndarray) -> ImageSide:
        if not maps:
            return ImageSide(image=image, probs=probs, spectrum=log_spectrum(image), map=None, map_status="not trained")
        map_display = (RNG.random((3, size, size)) > 0.9).astype(np.float32)
        return ImageSide(image=image, probs=probs, spectrum=log_spectrum(image), map=map_display, map_status="kept",
                         filtered=image * 0.5, filtered_spectrum=log_spectrum(image * 0.5), filtered_probs=probs)

    return ImageViews(clean=side(clean, probs), adversarial=side(adversarial, probs[::-1].copy()), label=0,
                      success=True, linf=0.01, l2=0.5, cosine=None)


def test_pair_pictures_have_every_view_at_one_size():
    from ui.pair_pictures import build_pair_pictures

    pictures = build_pair_pictures(_views(32), CLASSES)
    rows = {"images": pictures.images, "maps_rgb": pictures.maps.maps_rgb, "maps_channels": pictures.maps.maps_channels,
            "filtered": pictures.filtered, "spectra": pictures.spectra}
    shapes = {name: [p.shape for row in panels for p, _ in row] for name, panels in rows.items()}
    assert [len(v) for v in shapes.values()] == [3, 2, 6, 2, 4]
    left = axis_gutter(32)
    assert 18 <= left <= 26 and axis_gutter(32, 7) > left  # "-16" is narrower than "-112"
    framed = (192 + AXIS_BOTTOM, left + 192, 4)  # frequency pictures: 192 px plus their axes' gutters
    assert {name: set(v) for name, v in shapes.items()} == {
        "images": {(192, 192, 3)}, "filtered": {(192, 192, 3)},  # 32×32 enlarged 6×
        "maps_rgb": {framed}, "maps_channels": {framed}, "spectra": {framed}}
    for name in ("maps_rgb", "maps_channels", "spectra"):
        assert {plot_area(p).shape for row in rows[name] for p, _ in row} == {(192, 192, 3)}
    bar = pictures.maps.maps_channels_bar[0]  # lined up with the heat maps' plot area, right of their axis gutter
    assert bar.shape == (14, left + 384, 4) and (bar[:, :left, 3] == 0).all()
    np.testing.assert_array_equal(bar[:, left:, :3], colour_bar(colormap_lut(figures.MAP_SCALE), 384, 14))
    assert "±16 cycles/image" in pictures.maps.note and "Centre = zero frequency" in pictures.spectra_note
    top3 = pictures.top3.splitlines()
    assert top3[0] == "| | clean | adversarial | clean × essential map | adversarial × adversarial map |"
    assert top3[2] == "| 1 | cat ✓ · 70.0 % | ship · 70.0 % | cat ✓ · 70.0 % | ship · 70.0 % |"
    assert pictures.maps.radial.splitlines()[2].startswith("| 0 | ")
    captions = [text for row in pictures.images for _, text in row]
    assert captions[1] == "Adversarial image · predicted: ship (attack succeeded)"
    assert [text for row in pictures.filtered for _, text in row] == [
        "Clean image × essential map · predicted: cat", "Adversarial image × adversarial map · predicted: ship"]


def test_pair_pictures_of_large_maps_native_or_pooled():
    from ui.pair_pictures import build_pair_pictures

    views = _views(224)
    native = build_pair_pictures(views, CLASSES)
    rgb = plot_area(native.maps.maps_rgb[0][0][0])
    assert rgb.shape == (224, 224, 3)  # one pixel per frequency
    np.testing.assert_array_equal(rgb, np.rint(views.essential.transpose(1, 2, 0) * 255))
    assert "native resolution" in native.maps.note and "zoom" in native.maps.note
    pooled = build_pair_pictures(views, CLASSES, pooled=True)
    rgb = plot_area(pooled.maps.maps_rgb[0][0][0])
    assert rgb.shape == (224, 224, 3)  # 32×32 cells, each 7×7 pixels: as large as the image beside it
    blocks = rgb.reshape(32, 7, 32, 7, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()
    block_means = views.essential.reshape(3, 32, 7, 32, 7).mean(axis=(2, 4)).transpose(1, 2, 0)  # (32, 32, 3)
    np.testing.assert_array_equal(blocks[:, 0, :, 0], np.rint(block_means * 255))
    assert "pooled to 32×32" in pooled.maps.note and "7×7" in pooled.maps.note
    assert "±112 cycles/image" in pooled.maps.note
    assert {p.shape for row in pooled.images for p, _ in row} == {(224, 224, 3)}


def test_pair_pictures_without_maps_or_model():
    from ui.pair_pictures import build_pair_pictures
    from ui.tables import top3_table

    views = _views(32, maps=False)
    pictures = build_pair_pictures(views, CLASSES)
    assert pictures.maps is None and pictures.filtered is None
    assert len(pictures.spectra[0]) == 2 and len(pictures.images[0]) == 3
    assert pictures.top3.splitlines()[0] == "| | clean | adversarial |"
    assert top3_table(None, [], CLASSES) is None
    assert top3_table(1, [("clean", np.array([0.1, 0.2, 0.7]))], ["a|b", "c", "d"]).splitlines()[-1] == \
        "| 3 | a\\|b · 10.0 % |"


def test_encoded_pair_pictures_are_pngs_with_margins():
    from PIL import Image

    from ui.pair_pictures import build_pair_pictures, encode_pair_pictures

    pictures = build_pair_pictures(_views(32), CLASSES)
    shown = encode_pair_pictures(pictures)
    pairs = [(pictures.images, shown.images), (pictures.maps.maps_rgb, shown.maps.maps_rgb),
             (pictures.maps.maps_channels, shown.maps.maps_channels), (pictures.filtered, shown.filtered),
             (pictures.spectra, shown.spectra), ([[pictures.spectra_bar]], [[shown.spectra_bar]]),
             ([[pictures.maps.maps_channels_bar]], [[shown.maps.maps_channels_bar]])]
    for rows, encoded_rows in pairs:
        for row, encoded in zip(rows, encoded_rows, strict=True):
            for (array, text), (png, shown_text, width) in zip(row, encoded, strict=True):
                decoded = np.asarray(Image.open(io.BytesIO(png)))
                assert shown_text == text and width == array.shape[1] + 2 * PANEL_MARGIN == decoded.shape[1]
                np.testing.assert_array_equal(decoded[:, PANEL_MARGIN:-PANEL_MARGIN, :array.shape[2]], array)
    assert shown.top3 == pictures.top3 and shown.maps.radial == pictures.maps.radial
    assert shown.spectra_note == pictures.spectra_note and shown.maps.note == pictures.maps.note
