"""Lab: upload or pick an image, choose λ, steps and an attack, and train its two maps live; edit a mask by hand
(ui/editor_panel.py) and watch the model's answer change."""

from __future__ import annotations

import copy
import io
import time
import uuid
from dataclasses import replace

import numpy as np
import streamlit as st

from core.attacks import ATTACKS
from experiments.reader import Experiment
from ui.arrays import to_hwc_uint8
from ui.compute import classify, train_live
from ui.editor_panel import render_mask_editor
from ui.entry import through_app
from ui.live import LIVE_SLOTS, BusyError, live_slot
from ui.loaders import experiment_model
from ui.pair_views import render_pair_views
from ui.picker import require_experiment, show_results_only

LAMBDAS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]  # L1 weights offered (CIFAR-10 paper: 0.5)
EPS_CHOICES = [1, 2, 3, 4, 8, 16]  # PGD budgets in 1/255
PICK, UPLOAD = "an image of the experiment", "my own image (PNG or JPEG)"


def load_upload(data: bytes, size: int) -> tuple[np.ndarray, str]:
    """Uploaded bytes -> (3, size, size) float32 in [0, 1] and its original size as text.

    Raises ValueError (core.data.user_image.ImageLoadError) with a message for the user if unusable.
    """
    from PIL import Image

    from core.data.user_image import load_user_image

    image = load_user_image(data, size)  # (1, 3, S, S)
    with Image.open(io.BytesIO(data)) as header:  # decoded fine above; the header gives the original size
        original = f"{header.size[0]}×{header.size[1]}"
    return np.asarray(image[0], dtype=np.float32), original


def upload_ui(size: int, model: object) -> tuple[np.ndarray | None, str, int]:
    """The upload widget and a preview of the image as the model sees it -> (3, size, size) image or None, its name,
    and the class its essential map keeps by default (the model's prediction; 0 without a model or an image)."""
    upload = st.file_uploader("PNG or JPEG, any size (it is resized to the model's input)", type=["png", "jpg", "jpeg"],
                              key="lab_upload")
    if upload is None:
        return None, "", 0
    try:
        image, original = load_upload(upload.getvalue(), size)
    except ValueError as err:
        st.error(f"Could not use {upload.name}: {err}")
        return None, "", 0
    name = upload.name.rsplit(".", 1)[0][:40] or "upload"
    label_default = int(np.argmax(classify(model, image[None])[0])) if model is not None else 0
    cols = st.columns([1, 3])
    cols[0].image(to_hwc_uint8(image).repeat(max(1, 128 // size), 0).repeat(max(1, 128 // size), 1),
                  caption=f"as the model sees it: {size}×{size} px", width="content")
    cols[1].caption(f"Your {original} px image is resized to {size}×{size} px (bilinear, aspect ratio not "
                    "kept), as the model's training images were. The essential map keeps the class you "
                    "choose below, by default the model's own prediction.")
    return image, name, label_default


def lab_ui(experiment: Experiment, model: object) -> dict:
    """Widgets of the Lab -> image (3, S, S) or None, label, lam, min/max steps, attack, eps, go."""
    classes, size = experiment.classes, experiment.config.image_size
    source = st.radio("Image", [PICK, UPLOAD], key="lab_source", horizontal=True)
    image, name, index = None, "", None
    if source == PICK and not experiment.has_images:
        show_results_only(experiment, "picking an image of the experiment (upload your own instead)")
        label_default = 0
    elif source == PICK:
        labels = experiment.labels()
        index = st.selectbox("Image of the experiment", list(range(experiment.n)), key="lab_image",
                             format_func=lambda i: f"#{i} {classes[labels[i]]}")
        image, name, label_default = experiment.image(index), f"image{index}", int(labels[index])
        index = int(index)
    else:
        image, name, label_default = upload_ui(size, model)
    if image is not None and st.session_state.get("lab_label_for") != name:
        st.session_state["lab_label"] = label_default  # a new image: start from its label / the model's answer
        st.session_state["lab_label_for"] = name
    label = st.selectbox("Class the essential map must keep", list(range(len(classes))), format_func=classes.__getitem__,
                         key="lab_label")
    cols = st.columns([3, 2, 2, 2, 3])
    default_lam = experiment.config.lam if experiment.config.lam in LAMBDAS else 0.1
    lam = cols[0].select_slider("λ (L1 weight)", LAMBDAS, value=default_lam, key="lab_lambda",
                                help="Larger λ: sparser maps (METHOD §2); at 0.5 many maps keep only the zero frequency")
    min_steps = cols[1].number_input("No stop before step", min_value=0, max_value=5000, value=150, step=50,
                                     key="lab_min_steps", help="The stop test (loss settled) is tried only after this")
    max_steps = cols[2].number_input("Step limit", min_value=20, max_value=5000, value=500, step=50, key="lab_max_steps",
                                     help="Training stops here at the latest (the paper: 5000)")
    attack = cols[3].selectbox("Attack", list(ATTACKS), format_func=lambda a: ATTACKS[a].label, key="lab_attack")
    eps = None
    if ATTACKS[attack].needs_eps:
        eps = cols[4].select_slider("PGD budget ε (/255)", EPS_CHOICES, value=8, key="lab_eps") / 255
    go = st.button("Train the two maps", type="primary", key="lab_train", disabled=image is None or model is None)
    return {"image": image, "name": name, "index": index, "label": int(label), "lam": float(lam), "min_steps": int(min(min_steps, max_steps)),
            "max_steps": int(max_steps), "attack": attack, "eps": eps, "go": go}


def run_training(model: object, params: dict) -> None:
    """Train under a live slot with a progress bar; the result goes to st.session_state['lab_result']."""
    waiting = st.empty()
    bar = st.progress(0.0, text="Starting…")
    last = {"value": -1.0}

    def progress(stage: str, fraction: float) -> None:
        value = 0.1 * fraction if stage == "attack" else 0.1 + 0.9 * fraction
        if value - last["value"] >= 0.01 or fraction >= 1:
            last["value"] = value
            text = "Attacking the image…" if stage == "attack" else f"Training the maps… {100 * fraction:.0f} % of the step limit"
            bar.progress(min(1.0, value), text=text)

    start = time.perf_counter()
    try:
        with live_slot(lambda: waiting.info(f"Waiting for a free slot: {LIVE_SLOTS} live trainings are running…")):
            waiting.empty()
            # A private copy: training switches its model's train/eval mode and requires_grad flags (and leaves
            # it in train mode), which on the server-wide cached model would change every session's predictions.
            result = train_live(copy.deepcopy(model), params["image"], params["label"], attack=params["attack"],
                                eps=params["eps"], lam=params["lam"], min_steps=params["min_steps"],
                                max_steps=params["max_steps"], progress=progress)
    except (BusyError, ValueError) as err:
        bar.empty()
        st.session_state["lab_error"] = str(err)
        st.error(str(err))
        return
    bar.progress(1.0, text=f"Done in {time.perf_counter() - start:.1f} s")
    lab = replace(result.lab, seconds=time.perf_counter() - start, run_id=uuid.uuid4().hex)
    st.session_state["lab_result"] = replace(result, image_id=params["name"], lab=lab)
    st.session_state["lab_error"] = None


def render_lab_result(experiment: Experiment) -> None:
    """The last live training's views (ui.image_views.ImageViews with its LabRun), or what to do first."""
    result = st.session_state.get("lab_result")
    if result is None:
        st.info("Choose an image and settings, then press **Train the two maps**.")
        return
    run, name = result.lab, result.image_id
    steps = ", ".join(f"{k} map {v} steps" for k, v in run.steps.items()) or "no map trained"
    eps = f" ε = {run.eps * 255:.0f}/255" if run.eps else ""
    st.markdown(f"### Result for `{name}` · {ATTACKS[run.attack].label}{eps} · λ = {run.lam:g} · "
                f"{steps} · {run.seconds:.1f} s")
    render_pair_views(result, experiment.classes, "lab", file_stem=f"lab_{name}_{run.attack}",
                      cache_key=(run.run_id,), per_session=True)


through_app()
st.title("Lab: train maps live")
st.caption("Maps for one image take seconds on a CPU at 32×32 (much longer at 224×224). "
           f"At most {LIVE_SLOTS} trainings run at once on this server; the others wait for a free slot.")
current = require_experiment()
classifier, model_note = experiment_model(current)
if classifier is None:
    st.warning(f"Live training needs the model: {model_note}")
lab_params = lab_ui(current, classifier)
if lab_params["go"] and classifier is not None and lab_params["image"] is not None:
    run_training(classifier, lab_params)
render_lab_result(current)


@st.fragment
def mask_editor(experiment: Experiment, model: object, params: dict) -> None:
    """The mask editor as one fragment: moving a slider or clicking a coefficient reruns only the editor."""
    render_mask_editor(experiment, model, params["image"], params["index"], params["label"], experiment.classes)


st.divider()
mask_editor(current, classifier, lab_params)
