"""Streamlit views shared by pages: one image's full set of views (Explore and Lab), charts, downloads.

`render_pair_views` draws the dict built by ui.compute.assemble_views: clean and adversarial images
with the perturbation, the two maps (RGB composite, per-channel heat maps, pooled view for large
maps), the filtered images, spectra, top-3 classes, cosine and radial profile, each with a caption.

Two renderings of the same views: pictures (the default: st.image panels, a markdown table of the
top-3 classes and of the radial profile; the browser draws them in milliseconds) and interactive
Plotly charts (zoom, hover values; a toggle away, but each chart costs the browser hundreds of ms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import figures
from ui.arrays import amplified_perturbation, pool_map, pooled_frequency_axis, radial_bands, top_k
from ui.downloads import csv_bytes, figure_html, npy_bytes, png_bytes
from ui.pictures import (
    PANEL_PX,
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

POOL_SIZE = 32  # pooled view of large maps, as the correlations pool them


def chart(fig: go.Figure, key: str, filename: str | None = None) -> None:
    """A Plotly chart whose toolbar camera button saves a PNG (browser-rendered; no kaleido needed)."""
    st.plotly_chart(fig, key=key, config=figures.figure_config(filename or key))


def html_download(fig: go.Figure, key: str, filename: str, label: str = "Figure (interactive HTML)") -> None:
    """Download button that builds the figure's standalone HTML only when clicked."""
    st.download_button(label, data=lambda: figure_html(fig), file_name=filename, mime="text/html", key=key)


def caption(text: str) -> None:
    """A teaching caption under a view."""
    st.caption(text)


def _maybe_pooled(map_display: np.ndarray, pooled: bool) -> tuple[np.ndarray, dict]:
    if not pooled or map_display.shape[-1] <= POOL_SIZE or map_display.shape[-1] % POOL_SIZE:
        return map_display, {}
    h, w = map_display.shape[-2:]
    axes = {"axis_y": pooled_frequency_axis(h, POOL_SIZE), "axis_x": pooled_frequency_axis(w, POOL_SIZE)}
    return pool_map(map_display, POOL_SIZE), axes


def build_pair_figures(views: dict, classes: Sequence[str], pooled: bool = False) -> dict[str, go.Figure]:
    """Every chart of `render_pair_views`, by name; charts whose data is missing are left out. No Streamlit.

    Few charts with several panels rather than many small ones: each chart costs the browser a
    Plotly instance, and switching images redraws them all.
    """
    label = views.get("label")
    clean, adversarial = views["clean"], views.get("adversarial")
    size = clean.shape[-1]
    out: dict[str, go.Figure] = {}

    truth = f"true class: {classes[label]}" if label is not None else ""
    panels = [(f"Clean image<br><sup>{size}×{size} px, {truth}</sup>", clean)]
    if adversarial is not None:
        adv_pred = int(np.argmax(views["adv_probs"])) if views.get("adv_probs") is not None else None
        verdict = ("predicted: " + classes[adv_pred]) if adv_pred is not None else ""
        verdict += " (attack succeeded)" if views.get("success") else " (attack failed)"
        picture, gain = amplified_perturbation(clean, adversarial)
        panels += [(f"Adversarial image<br><sup>{verdict}</sup>", adversarial),
                   (f"Perturbation, amplified<br><sup>{f'×{gain:.0f} around mid-grey' if gain else 'no change'}</sup>",
                    picture)]
    out["images"] = figures.image_row_figure(panels, "Clean, adversarial and the perturbation between them")

    probs = [(name, views[key]) for name, key in (
        ("clean", "clean_probs"), ("adversarial", "adv_probs"), ("clean × essential map", "filtered_clean_probs"),
        ("adversarial × adversarial map", "filtered_adversarial_probs")) if views.get(key) is not None]
    if probs:
        out["top3"] = figures.top_k_row_figure(probs, classes, "The model's top 3 classes for each image",
                                               true_label=label)

    maps = [(name, views[key]) for name, key in (("Essential map", "essential"), ("Adversarial map", "adversarial_map"))
            if views.get(key) is not None]
    if maps:
        shown = [(name, *_maybe_pooled(m, pooled)) for name, m in maps]
        axes = shown[0][2]
        out["maps_rgb"] = figures.maps_rgb_row_figure([(name, m) for name, m, _ in shown],
                                                      "The maps as RGB composites (white: kept in all channels)", **axes)
        out["maps_channels"] = figures.map_channels_grid_figure(
            [(name.split()[0].lower(), m) for name, m, _ in shown], "One heat map per colour channel", **axes)
        out["radial"] = figures.radial_profile_figure([(name.split()[0].lower(), m) for name, m in maps],
                                                      "Radial profile of the maps")
    filtered = [(name, np.clip(views[key], 0, 1)) for name, key in (
        ("Clean image × essential map", "filtered_clean"),
        ("Adversarial image × adversarial map", "filtered_adversarial")) if views.get(key) is not None]
    if filtered:
        out["filtered"] = figures.image_row_figure(filtered, "x_F = Re(F⁻¹(M ⊙ F x)): what the model sees through each map")
    spectra = [("clean", views["spectrum_clean"])]
    for name, key in (("adversarial", "spectrum_adversarial"), ("clean filtered", "spectrum_filtered_clean"),
                      ("adversarial filtered", "spectrum_filtered_adversarial")):
        if views.get(key) is not None:
            spectra.append((name, views[key]))
    out["spectra"] = figures.spectra_figure(spectra, "Log-magnitude spectra log(1 + |F x|), channel mean")
    return out


Panel = tuple[np.ndarray, str]  # an (H, W, 3) uint8 picture (or (H, W, 4) RGBA: frequency axes) and its caption
Shown = tuple[bytes, str, int]  # a panel as shown: PNG bytes (with transparent margins), caption, width in px
PICTURE_ROWS = ("images", "maps_rgb", "maps_channels", "filtered", "spectra")  # build_pair_pictures' rows of panels
PROB_SETS = (("clean", "clean_probs"), ("adversarial", "adv_probs"), ("clean × essential map", "filtered_clean_probs"),
             ("adversarial × adversarial map", "filtered_adversarial_probs"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def top3_table(views: dict, classes: Sequence[str]) -> str | None:
    """The model's 3 most probable classes for each image as a markdown table (✓: the true class); None without probabilities."""
    label = views.get("label")
    sets = [(name, views[key]) for name, key in PROB_SETS if views.get(key) is not None]
    if not sets:
        return None
    best = [top_k(np.asarray(probs), 3) for _, probs in sets]
    lines = ["| | " + " | ".join(_cell(name) for name, _ in sets) + " |", "|---" * (len(sets) + 1) + "|"]
    for rank in range(max(len(b) for b in best)):
        cells = [f"{_cell(classes[b[rank][0]])}{' ✓' if b[rank][0] == label else ''} · {100 * b[rank][1]:.1f} %"
                 if rank < len(b) else "" for b in best]
        lines.append(f"| {rank + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def probability_table(probs: np.ndarray, classes: Sequence[str], true_label: int | None = None, k: int = 3) -> str:
    """One image's k most probable classes as a markdown table (rank, class with ✓ if true, probability)."""
    lines = ["| | class | probability |", "|---|---|---|"]
    for rank, (index, p) in enumerate(top_k(np.asarray(probs), k), start=1):
        lines.append(f"| {rank} | {_cell(classes[index])}{' ✓' if index == true_label else ''} | {100 * p:.1f} % |")
    return "\n".join(lines)


def radial_table(maps: Sequence[tuple[str, np.ndarray]]) -> str:
    """Each map's mean value in octave-wide frequency rings (ui.arrays.radial_bands) as a markdown table."""
    bands = [radial_bands(m) for _, m in maps]
    lines = ["| radius (cycles/image) | " + " | ".join(name for name, _ in maps) + " |", "|---" * (len(maps) + 1) + "|"]
    for k, (first, last, _) in enumerate(bands[0]):
        ring = f"{first}" if first == last else f"{first}–{last}"
        lines.append(f"| {ring} | " + " | ".join(f"{b[k][2]:.2f}" for b in bands) + " |")
    return "\n".join(lines)


def _frequency_note(h: int, pooled_from: int | None) -> str:
    edge = (pooled_from or h) // 2
    note = f"Centre = zero frequency (the mean colour), edges = ±{edge} cycles/image"
    if pooled_from:
        block = pooled_from // h
        return note + f"; pooled to {h}×{h}, each cell the mean of a {block}×{block} block of frequencies."
    return note + ("; shown at native resolution, one pixel per frequency (switch on interactive charts above to "
                   "zoom)." if h > 64 else ".")


def build_pair_pictures(views: dict, classes: Sequence[str], pooled: bool = False) -> dict:
    """The pictures rendering of `render_pair_views`: uint8 panels with captions, markdown tables. No Streamlit.

    Keys as build_pair_figures' (those whose data is missing are left out): "images", "maps_rgb",
    "filtered", "spectra" and "maps_channels" hold lists of (picture (H, W, 3) uint8, caption) rows;
    "top3" and "radial" markdown tables; "*_bar" a colour-bar strip and its caption.
    """
    label = views.get("label")
    clean, adversarial = views["clean"], views.get("adversarial")
    size = clean.shape[-1]
    factor = display_factor(size)
    out: dict = {}

    def pred_of(key: str) -> str:
        probs = views.get(key)
        return f"predicted: {classes[int(np.argmax(probs))]}" if probs is not None else ""

    truth = f"true class: {classes[label]}" if label is not None else ""
    images: list[Panel] = [(image_picture(clean, factor), f"Clean image · {size}×{size} px · {truth}")]
    if adversarial is not None:
        verdict = pred_of("adv_probs") + (" (attack succeeded)" if views.get("success") else " (attack failed)")
        perturbation, gain = amplified_perturbation(clean, adversarial)
        images += [(image_picture(adversarial, factor), f"Adversarial image · {verdict}"),
                   (image_picture(perturbation, factor),
                    f"Perturbation, amplified {f'×{gain:.0f} around mid-grey' if gain else '(no change)'}")]
    out["images"] = [images]
    table = top3_table(views, classes)
    if table is not None:
        out["top3"] = table

    maps = [(name, views[key]) for name, key in (("essential", "essential"), ("adversarial", "adversarial_map"))
            if views.get(key) is not None]
    if maps:
        shown = [(name, *_maybe_pooled(m, pooled)) for name, m in maps]
        pooled_from = maps[0][1].shape[-1] if shown[0][2] else None
        h = shown[0][1].shape[-1]
        map_factor = display_factor(h, max(PANEL_PX, size))  # a pooled 224 map (32×32) as large as its image
        note = _frequency_note(h, pooled_from)
        per_cell = (pooled_from // h) if pooled_from else 1  # frequencies one shown cell spans

        def axes(picture: np.ndarray) -> np.ndarray:
            return with_frequency_axes(picture, h, per_cell)

        out["maps_rgb"] = [[(axes(image_picture(m, map_factor)), f"{name.capitalize()} map, RGB composite")
                            for name, m, _ in shown]]
        out["maps_rgb_note"] = note
        viridis = colormap_lut(figures.MAP_SCALE)
        out["maps_channels"] = [[(axes(upscale(heat_picture(m[k], viridis, 0.0, 1.0), map_factor)),
                                  f"{name} map · {channel} channel")
                                 for k, channel in enumerate(figures.CHANNELS[:m.shape[0]])] for name, m, _ in shown]
        out["maps_channels_bar"] = (indented(colour_bar(viridis, 2 * h * map_factor, 14), axis_gutter(h, per_cell)),
                                    "map value: 0 (left) … 1 (right)")
        out["maps_channels_note"] = note
        out["radial"] = radial_table([(name, m) for name, m in maps])
    filtered = [(key, name, np.clip(views[key], 0, 1), probs) for key, name, probs in (
        ("filtered_clean", "Clean image × essential map", "filtered_clean_probs"),
        ("filtered_adversarial", "Adversarial image × adversarial map", "filtered_adversarial_probs"))
        if views.get(key) is not None]
    if filtered:
        out["filtered"] = [[(image_picture(image, factor), " · ".join(t for t in (name, pred_of(probs)) if t))
                            for _, name, image, probs in filtered]]
    spectra = [("clean image", views["spectrum_clean"])]
    for name, key in (("adversarial image", "spectrum_adversarial"), ("filtered clean image", "spectrum_filtered_clean"),
                      ("filtered adversarial image", "spectrum_filtered_adversarial")):
        if views.get(key) is not None:
            spectra.append((name, views[key]))
    low, high = 0.0, max(float(np.nanmax(s)) if np.isfinite(s).any() else 0.0 for _, s in spectra)
    magma = colormap_lut(figures.SPECTRUM_SCALE)
    n = spectra[0][1].shape[-1]
    out["spectra"] = [[(with_frequency_axes(upscale(heat_picture(s, magma, low, high), display_factor(n)), n),
                        f"Spectrum of the {name}")
                       for name, s in spectra]]
    out["spectra_bar"] = (indented(colour_bar(magma, 2 * n * display_factor(n), 14), axis_gutter(n)),
                          f"log(1 + |F x|): {low:.0f} (left) … {high:.1f} (right)")
    out["spectra_note"] = _frequency_note(n, None)
    return out


@st.cache_resource(show_spinner=False, max_entries=32)
def _cached_figures(cache_key: tuple, pooled: bool, _views: dict, _classes: tuple) -> dict[str, go.Figure]:
    # Shared, never copied: Plotly figures are slow to build (validation) and st.plotly_chart only reads them.
    return build_pair_figures(_views, _classes, pooled)


def shown_panel(panel: Panel) -> Shown:
    """A (picture, caption) panel as show_pictures takes it: PNG with transparent margins, caption, width."""
    picture = with_margin(panel[0])
    return encode_png(picture), panel[1], int(picture.shape[1])


def encode_pair_pictures(pictures: dict) -> dict:
    """build_pair_pictures' panels (arrays) as PNG bytes with transparent margins, ready for st.image.

    Encoded once per image (cached), so an image switch sends stored bytes: nothing is encoded again.
    """
    out = dict(pictures)
    for name in PICTURE_ROWS:
        if name in out:
            out[name] = [[shown_panel(panel) for panel in row] for row in out[name]]
    for name in ("maps_channels_bar", "spectra_bar"):
        if name in out:
            out[name] = shown_panel(out[name])
    return out


def _pictures(views: dict, classes: Sequence[str], pooled: bool) -> dict:
    return encode_pair_pictures(build_pair_pictures(views, classes, pooled))


@st.cache_resource(show_spinner=False, max_entries=32)
def _cached_pictures(cache_key: tuple, pooled: bool, _views: dict, _classes: tuple) -> dict:
    # Shared, never copied: st.image only reads the bytes.
    return _pictures(_views, _classes, pooled)


def _session_memo(name: str, key: tuple, build: Callable[[], object]) -> Any:
    """`build()` kept in this session's state under `name` for `key`: one result at a time (a user's own image)."""
    store = st.session_state.setdefault(name, {})
    if key not in store:
        store.clear()
        store[key] = build()
    return store[key]


def _built(views: dict, classes: Sequence[str], key_prefix: str, cache_key: tuple | None, per_session: bool,
           pooled: bool, interactive: bool) -> dict:
    """build_pair_figures or build_pair_pictures, cached as render_pair_views' docstring says."""
    build = build_pair_figures if interactive else _pictures
    if cache_key is None:
        return build(views, classes, pooled)
    if per_session:
        return _session_memo(f"{key_prefix}_{'figures' if interactive else 'pictures'}", (cache_key, pooled),
                             lambda: build(views, classes, pooled))
    cached = _cached_figures if interactive else _cached_pictures
    return cached(cache_key, pooled, views, tuple(classes))


def show_pictures(row: Sequence[Shown], where: object = st) -> None:
    """Panels side by side as one st.image element, each at its own pixel size (crisp pixels, no browser
    scaling), the caption under each; as panels of one size share a width, rows of different sections line up.

    One element per row rather than a column per panel: every element is a message to send and a
    component to draw, and an image switch redraws them all.
    """
    if row:
        where.image([png for png, _, _ in row], caption=[text for _, text, _ in row], width=row[0][2],
                    output_format="PNG")


def show_cosine(views: dict) -> None:
    """The pair's cosine similarity, and where it stands among the experiment's pairs when the page says so."""
    if "cosine" in views:
        st.metric("Cosine similarity of the two maps", f"{views['cosine']:.3f}",
                  help="cos(M_E, M_A) over all 3·H·W entries; 1 = same shape, 0 = no overlap")
        if views.get("cosine_context"):
            st.caption(views["cosine_context"])


def render_pair_views(views: dict, classes: Sequence[str], key_prefix: str, *, file_stem: str,
                      model_note: str = "", cache_key: tuple | None = None, per_session: bool = False) -> None:
    """All views of one image and its adversarial counterpart (see the module docstring).

    Pictures by default; the toggle `{key_prefix}_interactive` switches to the Plotly charts.
    cache_key: a hashable name of `views` (experiment, image, attack, model); with it the figures or
    pictures are built once and reused, so switching back to an image costs no building. per_session:
    keep them in this session's state instead of the server-wide cache (for a user's own images).
    """
    size = views["clean"].shape[-1]
    interactive = st.toggle("Interactive charts (zoom, hover values)", key=f"{key_prefix}_interactive",
                            help="Plotly charts instead of pictures: zoom into any panel and read exact values by "
                                 "hovering; slower to draw (about 2 s per image on a small machine).")
    pooled = False
    if size > 64:
        pooled = st.toggle(f"Pooled {POOL_SIZE}×{POOL_SIZE} view of the maps (average over {size // POOL_SIZE}×"
                           f"{size // POOL_SIZE} frequency blocks, as the correlations use)", key=f"{key_prefix}_pooled")
    built = _built(views, classes, key_prefix, cache_key, per_session, pooled, interactive)

    def show(name: str, title: str = "") -> None:
        if name not in built:
            return
        if interactive:
            chart(built[name], key=f"{key_prefix}_{name}", filename=f"{file_stem}_{name}")
            return
        if title:
            st.markdown(f"**{title}**")
        for row in built[name]:
            show_pictures(row)

    show("images", "Clean, adversarial and the perturbation between them")
    if views.get("adversarial") is not None:
        cols = st.columns(4)
        cols[0].metric("L∞ norm of the perturbation", f"{views['linf']:.4f}",
                       help=f"= {views['linf'] * 255:.2f}/255 of the pixel range")
        cols[1].metric("L2 norm of the perturbation", f"{views['l2']:.3f}",
                       help="Euclidean norm over all 3·H·W pixel values in [0, 1]")
    else:
        st.info("This experiment has no attack: only the essential map is shown.")
    caption("The adversarial image looks the same as the clean one, yet the model's answer changes. The "
            "perturbation is scaled up until its largest pixel change reaches black or white, so you can see it; "
            "its norms are in pixel units of [0, 1].")
    if interactive:
        show("top3")
    elif "top3" in built:
        st.markdown("**The model's top 3 classes for each image**")
        st.markdown(built["top3"])
    if "top3" not in built:
        st.caption("no model loaded: probabilities unavailable")
    caption("The model's three most probable classes for the clean and adversarial images and for each image "
            "filtered by its map (✓ marks the true class)." + (f" {model_note}" if model_note else ""))

    st.subheader("The two frequency maps")
    for name, map_key, status_key in (("Essential map", "essential", "essential_status"),
                                      ("Adversarial map", "adversarial_map", "adversarial_status")):
        map_display = views.get(map_key)
        if map_display is None:
            st.warning(f"**{name}**: {views.get(status_key, 'no map')}")
    notes = [f"{name}: {int((views[key] > 0).sum())} of {views[key].size} entries non-zero, mean {views[key].mean():.3f}"
             for name, key in (("essential", "essential"), ("adversarial", "adversarial_map"))
             if views.get(key) is not None]
    if interactive:
        cols = st.columns([2, 1])
        with cols[0]:
            show("maps_rgb")
            if notes:
                st.caption("; ".join(notes))
        with cols[1]:
            show_cosine(views)
            show("radial")
    else:
        if "maps_rgb" in built:
            st.markdown("**The maps as RGB composites** (white: kept in all three colour channels; black: removed)")
        cols = st.columns([3, 2])  # the two maps (with their axes) on the left, as the panels below; the numbers right
        show_pictures(built.get("maps_rgb", [[]])[0], cols[0])
        with cols[1]:
            show_cosine(views)
            if notes:
                st.caption("; ".join(notes))
            if "radial" in built:
                st.markdown("**Radial profile**: mean map value in rings of frequency radius\n\n" + built["radial"])
        if "maps_rgb" in built:
            caption(built["maps_rgb_note"])
    caption("A map keeps (1) or removes (0) each spatial frequency of each colour channel; the zero frequency "
            "(the image's mean colour) sits in the centre, the highest frequencies at the edges. The essential map "
            "keeps what the model needs for the right answer on the clean image; the adversarial map keeps what it "
            "needs to give the attack's wrong answer on the adversarial image. The radial profile averages each "
            "map over rings of equal frequency radius.")
    if interactive:
        show("maps_channels")
        if size > 64:
            caption("Large maps: drag to zoom into a region of a heat map, double-click to zoom out, or switch on "
                    "the pooled view above.")
    elif "maps_channels" in built:
        st.markdown("**One heat map per colour channel** (Viridis, 0 to 1)")
        for row in built["maps_channels"]:
            show_pictures(row)
        show_pictures([built["maps_channels_bar"]])
        caption(built["maps_channels_note"])

    st.subheader("Images filtered by their maps")
    if "filtered" in built:
        show("filtered")
    else:
        st.info("No map, nothing to filter.")
    caption("What the model sees through each map. The filtered clean image keeps its class with only the "
            "essential frequencies; the filtered adversarial image keeps the attack's wrong class (see the top-3 "
            + ("panels" if interactive else "table") + " above).")

    show("spectra", "Log-magnitude spectra log(1 + |F x|), channel mean (Magma, one shared scale)")
    if not interactive:
        show_pictures([built["spectra_bar"]])
        caption(built["spectra_note"])
    caption("Where each image's energy lies in frequency. Natural images concentrate it at low frequencies "
            "(the centre); filtering by a sparse map leaves only a few bright points.")

    render_view_downloads(views, classes, key_prefix, file_stem, cache_key=cache_key, per_session=per_session)


def _summary_row(views: dict, classes: Sequence[str]) -> dict:
    def name_of(probs_key: str) -> str | None:
        probs = views.get(probs_key)
        return None if probs is None else classes[int(np.argmax(probs))]

    return {
        "image": views.get("id", ""), "true_class": classes[views["label"]] if views.get("label") is not None else "",
        "attack": views.get("attack_key") or views.get("attack") or "", "clean_pred": name_of("clean_probs"),
        "adversarial_pred": name_of("adv_probs"), "attack_success": views.get("success"),
        "linf": views.get("linf"), "l2": views.get("l2"),
        "essential_status": views.get("essential_status"), "adversarial_status": views.get("adversarial_status"),
        "filtered_clean_pred": name_of("filtered_clean_probs"),
        "filtered_adversarial_pred": name_of("filtered_adversarial_probs"), "cosine": views.get("cosine"),
    }


def download_items(views: dict, classes: Sequence[str], file_stem: str) -> list[tuple[str, str, bytes, str]]:
    """(label, file name, bytes, mime) of every download of one image's views: maps (.npy, centred, and PNG),
    image panels (PNG via Pillow) and a one-row summary (CSV).

    Bytes, not callables: Streamlit serves a callable's file only until some session reruns, so under load a
    click could be cancelled (found by bench/load_test.py); bytes stay valid as long as the button is shown.
    """
    items: list[tuple[str, str, bytes, str]] = []
    for name, key in (("essential map", "essential"), ("adversarial map", "adversarial_map")):
        if views.get(key) is not None:
            items.append((f"{name} (.npy)", f"{file_stem}_{key}.npy", npy_bytes(views[key]), "application/octet-stream"))
            items.append((f"{name} (PNG)", f"{file_stem}_{key}.png", png_bytes(views[key]), "image/png"))
    for name, key in (("clean image", "clean"), ("adversarial image", "adversarial"),
                      ("filtered clean image", "filtered_clean"), ("filtered adversarial image", "filtered_adversarial")):
        if views.get(key) is not None:
            items.append((f"{name} (PNG)", f"{file_stem}_{key}.png", png_bytes(views[key]), "image/png"))
    items.append(("summary (CSV)", f"{file_stem}_summary.csv", csv_bytes([_summary_row(views, classes)]), "text/csv"))
    return items


@st.cache_resource(show_spinner=False, max_entries=32)
def _cached_download_items(cache_key: tuple, file_stem: str, _views: dict, _classes: tuple) -> list:
    # Shared, never copied: bytes are immutable, and encoding 224-pixel PNGs on every rerun would slow switching.
    return download_items(_views, _classes, file_stem)


def render_view_downloads(views: dict, classes: Sequence[str], key_prefix: str, file_stem: str, *,
                          cache_key: tuple | None = None, per_session: bool = False) -> None:
    """The download buttons of one image's views (see `download_items`); encoded once per `cache_key`."""
    if cache_key is None:
        items = download_items(views, classes, file_stem)
    elif per_session:
        items = _session_memo(f"{key_prefix}_downloads", (cache_key, file_stem),
                              lambda: download_items(views, classes, file_stem))
    else:
        items = _cached_download_items(cache_key, file_stem, views, tuple(classes))
    with st.expander("Downloads: maps (.npy), images (PNG), summary (CSV)"):
        st.caption("Maps are centred (zero frequency at [H/2, W/2]), shape (3, H, W), values in [0, 1]. PNGs of image "
                   "panels are written with Pillow; every chart also saves a PNG from its toolbar's camera button.")
        cols = st.columns(4)
        for i, (label, file_name, data, mime) in enumerate(items):
            cols[i % 4].download_button(label, data=data, file_name=file_name, mime=mime,
                                        key=f"{key_prefix}_dl_{file_name}")
