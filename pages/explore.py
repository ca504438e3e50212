"""Explore: one image of the experiment, its attack, its essential and adversarial maps, side by side."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

from core.attack_keys import ATTACKS, attack_label, attack_name, keys_of_attack, parse_attack_key
from experiments.reader import Experiment
from ui.compare import cosine_rows, cosine_table, image_maps, map_panels, missing_notes
from ui.compute import cosine_context, image_numbers
from ui.downloads import csv_bytes
from ui.entry import through_app
from ui.gallery import GalleryItem, image_gallery
from ui.loaders import cached_image_views, experiment_model, image_labels, thumbnail_uris
from ui.pair_pictures import shown_panel
from ui.pair_views import render_pair_views
from ui.picker import require_experiment, show_results_only
from ui.roots import manifest_stamp
from ui.state import set_value
from ui.tables import top3_table
from ui.views import caption, show_pictures

GALLERY = 24  # thumbnails per gallery page
ALL = "all classes"


def _budget_label(key: str) -> str:
    """The ε picker's text of a fixed-budget key: 'pgd-8' -> 'ε = 8/255', 'pgd-8+bpda' -> 'ε = 8/255 + bpda'."""
    parsed = parse_attack_key(key)
    return f"ε = {parsed.eps_255:g}/255" + (f" + {parsed.variant}" if parsed.variant else "")


def attack_choice(keys: list[str], key_prefix: str, cols: list) -> str | None:
    """Attack in cols[0] (the registry's labels), then, from what the cache holds, the budget ε of a fixed-budget
    attack (or the variant of another) in cols[1] -> an attack key, or None."""
    if not keys:
        cols[0].info("This experiment has no attack.")
        return None
    names = list(dict.fromkeys(attack_name(k) for k in keys))
    name = cols[0].selectbox("Attack", names, format_func=lambda n: ATTACKS[n].label if n in ATTACKS else n,
                             key=f"{key_prefix}_attack")
    choices = keys_of_attack(keys, name)
    if name in ATTACKS and ATTACKS[name].needs_eps:
        return cols[1].selectbox(f"{ATTACKS[name].label} budget ε", choices, format_func=_budget_label,
                                 key=f"{key_prefix}_eps")
    if len(choices) == 1:
        return choices[0]
    return cols[1].selectbox("Variant", choices, format_func=attack_label, key=f"{key_prefix}_variant")


def gallery(experiment: Experiment, indices: list[int], names: dict[int, str], selected: int) -> None:
    """Thumbnails of up to GALLERY images; clicking one picks it (one element: ui/gallery.py)."""
    if len(indices) > GALLERY:
        pages = (len(indices) + GALLERY - 1) // GALLERY
        page = st.number_input(f"Gallery page (of {pages})", 1, pages, 1, key="explore_gallery_page")
        indices = indices[(page - 1) * GALLERY: page * GALLERY]
    uris = thumbnail_uris(experiment.path, manifest_stamp(experiment.path), tuple(indices))  # encoded once
    items = [GalleryItem(index, uri, names[index]) for index, uri in zip(indices, uris, strict=True)]
    image_gallery(items, selected, key="explore_gallery", on_pick=lambda index: set_value("explore_image", index),
                  label="Images of the experiment: click one to pick it")


def explore_ui(experiment: Experiment) -> dict:
    """Widgets of Explore -> {"attack": key or None, "index": int or None}."""
    labels = experiment.labels()
    classes = experiment.classes
    counts = np.bincount(labels, minlength=len(classes))
    cols = st.columns([1, 1, 1, 2])
    attack = attack_choice(experiment.attack_keys, "explore", cols[:2])
    cls = cols[2].selectbox("Class", [ALL, *classes], key="explore_class",
                            format_func=lambda c: c if c == ALL else f"{c} ({counts[classes.index(c)]} images)")
    indices = list(range(experiment.n)) if cls == ALL else [int(i) for i in np.flatnonzero(labels == classes.index(cls))]
    if not indices:
        st.info(f"No image of class {cls} in this experiment.")
        return {"attack": attack, "index": None}
    names, has = image_labels(experiment.path, manifest_stamp(experiment.path), attack)
    if st.session_state.get("explore_image") not in indices:  # first visit or new class: an image with both maps
        st.session_state["explore_image"] = next((i for i in indices if has[i]), indices[0])
    index = cols[3].selectbox("Image", indices, format_func=names.get, key="explore_image")
    if experiment.has_images:
        with st.expander("Gallery: click a picture to pick that image", expanded=True):
            gallery(experiment, indices, names, int(index))
    return {"attack": attack, "index": int(index)}


def image_heading(index: int, image_id: str, true_class: str, predicted: str, attack: str | None) -> str:
    """'### Image #3 · true class … · model says … · attack: …'; the sample id only where it adds something
    (a file name; Foolbox's samples are named by their index)."""
    shown_id = f" · `{image_id}`" if str(image_id) != str(index) else ""
    return (f"### Image #{index}{shown_id} · true class **{true_class}** · model says **{predicted}**"
            + (f" · attack: **{attack_label(attack)}**" if attack else ""))


def render_numbers(experiment: Experiment, params: dict) -> None:
    """One image of a results-only copy: its predictions, the attack's outcome and norms, its maps' statistics."""
    index, attack = params["index"], params["attack"]
    numbers = image_numbers(experiment, index, attack)
    classes = experiment.classes
    said = classes[int(np.argmax(numbers["clean_probs"]))]
    st.markdown(image_heading(index, numbers["id"], classes[numbers["label"]], said, attack))
    if attack is not None:
        cols = st.columns(4)
        cols[0].metric("Attack", "succeeded" if numbers["success"] else "failed",
                       help="Clean prediction correct and adversarial prediction wrong")
        cols[1].metric("L∞ norm of the perturbation", f"{numbers['linf']:.4f}",
                       help=f"= {numbers['linf'] * 255:.2f}/255 of the pixel range")
        cols[2].metric("L2 norm of the perturbation", f"{numbers['l2']:.3f}")
        if numbers["cosine"] is not None:
            cols[3].metric("Cosine similarity of the two maps", f"{numbers['cosine']:.3f}",
                           help="As stored by the correlation stage" + (" (maps pooled to 32×32)"
                                                                        if experiment.config.image_size > 32 else ""))
            context = cosine_context(experiment.correlation(attack), index)
            if context:
                cols[3].caption(context)
    st.markdown("**The model's top 3 classes for each image** (✓: the true class)")
    probability_sets = [(name, numbers[key]) for name, key in (("clean", "clean_probs"), ("adversarial", "adv_probs"))
                        if key in numbers]
    st.markdown(top3_table(numbers["label"], probability_sets, classes))
    if numbers["maps"]:
        st.dataframe(numbers["maps"], hide_index=True, key="explore_numbers_maps")
        caption("The two maps of this image as the experiment recorded them: whether each was kept, how many "
                "optimisation steps it took, how many of its 3·H·W entries are non-zero and whether only the zero "
                "frequency survived.")
    compact = experiment.maps_compact  # `prune --compact-maps` kept the maps: show them
    if compact and (panels := map_panels(image_maps(experiment, index))):
        show_pictures([shown_panel(panel) for panel in panels])
        caption("The maps of this image, from the copy's compact maps (float16 values).")
    show_results_only(experiment, "the image, its adversarial image, " + ("" if compact else "its maps, ")
                      + "the filtered images and the gallery")


def render_explore(experiment: Experiment, params: dict) -> None:
    if params["index"] is None:
        return
    if not experiment.has_images:
        render_numbers(experiment, params)
        return
    index, attack = params["index"], params["attack"]
    model, model_note = experiment_model(experiment)
    if model is None:
        st.warning(f"Predictions on filtered images are not available: {model_note}")
    views = cached_image_views(experiment, index, attack, model)
    if attack is not None:  # the ranking is read from the correlation stage, not cached with the views
        views = replace(views, cosine_context=cosine_context(experiment.correlation(attack), index))
    classes = experiment.classes
    pred = int(np.argmax(views.clean.probs))
    st.markdown(image_heading(index, views.image_id, classes[views.label], classes[pred], attack))
    cache_key = (experiment.path, manifest_stamp(experiment.path), index, attack, model_note if model else "no model")
    render_pair_views(views, classes, "explore", file_stem=f"{experiment.id}_image{index}_{attack or 'clean'}",
                      cache_key=cache_key)
    render_attack_comparison(experiment, index)


def render_attack_comparison(experiment: Experiment, index: int) -> None:
    """Behind a toggle (off: no cost to an image switch): the image's essential map beside every attack's
    adversarial map, and the cosine between every two of them."""
    if len(experiment.attack_keys) < 2:
        return
    st.divider()
    if not st.toggle("Compare every attack on this image", key="explore_compare",
                     help="The essential map beside the adversarial map of each attack, and how alike they all are"):
        return
    st.markdown("### Every attack on this image")
    maps = image_maps(experiment, index)
    panels = map_panels(maps)
    if panels:
        show_pictures([shown_panel(panel) for panel in panels])
    table = cosine_table(maps)
    if table:
        st.markdown("**Cosine similarity between the maps** (full resolution)\n\n" + table)
        st.download_button("Cosines (CSV)", data=csv_bytes(cosine_rows(maps)), mime="text/csv",
                           file_name=f"{experiment.id}_image{index}_attack_cosines.csv", key="explore_compare_csv")
    for note in missing_notes(maps):
        st.caption(f"No map here: {note}")
    caption("Do different attacks exploit the same frequencies? Similar adversarial maps (high cosine between two "
            "attacks) mean they push the image through the same few frequencies; compare each with the essential "
            "map, the frequencies the model needs. Maps of different images already share the low frequencies "
            "(the Correlations page's re-paired baseline), so read the numbers against that.")


@st.fragment
def explore_body(experiment: Experiment) -> None:
    """Pickers, gallery and views as one fragment: picking another image reruns only this part of the
    page, not the navigation and the sidebar's experiment picker (a shorter path to the new image)."""
    render_explore(experiment, explore_ui(experiment))


through_app()
st.title("Explore one image")
st.caption("Pick an image and an attack; every view below is read from the experiment's cache, except the "
           "predictions on filtered images, which the model computes on the spot.")
current = require_experiment()
explore_body(current)
