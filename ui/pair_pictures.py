"""The pictures rendering of one image's views (the default): uint8 panels with captions and markdown tables.

Built from ImageViews with numpy and Pillow only (ui.pictures), no Streamlit: ui.pair_views shows them with
st.image, which the browser draws in milliseconds. The colour scales are the interactive charts' (ui.figures),
so both renderings read the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Generic, TypeVar

import numpy as np

from ui import figures
from ui.arrays import amplified_perturbation, display_map
from ui.basis_figures import is_hidden, layout_note, outlined_picture
from ui.image_views import ImageViews
from ui.map_basis import FOURIER, FREQUENCY_BASES, INPUT
from ui.pictures import (
    PANEL_PX,
    Panel,
    Shown,
    axis_gutter,
    colormap_lut,
    colour_bar,
    display_factor,
    encode_png,
    heat_picture,
    image_picture,
    indented,
    upscale,
    with_frequency_axes,
    with_margin,
)
from ui.tables import radial_table, top3_table

P = TypeVar("P", Panel, Shown)
PICTURE_ROWS = ("images", "maps_rgb", "maps_channels", "filtered", "spectra")  # PairPictures' rows of panels
PICTURE_BARS = ("maps_channels_bar", "spectra_bar")  # PairPictures' single colour-bar panels


@dataclass(frozen=True, eq=False)
class MapPictures(Generic[P]):
    """The pictures of the maps there are (essential, adversarial): one section of PairPictures."""

    maps_rgb: list[list[P]]  # one row: each map as an RGB composite with frequency axes
    maps_channels: list[list[P]]  # a row per map: one Viridis heat map per colour channel
    maps_channels_bar: P  # the heat maps' colour bar, lined up with their plot area
    note: str  # where the zero frequency sits, the band's edge, whether pooled
    radial: str  # markdown table: mean map value in octave-wide rings of frequency radius


@dataclass(frozen=True, eq=False)
class PairPictures(Generic[P]):
    """Every picture and table of one image's views; P is a Panel (arrays) or, once encoded, Shown (PNG bytes)."""

    images: list[list[P]]  # one row: clean, adversarial, amplified perturbation
    top3: str | None  # markdown table of the model's top-3 classes; None without probabilities
    maps: MapPictures[P] | None  # None without any map
    filtered: list[list[P]] | None  # one row: each image filtered by its map; None without a map
    spectra: list[list[P]]  # one row: log-magnitude spectra on one shared Magma scale
    spectra_bar: P  # the spectra's colour bar with its range
    spectra_note: str  # where the zero frequency sits and the band's edge


def frequency_note(h: int, pooled_from: int | None) -> str:
    """The caption under frequency pictures of side `h` (pooled from `pooled_from` frequencies, or None)."""
    edge = (pooled_from or h) // 2
    note = f"Centre = zero frequency (the mean colour), edges = ±{edge} cycles/image"
    if pooled_from:
        block = pooled_from // h
        return note + f"; pooled to {h}×{h}, each cell the mean of a {block}×{block} block of frequencies."
    return note + ("; shown at native resolution, one pixel per frequency (switch on interactive charts above to "
                   "zoom)." if h > 64 else ".")


def _predicted(probs: np.ndarray | None, classes: Sequence[str]) -> str:
    return f"predicted: {classes[int(np.argmax(probs))]}" if probs is not None else ""


def _image_panels(views: ImageViews, classes: Sequence[str]) -> list[Panel]:
    clean, adversarial = views.clean.image, views.adversarial
    size = clean.shape[-1]
    factor = display_factor(size)
    truth = f"true class: {classes[views.label]}" if views.label is not None else ""
    panels: list[Panel] = [(image_picture(clean, factor), f"Clean image · {size}×{size} px · {truth}")]
    if adversarial is not None:
        verdict = _predicted(adversarial.probs, classes) + (" (attack succeeded)" if views.success
                                                            else " (attack failed)")
        perturbation, gain = amplified_perturbation(clean, adversarial.image)
        panels += [(image_picture(adversarial.image, factor), f"Adversarial image · {verdict}"),
                   (image_picture(perturbation, factor),
                    f"Perturbation, amplified {f'×{gain:.0f} around mid-grey' if gain else '(no change)'}")]
    return panels


def _map_pictures(views: ImageViews, pooled: bool) -> MapPictures[Panel] | None:
    maps = [(name, m) for name, m in (("essential", views.essential), ("adversarial", views.adversarial_map))
            if m is not None]
    if not maps:
        return None
    if views.basis != FOURIER or views.layer != INPUT:
        return _basis_map_pictures(views, maps)
    shown = [(name, display_map(m, pooled)[0]) for name, m in maps]
    per_cell = display_map(maps[0][1], pooled)[1]  # frequencies one shown cell spans
    h = shown[0][1].shape[-1]
    pooled_from = maps[0][1].shape[-1] if per_cell > 1 else None
    map_factor = display_factor(h, max(PANEL_PX, views.clean.image.shape[-1]))  # a pooled 224 map as large as its image

    def axes(picture: np.ndarray) -> np.ndarray:
        return with_frequency_axes(picture, h, per_cell)

    viridis = colormap_lut(figures.MAP_SCALE)
    return MapPictures(
        maps_rgb=[[(axes(image_picture(m, map_factor)), f"{name.capitalize()} map, RGB composite") for name, m in shown]],
        maps_channels=[[(axes(upscale(heat_picture(m[k], viridis, 0.0, 1.0), map_factor)), f"{name} map · {channel} channel")
                        for k, channel in enumerate(figures.CHANNELS[:m.shape[0]])] for name, m in shown],
        maps_channels_bar=(indented(colour_bar(viridis, 2 * h * map_factor, 14), axis_gutter(h, per_cell)),
                           "map value: 0 (left) … 1 (right)"),
        note=frequency_note(h, pooled_from),
        radial=radial_table(maps),
    )


def _basis_map_pictures(views: ImageViews, maps: list[tuple[str, np.ndarray]]) -> MapPictures[Panel]:
    """The maps of a non-default basis or layer in the basis's layout: no frequency axes (the layout's note says
    what rows and columns mean), wavelet subbands outlined; a hidden layer's maps as their channel mean."""
    c, h, w = maps[0][1].shape
    factor = display_factor(h, max(PANEL_PX, views.clean.image.shape[-1]))
    viridis = colormap_lut(figures.MAP_SCALE)

    def heat(plane: np.ndarray) -> np.ndarray:
        return outlined_picture(upscale(heat_picture(plane, viridis, 0.0, 1.0), factor), views.basis, h, w)

    if is_hidden(maps[0][1]):
        rgb = [(heat(m.mean(axis=0)), f"{name.capitalize()} map at {views.layer}, mean of {c} channels")
               for name, m in maps]
        channels: list[list[Panel]] = []
    else:
        rgb = [(outlined_picture(image_picture(m, factor), views.basis, h, w),
                f"{name.capitalize()} map, RGB composite, {views.basis}") for name, m in maps]
        channels = [[(heat(m[k]), f"{name} map · {channel} channel") for k, channel in enumerate(figures.CHANNELS[:c])]
                    for name, m in maps]
    radial = (radial_table(maps) if views.basis in FREQUENCY_BASES and not is_hidden(maps[0][1])
              else f"(rings of frequency radius are a Fourier notion: none for {views.basis} maps)")
    return MapPictures(maps_rgb=[rgb], maps_channels=channels,
                       maps_channels_bar=(colour_bar(viridis, w * factor, 14), "map value: 0 (left) … 1 (right)"),
                       note=layout_note(views.basis, h, w, views.layer), radial=radial)


def _filtered_panels(views: ImageViews, classes: Sequence[str]) -> list[Panel]:
    factor = display_factor(views.clean.image.shape[-1])
    return [(image_picture(np.clip(side.filtered, 0, 1), factor),
             " · ".join(t for t in (name, _predicted(side.filtered_probs, classes)) if t))
            for name, side in (("Clean image × essential map", views.clean),
                               ("Adversarial image × adversarial map", views.adversarial))
            if side is not None and side.filtered is not None]


def _spectra_panels(views: ImageViews) -> tuple[list[Panel], Panel, str]:
    """The spectra on one shared scale, their colour bar and their note."""
    adversarial = views.adversarial
    spectra = [(name, s) for name, s in (
        ("clean image", views.clean.spectrum), ("adversarial image", adversarial.spectrum if adversarial else None),
        ("filtered clean image", views.clean.filtered_spectrum),
        ("filtered adversarial image", adversarial.filtered_spectrum if adversarial else None)) if s is not None]
    low, high = 0.0, max(float(np.nanmax(s)) if np.isfinite(s).any() else 0.0 for _, s in spectra)
    magma = colormap_lut(figures.SPECTRUM_SCALE)
    n = spectra[0][1].shape[-1]
    panels = [(with_frequency_axes(upscale(heat_picture(s, magma, low, high), display_factor(n)), n),
               f"Spectrum of the {name}") for name, s in spectra]
    bar = (indented(colour_bar(magma, 2 * n * display_factor(n), 14), axis_gutter(n)),
           f"log(1 + |F x|): {low:.0f} (left) … {high:.1f} (right)")
    return panels, bar, frequency_note(n, None)


def build_pair_pictures(views: ImageViews, classes: Sequence[str], pooled: bool = False) -> PairPictures[Panel]:
    """Every picture and table of one image's views, as uint8 arrays. pooled: large maps block-averaged to 32×32."""
    filtered = _filtered_panels(views, classes)
    spectra, spectra_bar, spectra_note = _spectra_panels(views)
    return PairPictures(images=[_image_panels(views, classes)],
                        top3=top3_table(views.label, views.probability_sets(), classes),
                        maps=_map_pictures(views, pooled), filtered=[filtered] if filtered else None,
                        spectra=[spectra], spectra_bar=spectra_bar, spectra_note=spectra_note)


def shown_panel(panel: Panel) -> Shown:
    """A (picture, caption) panel as ui.views.show_pictures takes it: PNG with transparent margins, caption, width."""
    picture = with_margin(panel[0])
    return encode_png(picture), panel[1], int(picture.shape[1])


def _encoded(section: PairPictures[Panel] | MapPictures[Panel]) -> dict:
    """The panel fields of one section as PNG bytes (see `shown_panel`), by field name."""
    out: dict = {}
    for f in fields(section):
        value = getattr(section, f.name)
        if f.name in PICTURE_ROWS and value is not None:
            out[f.name] = [[shown_panel(panel) for panel in row] for row in value]
        elif f.name in PICTURE_BARS:
            out[f.name] = shown_panel(value)
    return out


def encode_pair_pictures(pictures: PairPictures[Panel]) -> PairPictures[Shown]:
    """build_pair_pictures' panels (arrays) as PNG bytes with transparent margins, ready for st.image.

    Encoded once per image (cached), so an image switch sends stored bytes: nothing is encoded again.
    """
    maps = replace(pictures.maps, **_encoded(pictures.maps)) if pictures.maps is not None else None
    return replace(pictures, maps=maps, **_encoded(pictures))


__all__ = ["PICTURE_ROWS", "MapPictures", "Panel", "PairPictures", "Shown", "build_pair_pictures",
           "encode_pair_pictures", "frequency_note", "shown_panel"]
