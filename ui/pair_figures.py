"""The interactive rendering of one image's views: Plotly charts (zoom, hover values), built from ImageViews.

No Streamlit here (ui.pair_views draws them). Few charts with several panels rather than many small ones:
each chart costs the browser a Plotly instance, and switching images redraws them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ui import figures
from ui.arrays import amplified_perturbation, display_map, pooled_frequency_axis
from ui.basis_figures import basis_channels_figure, basis_rgb_figure, is_hidden
from ui.image_views import ImageViews
from ui.map_basis import FOURIER, FREQUENCY_BASES, INPUT, basis_from_key

FILTER_TITLE = {"fourier": "x_F = Re(F⁻¹(M ⊙ F x))", "phase": "x_F = Re(F⁻¹(|F x| · exp(i · M ⊙ ∠F x)))",
                "dct": "x_F = IDCT(M ⊙ DCT x)", "wavelet": "x_F = IDWT(M ⊙ DWT x)"}  # by basis name


@dataclass(frozen=True, eq=False)
class PairFigures:
    """Every chart of one image's views; None where its data is missing (no map, no model)."""

    images: go.Figure  # clean, adversarial and the amplified perturbation
    top3: go.Figure | None  # the model's top-3 classes, one bar panel per image seen
    maps_rgb: go.Figure | None  # both maps as RGB composites on frequency axes
    radial: go.Figure | None  # mean map value by frequency radius
    maps_channels: go.Figure | None  # one heat map per map and colour channel
    filtered: go.Figure | None  # each image filtered by its map
    spectra: go.Figure  # log-magnitude spectra on one scale


def _images_figure(views: ImageViews, classes: Sequence[str]) -> go.Figure:
    clean, adversarial = views.clean.image, views.adversarial
    size = clean.shape[-1]
    truth = f"true class: {classes[views.label]}" if views.label is not None else ""
    panels = [(f"Clean image<br><sup>{size}×{size} px, {truth}</sup>", clean)]
    if adversarial is not None:
        adv_pred = int(np.argmax(adversarial.probs)) if adversarial.probs is not None else None
        verdict = ("predicted: " + classes[adv_pred]) if adv_pred is not None else ""
        verdict += " (attack succeeded)" if views.success else " (attack failed)"
        picture, gain = amplified_perturbation(clean, adversarial.image)
        panels += [(f"Adversarial image<br><sup>{verdict}</sup>", adversarial.image),
                   (f"Perturbation, amplified<br><sup>{f'×{gain:.0f} around mid-grey' if gain else 'no change'}</sup>",
                    picture)]
    return figures.image_row_figure(panels, "Clean, adversarial and the perturbation between them")


def _map_figures(views: ImageViews, pooled: bool) -> tuple[go.Figure, go.Figure | None, go.Figure] | None:
    """(RGB composites, radial profile, channel heat maps) of the maps there are; None without a map.

    Fourier maps as always; another basis's on its own layout (ui.basis_figures), with a radial profile only for
    the centred spectra; a hidden layer's maps as their channel mean, no RGB composite."""
    maps = [(name, m) for name, m in (("Essential map", views.essential), ("Adversarial map", views.adversarial_map))
            if m is not None]
    if not maps:
        return None
    if views.basis != FOURIER or views.layer != INPUT:
        return _basis_map_figures(views, maps)
    shown = [(name, *display_map(m, pooled)) for name, m in maps]
    axes = {}
    if shown[0][2] > 1:  # pooled: each cell's centre frequency on the axes
        h, w = maps[0][1].shape[-2:]
        size = shown[0][1].shape[-1]
        axes = {"axis_y": pooled_frequency_axis(h, size), "axis_x": pooled_frequency_axis(w, size)}
    rgb = figures.maps_rgb_row_figure([(name, m) for name, m, _ in shown],
                                      "The maps as RGB composites (white: kept in all channels)", **axes)
    channels = figures.map_channels_grid_figure([(name.split()[0].lower(), m) for name, m, _ in shown],
                                                "One heat map per colour channel", **axes)
    radial = figures.radial_profile_figure([(name.split()[0].lower(), m) for name, m in maps],
                                           "Radial profile of the maps")
    return rgb, radial, channels


def _basis_map_figures(views: ImageViews, maps: list[tuple[str, np.ndarray]]) -> tuple[go.Figure, go.Figure | None,
                                                                                      go.Figure]:
    """The maps of a non-default basis or layer, drawn in the basis's layout."""
    rows = [(name.split()[0].lower(), m) for name, m in maps]
    where = f" at {views.layer}" if views.layer != INPUT else ""
    channels = basis_channels_figure(rows, views.basis, f"One heat map per colour channel, {views.basis} basis{where}",
                                     layer=views.layer)
    if is_hidden(maps[0][1]):
        rgb = basis_channels_figure(rows, views.basis, f"The maps at {views.layer}: mean over the layer's "
                                    f"{maps[0][1].shape[0]} channels", layer=views.layer)
    else:
        rgb = basis_rgb_figure(maps, views.basis, f"The maps as RGB composites, {views.basis} basis (white: kept in "
                               "all channels)")
    radial = (figures.radial_profile_figure(rows, "Radial profile of the maps")
              if views.basis in FREQUENCY_BASES and not is_hidden(maps[0][1]) else None)
    return rgb, radial, channels


def _spectra_figure(views: ImageViews) -> go.Figure:
    adversarial = views.adversarial
    spectra = [(name, s) for name, s in (
        ("clean", views.clean.spectrum), ("adversarial", adversarial.spectrum if adversarial else None),
        ("clean filtered", views.clean.filtered_spectrum),
        ("adversarial filtered", adversarial.filtered_spectrum if adversarial else None)) if s is not None]
    return figures.spectra_figure(spectra, "Log-magnitude spectra log(1 + |F x|), channel mean")


def build_pair_figures(views: ImageViews, classes: Sequence[str], pooled: bool = False) -> PairFigures:
    """Every chart of one image's views. pooled: large maps block-averaged to 32×32, as the correlations see them."""
    probs = views.probability_sets()
    top3 = (figures.top_k_row_figure(probs, classes, "The model's top 3 classes for each image", true_label=views.label)
            if probs else None)
    maps = _map_figures(views, pooled)
    filtered = [(name, np.clip(side.filtered, 0, 1)) for name, side in (
        ("Clean image × essential map", views.clean), ("Adversarial image × adversarial map", views.adversarial))
        if side is not None and side.filtered is not None]
    return PairFigures(
        images=_images_figure(views, classes), top3=top3, maps_rgb=maps[0] if maps else None,
        radial=maps[1] if maps else None, maps_channels=maps[2] if maps else None,
        filtered=figures.image_row_figure(filtered, FILTER_TITLE[basis_from_key(views.basis).name]
                                          + ": what the model sees through each map") if filtered else None,
        spectra=_spectra_figure(views),
    )


__all__ = ["PairFigures", "build_pair_figures"]
