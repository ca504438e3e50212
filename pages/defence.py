"""Defence: class-level maps, the live defence on one image (and a live adaptive attack on it), the Table IV
matrix beside the paper's, the adaptive attacks' table and the robustness curves."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from core.attack_keys import attack_label
from core.attacks_adaptive import adaptive_pgd
from core.defended import DefendedClassifier
from experiments.format import class_maps_stage
from experiments.paper_numbers import TABLE_IV, TABLE_IV_COLUMNS, TABLE_IV_ROWS
from experiments.reader import Experiment
from ui import figures
from ui.basis_figures import basis_rgb_figure, class_maps_figure, coefficient_figure, map_picture
from ui.downloads import csv_bytes, npy_bytes
from ui.entry import through_app
from ui.live import LIVE_SLOTS, BusyError, live_slot
from ui.loaders import defence_views, experiment_model
from ui.map_basis import FOURIER, INPUT, basis_from_key, experiment_basis_key, experiment_layer, where_label
from ui.picker import require_experiment, show_results_only
from ui.pictures import display_factor, encode_png, image_picture
from ui.tables import probability_table
from ui.views import caption, chart, html_download


def defence_ui(experiment: Experiment) -> dict:
    """Widgets -> {"maps": class-map key, "image": index, "attack": attack key or None}; maps None if absent."""
    keys = experiment.class_map_keys()
    if not keys:
        return {"maps": None, "image": None, "attack": None}
    maps = st.selectbox("Class-level maps trained against", keys, format_func=attack_label, key="defence_maps")
    return {"maps": maps}


def live_ui(experiment: Experiment) -> dict:
    """Widgets of the live defence -> {"image": index, "attack": key or None}."""
    classes, labels = experiment.classes, experiment.labels()
    cols = st.columns(2)
    index = cols[0].selectbox("Image", list(range(experiment.n)), key="defence_image",
                              format_func=lambda i: f"#{i} {classes[labels[i]]}")
    keys = experiment.attack_keys
    attack = cols[1].selectbox("Attack on the image", keys, format_func=attack_label, key="defence_attack") if keys else None
    return {"image": int(index), "attack": attack}


def render_class_maps(experiment: Experiment, maps_key: str) -> None:
    class_maps = experiment.class_maps(maps_key)  # (K, C, H, W) in the basis's display order
    basis, layer = experiment_basis_key(experiment), experiment_layer(experiment)
    where = "" if (basis, layer) == (FOURIER, INPUT) else f" ({where_label(basis, layer)})"
    fig = class_maps_figure(class_maps, experiment.classes,
                            f"Class-level maps trained against {attack_label(maps_key)}{where}", basis, layer=layer)
    chart(fig, key="defence_grid", filename=f"class_maps_{maps_key}")
    stage = experiment.stage(class_maps_stage(maps_key))
    caption("One map per class, trained on the training split to keep clean images of the class correct *and* to "
            "bring adversarial images that the attack pushed into the class back to their true label (METHOD §5)."
            + (f" Mean {stage['mean_iterations']:.0f} iterations." if stage.get("mean_iterations") else ""))
    order = "centred" if basis == FOURIER else f"{basis} display order"
    st.download_button(f"Class maps (.npy, K×{'×'.join(map(str, class_maps.shape[1:]))}, {order})",
                       data=npy_bytes(class_maps),
                       file_name=f"{experiment.id}_class_maps_{maps_key}.npy", key="defence_grid_npy")


def live_map_figure(result: dict, classes: list[str], basis: str) -> object:
    """The picked class map as a Plotly figure in its basis's layout (a hidden layer's map: its channel mean)."""
    title = f"2. Map of class “{classes[result['first_pred']]}”"
    chosen = result["map"]  # (C, H, W) display order
    if basis == FOURIER and chosen.shape[0] == 3:
        return figures.map_rgb_figure(chosen, title, height=300, short_labels=True)
    if chosen.shape[0] == 3:
        return basis_rgb_figure([(title, chosen)], basis, title, height=300)
    return coefficient_figure(chosen.mean(axis=0), basis, title, subtitle=f"mean of {chosen.shape[0]} channels",
                              height=300)


def live_charts(cols: list, name: str, slug: str, image: np.ndarray, result: dict, classes: list[str], truth: int,
                basis: str = FOURIER) -> None:
    """One row of the live defence in 4 columns as Plotly charts: image, first prediction, the map it picks,
    defended prediction."""
    with cols[0]:
        chart(figures.image_figure(image, name), key=f"defence_{slug}_image")
    with cols[1]:
        chart(figures.top_k_figure(result["first_probs"], classes, "1. Without a map", true_label=truth),
              key=f"defence_{slug}_first")
    with cols[2]:
        chart(live_map_figure(result, classes, basis), key=f"defence_{slug}_map")
    with cols[3]:
        chart(figures.top_k_figure(result["defended_probs"], classes, "3. Defended (filtered by that map)",
                                   true_label=truth), key=f"defence_{slug}_defended")


def live_pictures(cols: list, name: str, slug: str, image: np.ndarray, result: dict, classes: list[str],
                  truth: int, basis: str = FOURIER) -> None:
    """The same row as pictures and tables (the default): a few messages and no chart to draw, so that picking
    another image shows its defence at once."""
    size = image.shape[-1]
    picture = image_picture(image, display_factor(size))  # (H·f, W·f, 3) uint8, crisp pixels
    cols[0].image(encode_png(picture), caption=f"{name} · {size}×{size} px", width=int(picture.shape[1]),
                  output_format="PNG")
    cols[1].markdown("**1. Without a map**\n\n" + probability_table(result["first_probs"], classes, truth))
    chosen = result["map"]  # (C, H, W) display order
    shown, what = map_picture(chosen, basis, display_factor(chosen.shape[-1], picture.shape[1]))
    where = "zero frequency centred" if basis == FOURIER else basis
    cols[2].image(encode_png(shown), width=int(shown.shape[1]), output_format="PNG",
                  caption=f"2. Map of class “{classes[result['first_pred']]}” · {what}, {where}")
    cols[3].markdown("**3. Defended (filtered by that map)**\n\n"
                     + probability_table(result["defended_probs"], classes, truth))


def render_live(experiment: Experiment, maps_key: str, params: dict) -> None:
    model, note = experiment_model(experiment)
    if model is None:
        st.warning(f"The live defence needs the model: {note}")
        return
    classes = experiment.classes
    views = defence_views(experiment, params["image"], params["attack"], maps_key, model)
    truth = classes[int(experiment.labels()[params["image"]])]
    st.markdown(f"True class: **{truth}** (the defence does not use it)")
    cases = [("Clean image", views["clean"], views["clean_defence"])]
    if "adversarial" in views:
        cases.append((f"Adversarial image ({attack_label(params['attack'])})", views["adversarial"],
                      views["adversarial_defence"]))
    interactive = st.toggle("Interactive charts (zoom, hover values)", key="defence_interactive",
                            help="Plotly charts instead of pictures and tables; slower to draw.")
    for name, image, result in cases:
        st.markdown(f"#### {name}")
        slug = "clean" if name.startswith("Clean") else "adversarial"
        cols = st.columns(4)
        (live_charts if interactive else live_pictures)(cols, name, slug, image, result, classes, classes.index(truth),
                                                        experiment_basis_key(experiment))
        verdict = "correct" if classes[result["defended_pred"]] == truth else "wrong"
        cols[1].markdown(f"First prediction: **{classes[result['first_pred']]}**")
        cols[3].markdown(f"Defended prediction: **{classes[result['defended_pred']]}** ({verdict})")
    caption("The defence at test time: (1) the model predicts; (2) that prediction picks one class-level map; "
            "(3) the image filtered by that map is classified again. On an adversarial image the first prediction "
            "is the attacker's class, whose map was trained to undo such attacks.")


def table_matrix(table: dict) -> tuple[np.ndarray, list[str], list[str]]:
    rows, columns = table["rows"], table["columns"]
    matrix = np.array([[table["accuracy"].get(r, {}).get(c, np.nan) for c in columns] for r in rows], dtype=float)
    return matrix, rows, columns


def sampling_note(n: int) -> str:
    """How far a share of n images can move by chance: its largest standard error, sqrt(0.25 / n)."""
    if n < 1:
        return ""
    return (f"Each cell is a share of {n} images, so its standard error is up to ±{math.sqrt(0.25 / n):.2f}: "
            "read differences smaller than about twice that as noise.")


def render_table(experiment: Experiment) -> None:
    st.subheader("Table IV: accuracy with class-level maps")
    table = experiment.defence_table()
    if table is None:
        st.info("This experiment has no defence table (it needs class-level maps: build with a train split).")
        return
    matrix, rows, columns = table_matrix(table)
    cols = st.columns(2)
    with cols[0]:
        fig = figures.accuracy_heatmap_figure(matrix, [attack_label(r) for r in rows],
                                              [attack_label(c) for c in columns],
                                              f"This experiment (N = {table['n']} test images)")
        chart(fig, key="defence_table_ours", filename="table4")
        html_download(fig, key="defence_table_html", filename="table4.html")
    with cols[1]:
        paper = np.array([[TABLE_IV[r][c] for c in TABLE_IV_COLUMNS] for r in TABLE_IV_ROWS])
        chart(figures.accuracy_heatmap_figure(paper, [attack_label(r) for r in TABLE_IV_ROWS],
                                              [attack_label(c) for c in TABLE_IV_COLUMNS],
                                              "Paper (CIFAR-10, ResNet-20)"),
              key="defence_table_paper", filename="table4_paper")
    caption("Rows: the test images as they are and attacked; columns: no map, or class-level maps trained "
            "against each attack, each image's map picked by the model's own first prediction. Cells: accuracy "
            f"against the true labels. {sampling_note(table['n'])}")
    published = table.get("clean_true_label_map") or {}
    if published:
        st.markdown("**Published evaluation variant** (clean images filtered by the map of their *true* label, "
                    "which a real defence cannot know): " +
                    ", ".join(f"{attack_label(k)} maps {v:.2f}" for k, v in published.items()))
    records = [{"test data": attack_label(r), **{attack_label(c): table["accuracy"][r].get(c) for c in columns}}
               for r in rows]
    st.download_button("Table IV (CSV)", data=csv_bytes(records), file_name=f"{experiment.id}_table4.csv",
                       mime="text/csv", key="defence_table_csv")


LIVE_ATTACK_EPS_255 = 8.0  # budget of the live adaptive attack, 1/255 units (Table IV's PGD)
LIVE_ATTACK_STEPS = 10  # PGD-BPDA steps of the live attack: a few seconds for one 32x32 image on a CPU
WHAT_THE_DEFENCE_DOES = (
    "**What the defence does and does not do.** It filters each image with the class-level map of the class the "
    "model first predicts, then classifies the filtered image again. Against an attack that ignores it (Table IV: "
    "PGD on the bare model) this undoes part of the damage, because the attacker's class picks a map trained to "
    "bring such images back. It does not make the model robust: the whole defence is one differentiable function "
    "(the pick is piecewise constant), so an attacker who knows it attacks the defended model directly (PGD through "
    "the picked branch, BPDA, or through every map at once) and accuracy falls again. Read Table IV as the defence "
    "against a naive attacker, the adaptive table as the defence against one who knows it.")


def live_attack_result(model: object, maps: np.ndarray, image: np.ndarray, label: int, basis: str = FOURIER,
                       layer: str = INPUT) -> dict:
    """Adaptive PGD-BPDA through the defence on one image (3, H, W) in [0, 1], with class maps (K, C, H, W) in the
    display order of `basis` (a manifest key) at `layer`: the defended prediction and the L∞ norm of the
    adversarial."""
    import torch

    defended = DefendedClassifier.from_stored(model, torch.from_numpy(np.array(maps, dtype=np.float32)),
                                              basis=basis_from_key(basis), layer=layer)
    result = adaptive_pgd(defended, torch.from_numpy(np.ascontiguousarray(image))[None], torch.tensor([label]),
                          LIVE_ATTACK_EPS_255 / 255, objective="bpda", steps=LIVE_ATTACK_STEPS, seed=0)
    return {"pred": int(result.pred[0]), "linf": float(result.linf[0])}


def render_live_attack(experiment: Experiment, maps_key: str, index: int) -> None:
    """A button: attack the defended model on the picked image, and say whether the defence still holds for it."""
    model, _ = experiment_model(experiment)
    if model is None:
        return
    st.markdown("#### Attack the defended model")
    key = (experiment.id, maps_key, int(index))
    if st.button("Attack the defended model", key="defence_adaptive_go",
                 help=f"Adaptive PGD-BPDA through the defence, ε = {LIVE_ATTACK_EPS_255:g}/255, "
                      f"{LIVE_ATTACK_STEPS} steps: seconds on a CPU"):
        waiting = st.empty()
        try:
            with live_slot(lambda: waiting.info(f"Waiting for a free slot: {LIVE_SLOTS} live runs are going…")):
                waiting.empty()
                with st.spinner("Attacking the defended model…"):
                    result = live_attack_result(model, experiment.class_maps(maps_key), experiment.image(index),
                                                int(experiment.labels()[index]), experiment_basis_key(experiment),
                                                experiment_layer(experiment))
        except (BusyError, ValueError) as err:
            st.error(str(err))
            return
        st.session_state["defence_adaptive_result"] = {"key": key, **result}
    shown = st.session_state.get("defence_adaptive_result")
    if not shown or shown["key"] != key:
        caption("The attacks above ignore the defence. This one knows it: PGD through the defended model "
                f"(BPDA: the gradient of the map the first pass picks), ε = {LIVE_ATTACK_EPS_255:g}/255, "
                f"{LIVE_ATTACK_STEPS} steps.")
        return
    classes, truth = experiment.classes, int(experiment.labels()[index])
    holds = shown["pred"] == truth
    verdict = "the defence still holds for this image" if holds else "the defence does not hold for this image"
    st.markdown(f"Adaptive PGD-BPDA (ε = {LIVE_ATTACK_EPS_255:g}/255, {LIVE_ATTACK_STEPS} steps, L∞ "
                f"{255 * shown['linf']:.1f}/255): defended prediction **{classes[shown['pred']]}**, true class "
                f"**{classes[truth]}**: {verdict}.")


@st.fragment
def live_defence(experiment: Experiment, maps_key: str) -> None:
    """The live defence as a fragment: picking another image or attack reruns only this part, not the class-map
    grid and Table IV above and below it (Plotly charts that cost the browser a redraw each)."""
    params = live_ui(experiment)
    render_live(experiment, maps_key, params)
    render_live_attack(experiment, maps_key, params["image"])


def adaptive_records(table: dict, block: dict) -> list[dict]:
    """One row per adaptive attack and class-map set: ours (both denominators), Table IV's row it extends, paper."""
    records = []
    for row in block["rows"]:
        base = block["extends"].get(row, "")
        for column in block["columns"]:
            if column not in block["accuracy"][row]:
                continue
            records.append({
                "attack on the defence": attack_label(row), "class maps": attack_label(column),
                "accuracy (all N)": block["accuracy"][row][column],
                "accuracy (clean-correct)": block["accuracy_clean_correct"][row][column],
                "Table IV, same attack ignoring the defence": table["accuracy"].get(base, {}).get(column),
                "paper (Table IV)": TABLE_IV.get(base, {}).get(column),
            })
    return records


def render_adaptive(experiment: Experiment) -> None:
    """The adaptive attacks' table beside Table IV and the paper's, their sanity checks, the robustness curves."""
    st.subheader("Attacks that know the defence")
    st.markdown(WHAT_THE_DEFENCE_DOES)
    table = experiment.defence_table()
    block = (table or {}).get("adaptive")
    if not block:
        st.info("This experiment has no adaptive attacks: build it with `--adaptive-attacks pgd+bpda pgd+all-maps "
                "fmn+defended` (and `--robustness-curve` for accuracy against ε).")
    else:
        rows, columns = block["rows"], block["columns"]
        matrix = np.array([[block["accuracy"][r].get(c, np.nan) for c in columns] for r in rows], dtype=float)
        fig = figures.accuracy_heatmap_figure(matrix, [attack_label(r) for r in rows],
                                              [attack_label(c) for c in columns],
                                              f"Adaptive attacks (N = {block['n']} test images)",
                                              y_title="test images attacked through the defence by")
        chart(fig, key="defence_adaptive_table", filename="adaptive_table")
        records = adaptive_records(table, block)
        st.dataframe(records, key="defence_adaptive_records", hide_index=True)
        caption(f"Accuracy over all N = {block['n']} test images, and over the {block['n_clean_correct']} the bare "
                "model classifies correctly when clean (the published denominator). Each row extends the Table IV "
                "row whose key it begins with ('pgd-8+bpda' extends 'pgd-8'): the same budget, an attacker who "
                f"knows the defence. {sampling_note(block['n'])}")
        st.download_button("Adaptive table (CSV)", data=csv_bytes(records), file_name=f"{experiment.id}_adaptive.csv",
                           mime="text/csv", key="defence_adaptive_csv")
        checks = block.get("checks", [])
        if checks:
            st.markdown("**Sanity checks** (Carlini et al. 2019)\n\n" + "\n".join(
                f"- {'passed' if c['passed'] else '**failed**'}: {c['check'].replace('_', ' ')} "
                f"({attack_label(c['row'])}, {attack_label(c['column'])} maps): {c['message']}" for c in checks))
    for maps_key, curve in experiment.robustness_curves().items():
        fig = figures.robustness_curve_figure(curve["eps_255"], {r: curve["accuracy"][r] for r in curve["rows"]},
                                              f"Accuracy against ε, class maps trained against {attack_label(maps_key)} "
                                              f"(N = {curve['n']})")
        chart(fig, key=f"defence_curve_{maps_key}", filename=f"robustness_curve_{maps_key}")
        failed = [c for c in curve.get("checks", []) if not c["passed"]]
        caption("undefended: the bare model under PGD; non adaptive: the defence under that same PGD (Table IV); "
                "then each adaptive attack, and the worst case (an image counts only if no attack fooled it)."
                + (" Not falling to 0 at 16/255: " + "; ".join(f"{c['row']}: {c['message']}" for c in failed)
                   if failed else ""))


through_app()
st.title("Defence with class-level maps")
current = require_experiment()
params = defence_ui(current)
if params["maps"] is None:
    st.info("This experiment has no class-level maps. They are trained on a training split: build with "
            "`python -m precompute run --preset demo` (it includes them) or pass `--train-data`.")
else:
    render_class_maps(current, params["maps"])
    st.subheader("Live: defend one image")
    if current.has_images:
        live_defence(current, params["maps"])
    else:
        show_results_only(current, "the live defence (the model on an image and on its attacked copy)")
render_table(current)
render_adaptive(current)
