"""Home: what the tool shows and why, a Fig.-1-style picture from the loaded experiment, how to build more."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.attack_keys import attack_label
from experiments.format import ESSENTIAL, maps_stage
from experiments.reader import Experiment
from ui.entry import through_app
from ui.loaders import both_maps_positions, figure_one_rows
from ui.map_basis import INPUT, experiment_layer
from ui.picker import current_experiment, other_large_experiments, show_how_to_build, show_results_only
from ui.pictures import display_factor, image_picture
from ui.roots import BIG_COMMAND, BUILD_COMMAND

FIGURE_ROWS = 3  # example images in the Fig. 1 picture
SMALL = 100  # fewer test images than this: point at the larger experiments that are already here
# An explicit icon: without one, Streamlit looks for a leading emoji in any non-ASCII text and compiles its emoji
# catalogue's regular expression for that: 0.29 s of the first page's 0.89 s run under cProfile, 2-core machine.
INFO = ":material/info:"


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


COLUMNS = ("A: original", "B: adversarial", "C: A × essential map", "D: B × adversarial map")


def render_figure_one(experiment: Experiment, params: dict) -> None:
    """The Fig.-1-style picture: one row per image, four panels (st.image, crisp pixels), predictions below."""
    attack = params["attack"]
    if attack is None:
        st.info("This experiment has no attack, so there is no adversarial picture to show.", icon=INFO)
        return
    if experiment_layer(experiment) != INPUT:
        st.info(f"This experiment's maps filter the model's {experiment_layer(experiment)} features, not the image: "
                "there is no filtered image to show. Explore shows its maps and the predictions through them.", icon=INFO)
        return
    indices = both_maps_positions(experiment, attack)[:FIGURE_ROWS]
    if len(indices) == 0:
        st.info(f"No image of this experiment has both maps for {attack_label(attack)}: see Explore for why.", icon=INFO)
        return
    classes = experiment.classes
    st.markdown(f"**Images before and after filtering by their maps ({attack_label(attack)})**")
    rows = figure_one_rows(experiment, indices, attack)
    factor = display_factor(rows[0]["clean"].shape[-1])
    header = st.columns(len(COLUMNS))
    for col, name in zip(header, COLUMNS, strict=True):
        col.markdown(f"**{name}**")
    for row in rows:
        panels = [
            (row["clean"], f"#{row['index']} · predicted: {classes[row['clean_pred']]}"),
            (row["adversarial"], f"predicted: {classes[row['adv_pred']]}"),
            (row["filtered_essential"], f"predicted: {classes[row['filtered_essential_pred']]}"),
            (row["filtered_adversarial"], f"predicted: {classes[row['filtered_adversarial_pred']]}"),
        ]
        for col, (image, text) in zip(st.columns(len(COLUMNS)), panels, strict=True):
            picture = image_picture(np.clip(image, 0, 1), factor)  # (H·f, W·f, 3) uint8, crisp pixels
            col.image(picture, caption=text, width=int(picture.shape[1]), output_format="PNG")
    st.caption("As in the paper's Fig. 1. Under each panel, the model's prediction (for C and D, as recorded when "
               "the maps were trained). A→C keeps only the essential frequencies and the prediction stays correct; "
               "B→D keeps only the adversarial frequencies and the attack's wrong class survives. The filtered images "
               "are mostly a flat colour plus a few waves: the network needs remarkably little. Explore shows every "
               "view of an image, and interactive charts.")


def render_loaded(experiment: Experiment) -> None:
    config = experiment.config
    st.subheader("Loaded experiment")
    cols = st.columns(4)
    cols[0].metric("Images (N)", experiment.n)
    cols[1].metric("Model", config.model)
    cols[2].metric("Image size", f"{config.image_size}×{config.image_size}")
    cols[3].metric("λ (L1 weight)", f"{config.lam:g}")
    essential = experiment.stage(maps_stage(ESSENTIAL))
    kept = essential.get("n_kept")
    st.markdown(
        f"**{experiment.id}** · data `{config.data}` ({config.split}) · attacks: "
        f"{', '.join(attack_label(k) for k in experiment.attack_keys) or 'none'} · "
        f"essential maps kept: {kept if kept is not None else '?'} of {experiment.n} · "
        f"classes: {', '.join(experiment.classes)}"
        + (" · **results-only copy** (numbers and statistics; no images or maps)" if experiment.results_only else "")
    )


def render_larger_ones(experiment: Experiment) -> None:
    """On a small experiment (the demo), point at the larger ones already here, whose statistics mean something."""
    if experiment.n >= SMALL:
        return
    larger = other_large_experiments(experiment, SMALL)
    if larger:
        st.info(f"This experiment has {experiment.n} images: enough to see the method, too few for its statistics "
                "(the Correlations page says which numbers the sample size forces). Already computed and listed in "
                "the sidebar's picker:\n" + "\n".join(f"- {label}" for label in larger), icon=INFO)


def render_build_more() -> None:
    st.subheader("Build a bigger experiment")
    st.markdown(
        "The shipped demo is small so that the app starts anywhere. The paper's CIFAR-10 experiment "
        "(1000 test images, FMN, PGD at ε = 1, 3, 8/255, DeepFool, class-level maps) is one command; it is "
        "resumable and runs on a GPU or several:"
    )
    # Inline code, not st.code: st.code's syntax highlighter is a JavaScript chunk that delayed the first page's
    # picture by about 0.7 s on a 2-core machine (bench/app_latency.py).
    st.markdown(f"- the paper's experiment: `{BIG_COMMAND}`\n- or a quick one: `{BUILD_COMMAND}`\n"
                "- on several GPUs: `torchrun --nproc-per-node 4 -m precompute run --preset cifar10-paper`")
    st.caption("New experiments appear in the sidebar's picker (they are written to cache/).")


through_app()
render_intro()
current = current_experiment()
if current is None:
    show_how_to_build()
elif current.has_images and not current.maps_dropped:
    render_figure_one(current, home_ui(current))
    render_loaded(current)
    render_larger_ones(current)
else:
    show_results_only(current, "the Fig.-1-style picture (images before and after filtering by their maps)")
    render_loaded(current)
render_build_more()
