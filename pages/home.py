"""Home: what the tool shows and why, a Fig.-1-style picture from the loaded experiment, how to build more."""

from __future__ import annotations

import numpy as np
import streamlit as st

from experiments.format import ESSENTIAL, STATUS_KEPT, adversarial_set
from experiments.reader import Experiment
from ui import figures
from ui.loaders import cached_image_views, experiment_model
from ui.paper_numbers import attack_label
from ui.picker import current_experiment, show_how_to_build, show_results_only
from ui.roots import BIG_COMMAND, BUILD_COMMAND
from ui.views import caption, chart

FIGURE_ROWS = 3  # example images in the Fig. 1 picture


def both_maps(experiment: Experiment, attack_key: str) -> np.ndarray:
    """Indices of images with an essential and an adversarial map for `attack_key`."""
    names = experiment.map_set_names()
    if ESSENTIAL not in names or adversarial_set(attack_key) not in names:
        return np.zeros(0, np.int64)
    essential = np.asarray(experiment.map_set(ESSENTIAL)["status"])
    adversarial = np.asarray(experiment.map_set(adversarial_set(attack_key))["status"])
    return np.flatnonzero((essential == STATUS_KEPT) & (adversarial == STATUS_KEPT))


def home_ui(experiment: Experiment) -> dict:
    """Widgets of the Home page -> {"attack": key or None}."""
    keys = experiment.attack_keys
    if not keys:
        return {"attack": None}
    attack = st.selectbox("Attack shown in the picture", keys, format_func=attack_label, key="home_attack")
    return {"attack": attack}


def render_intro() -> None:
    st.title("Essential and adversarial frequencies of an image classifier")
    st.markdown(
        "A trained network relies on some spatial frequencies of an image more than on others: its **implicit "
        "bias**. An adversarial attack changes an image imperceptibly and flips the network's answer. This tool "
        "learns, for every image, two **Fourier maps**: the **essential map**, the fewest frequencies the network "
        "needs to still classify the clean image correctly, and the **adversarial map**, the fewest it needs to keep "
        "the attack's wrong answer on the attacked image. If the two maps are alike, attacks exploit exactly the "
        "frequencies the network's bias relies on. That is what the paper measures (SVCCA, cosine similarity and "
        "the non-linear IdCor) and what the pages here let you see, image by image, and use as a defence."
    )


def render_figure_one(experiment: Experiment, params: dict) -> None:
    attack = params["attack"]
    if attack is None:
        st.info("This experiment has no attack, so there is no adversarial picture to show.")
        return
    indices = both_maps(experiment, attack)[:FIGURE_ROWS]
    if len(indices) == 0:
        st.info(f"No image of this experiment has both maps for {attack_label(attack)}: see Explore for why.")
        return
    model, _ = experiment_model(experiment)
    classes = experiment.classes
    rows = []
    for index in indices:
        views = cached_image_views(experiment, int(index), attack, model)

        def said(probs_key: str, views: dict = views) -> str:
            probs = views.get(probs_key)
            return classes[int(np.argmax(probs))] if probs is not None else "?"

        rows.append([
            (f"#{index}: {said('clean_probs')}", views["clean"]),
            (f"{said('adv_probs')}", views["adversarial"]),
            (f"{said('filtered_clean_probs')}", np.clip(views["filtered_clean"], 0, 1)),
            (f"{said('filtered_adversarial_probs')}", np.clip(views["filtered_adversarial"], 0, 1)),
        ])
    fig = figures.image_grid_figure(
        rows, ["A: original", "B: adversarial", "C: A × essential map", "D: B × adversarial map"],
        f"Images before and after filtering by their maps ({attack_label(attack)})",
    )
    chart(fig, key="home_figure_one", filename="figure1")
    caption("As in the paper's Fig. 1. Each panel's title is the model's prediction. A→C keeps only the essential "
            "frequencies and the prediction stays correct; B→D keeps only the adversarial frequencies and the "
            "attack's wrong class survives. The filtered images are mostly a flat colour plus a few waves: the "
            "network needs remarkably little.")


def render_loaded(experiment: Experiment) -> None:
    config = experiment.config
    st.subheader("Loaded experiment")
    cols = st.columns(4)
    cols[0].metric("Images (N)", experiment.n)
    cols[1].metric("Model", config.model)
    cols[2].metric("Image size", f"{config.image_size}×{config.image_size}")
    cols[3].metric("λ (L1 weight)", f"{config.lam:g}")
    essential = experiment.stage("maps-essential")
    kept = essential.get("n_kept")
    st.markdown(
        f"**{experiment.id}** · data `{config.data}` ({config.split}) · attacks: "
        f"{', '.join(attack_label(k) for k in experiment.attack_keys) or 'none'} · "
        f"essential maps kept: {kept if kept is not None else '?'} of {experiment.n} · "
        f"classes: {', '.join(experiment.classes)}"
        + (" · **results-only copy** (numbers and statistics; no images or maps)" if experiment.results_only else "")
    )


def render_build_more() -> None:
    st.subheader("Build a bigger experiment")
    st.markdown(
        "The shipped demo is small so that the app starts anywhere. The paper's CIFAR-10 experiment "
        "(1000 test images, FMN, PGD at ε = 1, 3, 8/255, DeepFool, class-level maps) is one command; it is "
        "resumable and runs on a GPU or several:"
    )
    st.code(f"{BIG_COMMAND}\n# or a quick one: {BUILD_COMMAND}\n"
            "# several GPUs: torchrun --nproc-per-node 4 -m precompute run --preset cifar10-paper", language="bash")
    st.caption("New experiments appear in the sidebar's picker (they are written to cache/).")


render_intro()
current = current_experiment()
if current is None:
    show_how_to_build()
elif current.has_images and not current.maps_dropped:
    render_figure_one(current, home_ui(current))
    render_loaded(current)
else:
    show_results_only(current, "the Fig.-1-style picture (images before and after filtering by their maps)")
    render_loaded(current)
render_build_more()
