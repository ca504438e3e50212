"""The Lab's mask editor on the page: pick a start map, keep or remove coefficients, click single ones, and watch the
filtered image and the model's top 3 change; download the mask.

Widgets keyed `lab_editor_*`; the state (the clicks) lives in st.session_state under `lab_editor_clicks`, reset
whenever the start map changes. The computations are ui.editor_compute's (timed by bench/bench_editor.py).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui.basis_figures import is_hidden, layout_note, map_layout
from ui.editor_compute import clicked_cells, update_editor
from ui.figures import figure_config
from ui.map_basis import FREQUENCY_BASES, INPUT, experiment_basis_key, experiment_layer
from ui.mask_editor import (
    BAND_KINDS,
    BAND_PASS,
    KEEP,
    REMOVE,
    Edit,
    band_region,
    max_radius,
    subband_labels,
    subband_region,
)
from ui.pictures import display_factor, image_picture
from ui.tables import top3_table

ONES = "all ones (every coefficient kept)"
NO_BAND = "no band"
BASIS_CHOICES = ("fourier", "phase", "dct", "wavelet-haar-L3", "wavelet-db2-L3")  # keys offered when starting from ones


@dataclass(frozen=True)
class StartMap:
    """A map the editor can start from."""

    label: str  # what the select box shows
    map: np.ndarray  # (C, H, W) float32 in display order
    basis: str  # its basis key
    layer: str  # where it filters


def start_maps(experiment: object, index: int | None, label: int) -> list[StartMap]:
    """The maps of the experiment the editor can start from for image `index` (None: an uploaded image): its
    essential and adversarial maps where kept, the class map of `label` for every class-map set."""
    basis, layer = experiment_basis_key(experiment), experiment_layer(experiment)
    out: list[StartMap] = []
    if index is not None and experiment.has_images:
        essential, _ = experiment.essential_map(index)
        if essential is not None:
            out.append(StartMap(f"essential map of image #{index}", essential, basis, layer))
        for key in experiment.attack_keys:
            adversarial, _ = experiment.adversarial_map(key, index)
            if adversarial is not None:
                out.append(StartMap(f"adversarial map of image #{index} ({key})", adversarial, basis, layer))
    for key in experiment.class_map_keys():
        try:
            class_map = experiment.class_maps(key)[label]
        except (KeyError, OSError, IndexError):  # a results-only copy without the class maps' values
            continue
        out.append(StartMap(f"class map of {experiment.classes[label]} ({key})", np.asarray(class_map, np.float32),
                            basis, layer))
    return out


def _ones(basis: str, image: np.ndarray) -> StartMap:
    return StartMap(ONES, np.ones(image.shape, np.float32), basis, INPUT)


def _region_ui(start: StartMap) -> tuple[np.ndarray | None, str]:
    """The band (frequency bases) or subband (wavelets) widgets -> (H, W) region or None, and keep/remove."""
    h, w = start.map.shape[-2:]
    layout = map_layout(start.basis, h, w)
    if layout.subbands:
        st.markdown("**Subbands to keep** (unticked ones are removed)")
        labels = subband_labels(layout)
        cols = st.columns(min(4, len(labels)))
        keep = [name for i, name in enumerate(labels)
                if cols[i % len(cols)].checkbox(name, value=True, key=f"lab_editor_band_{name.replace(' ', '_')}")]
        return (None if len(keep) == len(labels) else subband_region(layout, keep, (h, w))), KEEP
    cols = st.columns([2, 1, 3])
    kind = cols[0].radio("Radial band", [NO_BAND, *BAND_KINDS], horizontal=True, key="lab_editor_band")
    action = cols[1].radio("Coefficients in the band", [KEEP, REMOVE], horizontal=True, key="lab_editor_action")
    top = max_radius(layout)
    unit = "cycles per image" if start.basis in FREQUENCY_BASES else "half cycles per image"
    if kind == NO_BAND:
        return None, action
    if kind == BAND_PASS:
        low, high = cols[2].slider(f"Band radius ({unit})", 0.0, float(np.ceil(top)), (2.0, 8.0), step=0.5,
                                   key="lab_editor_range")
        return band_region(layout, kind, low, high), action
    radius = cols[2].slider(f"Radius ({unit})", 0.0, float(np.ceil(top)), 4.0, step=0.5, key="lab_editor_radius")
    return band_region(layout, kind, radius), action


def _clicks(start: StartMap, signature: tuple) -> list[tuple[int, int]]:
    """This start map's clicks so far, with the last selection event on the heat map added (then cleared by a
    new chart key, so that clicking the same coefficient again flips it back)."""
    state = st.session_state.setdefault("lab_editor_clicks", {"for": None, "cells": [], "chart": 0})
    if state["for"] != signature:
        state.update({"for": signature, "cells": [], "chart": state["chart"] + 1})
    event = st.session_state.get(f"lab_editor_map_{state['chart']}")
    points = list((event or {}).get("selection", {}).get("points", []))
    if points:
        state["cells"] = [*state["cells"], *clicked_cells(points, start.basis, *start.map.shape[-2:])]
        state["chart"] += 1
    return state["cells"]


def render_mask_editor(experiment: object, model: object | None, image: np.ndarray | None, index: int | None,
                       label: int, classes: Sequence[str]) -> None:
    """The editor for one (3, H, W) image (None: say what to do first)."""
    st.subheader("Mask editor: how few coefficients does the model need?")
    if not st.toggle("Open the mask editor", key="lab_editor_on",
                     help="Start from a map (or all ones), keep or remove bands, subbands or single coefficients, and "
                          "watch the filtered image and the model's top 3 change"):
        return
    if image is None:
        st.info("Choose an image above to edit a mask for it.")
        return
    choices = {s.label: s for s in start_maps(experiment, index, label)}
    cols = st.columns([3, 2])
    picked = cols[0].selectbox("Start from", [*choices, ONES], key="lab_editor_start")
    if picked == ONES:
        basis = cols[1].selectbox("Basis", BASIS_CHOICES, key="lab_editor_basis",
                                  help="Fourier amplitude, Fourier phase, DCT or a wavelet pyramid (docs/BASES.md)")
        start = _ones(basis, image)
    else:
        start = choices[picked]
        cols[1].markdown(f"Basis **{start.basis}**" + (f" at **{start.layer}**" if start.layer != INPUT else ""))
    channel = None
    if is_hidden(start.map):
        pick = st.selectbox("Heat map shows", ["mean of all channels", *range(start.map.shape[0])],
                            key="lab_editor_channel", format_func=lambda c: c if isinstance(c, str) else f"channel {c}")
        channel = None if isinstance(pick, str) else int(pick)
    region, action = _region_ui(start)
    clicks = _clicks(start, (picked, start.basis))
    view = update_editor(model, image, start.map, start.basis, Edit(region, action, clicks), layer=start.layer,
                         channel=channel)
    left, right = st.columns([3, 2])
    with left:
        chart_key = f"lab_editor_map_{st.session_state['lab_editor_clicks']['chart']}"
        st.plotly_chart(view.figure, key=chart_key, on_select="rerun", selection_mode=("points", "box"),
                        config=figure_config("lab_mask"))
        st.caption(layout_note(start.basis, *start.map.shape[-2:], start.layer))
    with right:
        if view.filtered is not None:
            factor = display_factor(image.shape[-1])
            st.image(image_picture(view.filtered, factor), caption="the image filtered by the mask")
        else:
            st.info(f"The mask filters the model's {start.layer} features, not the image: there is no filtered "
                    "image to show. The predictions below are the model's with those features filtered.")
        st.markdown("**The model's top 3 through the mask**")
        if view.probs is not None:
            st.markdown(top3_table(label, [("filtered", view.probs)], classes))
        else:
            st.caption("no model loaded: predictions unavailable")
        st.metric("Entries kept", f"{100 * view.kept:.1f} %", help="share of the mask's C·H·W entries above 0.5")
        buttons = st.columns(2)
        if buttons[0].button("Clear the clicks", key="lab_editor_clear", disabled=not clicks):
            st.session_state["lab_editor_clicks"]["cells"] = []
            st.rerun(scope="fragment")
        buffer = io.BytesIO()
        np.save(buffer, view.mask)
        buttons[1].download_button("Mask (.npy)", data=buffer.getvalue(), file_name=f"mask_{start.basis}.npy",
                                   mime="application/octet-stream", key="lab_editor_download",
                                   help=f"(C, H, W) float32 in [0, 1], {start.basis} display order")


__all__ = ["ONES", "StartMap", "render_mask_editor", "start_maps"]
