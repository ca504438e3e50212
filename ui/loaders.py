"""Cached readers for the pages: experiment listings and opened experiments, models, per-image views.

st.cache_resource holds objects shared by all sessions and never copied (opened experiments with
their memory maps, models); st.cache_data holds arrays and listings (copied per call, so a page
cannot alter another session's data). Every key includes the manifest's modification time, so a
re-run of `python -m precompute run` is picked up without restarting the app.

torch is imported only inside the functions that need a model or torch's maths: the Home page and
the sidebar draw from stored arrays alone, so a first visit does not wait seconds for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from experiments.format import ESSENTIAL, STATUS_KEPT, adversarial_set, pooled_name
from experiments.reader import Experiment, ExperimentListing, find_experiments
from experiments.store import CacheError
from experiments.verified import VerifiedFiles
from experiments.verified import default_path as default_verified_path
from ui.checkpoint import resolve_checkpoint
from ui.image_views import ImageViews
from ui.map_basis import experiment_basis_key, experiment_layer, filter_in_basis
from ui.roots import manifest_stamp

if TYPE_CHECKING:
    from torch import nn


@st.cache_data(show_spinner="Checking the experiment caches…", max_entries=8)
def list_experiments(roots: tuple[str, ...], stamp: tuple) -> list[ExperimentListing]:
    """Every experiment under the roots, deep-checked (checksums); `stamp` keys the cache. Files that matched
    their checksum at an earlier start and have not changed since are not read again (experiments/verified.py):
    a server start would otherwise read every byte of every experiment before its first page."""
    verified = VerifiedFiles(default_verified_path())
    listings = find_experiments(list(roots), deep=True, verified=verified)
    verified.save()
    return listings


@st.cache_resource(show_spinner=False, max_entries=16)
def _open(path: str, stamp: int) -> Experiment:
    return Experiment(path, verify=False)  # the listing has verified its checksums


def open_experiment(path: str) -> Experiment:
    """The experiment at `path`, opened once per manifest version (CacheError if damaged)."""
    return _open(path, manifest_stamp(path))


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load_model(model: str, checkpoint: str | None, input_norm: str, seed: int, num_classes: int) -> nn.Module:
    import torch

    from core.models.registry import build_model

    torch.manual_seed(seed)  # experiments without a checkpoint were built right after this seed
    return build_model(model, checkpoint=checkpoint, input_norm=input_norm, num_classes=num_classes)


def experiment_model(experiment: Experiment) -> tuple[nn.Module | None, str]:
    """The classifier of an experiment (eval mode, CPU) and a sentence about its weights; None + why if missing."""
    config = experiment.config
    try:
        checkpoint, note = resolve_checkpoint(config)
        return _load_model(config.model, checkpoint, config.input_norm, config.seed, len(experiment.classes)), note
    except (FileNotFoundError, ValueError, OSError) as err:
        return None, str(err)


def model_id(experiment: Experiment) -> str:
    """A string that names the experiment's model for cache keys."""
    c = experiment.config
    return f"{c.model}|{c.checkpoint_sha256}|{c.input_norm}|{c.seed}|{len(experiment.classes)}"


@st.cache_data(show_spinner=False, max_entries=64)  # ~5 MB per entry at 224×224
def image_views(path: str, stamp: int, index: int, attack_key: str | None, _model: nn.Module | None,
                model_key: str) -> ImageViews:
    """Everything Explore shows for one image and attack (see ui.compute.build_image_views)."""
    from ui.compute import build_image_views

    experiment = _open(path, stamp)
    return build_image_views(experiment, index, attack_key, _model)


def cached_image_views(experiment: Experiment, index: int, attack_key: str | None,
                       model: nn.Module | None) -> ImageViews:
    """image_views of an opened experiment: a copy per call (st.cache_data), keyed by the manifest's version."""
    return image_views(experiment.path, manifest_stamp(experiment.path), int(index), attack_key, model,
                       model_id(experiment) if model is not None else "none")


@st.cache_data(show_spinner=False, max_entries=32)
def image_labels(path: str, stamp: int, attack_key: str | None) -> tuple[dict[int, str], np.ndarray]:
    """Picker label per image (index, true class, prediction, whether it has both maps) and that mask (N,).

    Cached: building N labels and reading two map sets' status took ~12 ms of every Explore rerun (cProfile).
    """
    experiment = _open(path, stamp)
    labels, pred, classes = experiment.labels(), experiment.pred(), experiment.classes
    has = np.zeros(experiment.n, bool)
    if ESSENTIAL in experiment.map_set_names():
        has = np.asarray(experiment.map_set(ESSENTIAL)["status"]) == STATUS_KEPT
        if attack_key and adversarial_set(attack_key) in experiment.map_set_names():
            has &= np.asarray(experiment.map_set(adversarial_set(attack_key))["status"]) == STATUS_KEPT
    out = {}
    for i in range(experiment.n):
        verdict = "✓" if pred[i] == labels[i] else f"→ {classes[pred[i]]}"
        out[i] = f"#{i} {classes[labels[i]]} {verdict}{' · both maps' if has[i] else ''}"
    return out, has


def both_maps_positions(experiment: Experiment, attack_key: str) -> np.ndarray:
    """Indices of images with an essential and an adversarial map for `attack_key` (P,) int64."""
    names = experiment.map_set_names()
    if ESSENTIAL not in names or adversarial_set(attack_key) not in names:
        return np.zeros(0, np.int64)
    essential = np.asarray(experiment.map_set(ESSENTIAL)["status"])
    adversarial = np.asarray(experiment.map_set(adversarial_set(attack_key))["status"])
    return np.flatnonzero((essential == STATUS_KEPT) & (adversarial == STATUS_KEPT))


@st.cache_data(show_spinner=False, max_entries=16)
def _figure_one_rows(path: str, stamp: int, indices: tuple[int, ...], attack_key: str) -> list[dict]:
    experiment = _open(path, stamp)
    attack = experiment.attack(attack_key)
    sets = {"essential": experiment.map_set(ESSENTIAL), "adversarial": experiment.map_set(adversarial_set(attack_key))}
    rows = []
    for index in indices:
        clean = experiment.image(index)
        adversarial = np.asarray(attack["adversarial"][index], dtype=np.float32)
        row = {"index": index, "clean": clean, "adversarial": adversarial,
               "clean_pred": int(np.argmax(experiment.probs()[index])), "adv_pred": int(attack["adv_pred"][index])}
        for name, image in (("essential", clean), ("adversarial", adversarial)):
            data = sets[name]
            at = int(data["row"][index])
            row[f"filtered_{name}"] = filter_in_basis(image, np.asarray(data["maps"][at], dtype=np.float32),
                                                      experiment_basis_key(experiment))
            row[f"filtered_{name}_pred"] = int(data["final_pred"][at])
        rows.append(row)
    return rows


def figure_one_rows(experiment: Experiment, indices: np.ndarray, attack_key: str) -> list[dict]:
    """For each image (it must have both maps): clean and adversarial (3, H, W), both filtered by their maps,
    and the predictions; the filtered images' predictions are those recorded when the maps were trained,
    so this needs no model (and no torch): it draws the Home page's picture on a first visit."""
    return _figure_one_rows(experiment.path, manifest_stamp(experiment.path), tuple(int(i) for i in indices), attack_key)


def thumbnails(path: str, stamp: int, indices: tuple[int, ...]) -> np.ndarray:
    """uint8 (B, H, W, 3) pictures of the images at `indices`, at their stored size (not cached: thumbnail_uris is)."""
    images = _open(path, stamp).images()
    if not indices:
        return np.zeros((0, 1, 1, 3), np.uint8)
    return np.asarray(images[list(indices)]).transpose(0, 2, 3, 1)  # (B, H, W, 3)


@st.cache_data(show_spinner=False, max_entries=64)
def thumbnail_uris(path: str, stamp: int, indices: tuple[int, ...]) -> list[str]:
    """thumbnails() as data URIs for the gallery (ui/gallery.py), encoded once rather than on every rerun."""
    from ui.gallery import thumbnail_uri

    return [thumbnail_uri(picture) for picture in thumbnails(path, stamp, indices)]


@st.cache_data(show_spinner=False, max_entries=32)
def _paired_maps(path: str, stamp: int, attack_key: str) -> dict:
    experiment = _open(path, stamp)
    out = {}
    for label, name in (("essential", ESSENTIAL), ("adversarial", adversarial_set(attack_key))):
        if name not in experiment.map_set_names() or not experiment.has_maps(name):  # absent, or a results-only copy
            return {}
        data = experiment.map_set(name)
        out[label] = data
    status_e, status_a = out["essential"]["status"], out["adversarial"]["status"]
    positions = np.flatnonzero((np.asarray(status_e) == STATUS_KEPT) & (np.asarray(status_a) == STATUS_KEPT))
    result = {"positions": positions}
    pool = experiment.config.pool
    for label, data in out.items():
        rows = np.asarray(data["row"])[positions]
        if pooled_name(pool) in data or data["maps"].shape[-1] <= 32:
            source = data.get(pooled_name(pool), data["maps"])
            result[label] = np.asarray(source[rows], dtype=np.float32)  # (P, 3, h, w), 32×32 for large maps
        else:  # large maps without a stored pooled copy: pool a chunk at a time (never all maps in memory)
            import torch

            from core.metrics.pooling import pool_maps

            chunks = [pool_maps(torch.from_numpy(np.asarray(data["maps"][rows[i:i + 256]], dtype=np.float32)), 32, pool)
                      for i in range(0, len(rows), 256)]
            result[label] = torch.cat(chunks).numpy() if chunks else np.zeros((0, 3, 32, 32), np.float32)
    return result


def paired_maps(experiment: Experiment, attack_key: str) -> dict:
    """positions (P,), essential and adversarial (P, 3, h, w) maps of images with both (pooled copies if large);
    empty when the maps are absent (a results-only copy)."""
    return _paired_maps(experiment.path, manifest_stamp(experiment.path), attack_key)


@st.cache_data(show_spinner=False, max_entries=32)
def _repaired_cosines(path: str, stamp: int, attack_key: str, repairings: int, seed: int) -> np.ndarray:
    pairs = _paired_maps(path, stamp, attack_key)
    if not pairs or len(pairs["positions"]) < 2:
        return np.zeros(0)
    import torch

    from core.metrics.repairing import repaired_cosine

    n = len(pairs["positions"])
    a = torch.from_numpy(pairs["essential"].reshape(n, -1)).double()  # (P, D)
    b = torch.from_numpy(pairs["adversarial"].reshape(n, -1)).double()
    return repaired_cosine(a, b, repairings=repairings, seed=seed)["values"].flatten().numpy()


def repaired_cosines(experiment: Experiment, attack_key: str) -> np.ndarray:
    """Cosines of each essential map against the adversarial map of another image (random derangements).

    Same derangements as the correlation stage (its seed and count are in the summary), so the mean
    equals the table's re-paired cosine.
    """
    summary = experiment.correlation(attack_key) or {}
    repairings = int(summary.get("repairings") or max(1, experiment.config.repairings))
    seed = int(summary.get("seed", experiment.config.seed))
    return _repaired_cosines(experiment.path, manifest_stamp(experiment.path), attack_key, repairings, seed)


@st.cache_data(show_spinner=False, max_entries=32)
def _class_averages(path: str, stamp: int, attack_key: str) -> dict:
    experiment = _open(path, stamp)
    pairs = _paired_maps(path, stamp, attack_key)
    k = len(experiment.classes)
    if not pairs:
        return {}
    labels = experiment.labels()[pairs["positions"]]
    shape = pairs["essential"].shape[2:]
    out = {"essential": np.zeros((k, *shape)), "adversarial": np.zeros((k, *shape)), "counts": np.zeros(k, np.int64)}
    for c in range(k):
        rows = labels == c
        out["counts"][c] = int(rows.sum())
        if rows.any():
            out["essential"][c] = pairs["essential"][rows].mean(axis=(0, 1))  # channel and image mean (h, w)
            out["adversarial"][c] = pairs["adversarial"][rows].mean(axis=(0, 1))
    return out


def class_averages(experiment: Experiment, attack_key: str) -> dict:
    """Per true class: mean essential and adversarial map over images with both, channel-averaged (K, h, w)."""
    return _class_averages(experiment.path, manifest_stamp(experiment.path), attack_key)


@st.cache_data(show_spinner=False, max_entries=64)
def _defence_views(path: str, stamp: int, index: int, attack_key: str | None, maps_key: str,
                   _model: nn.Module, model_key: str) -> dict:
    from ui.compute import defend

    experiment = _open(path, stamp)
    class_maps = experiment.class_maps(maps_key)  # (K, C, H, W) in the basis's display order
    where = {"basis": experiment_basis_key(experiment), "layer": experiment_layer(experiment)}
    clean = experiment.image(index)
    out = {"clean": clean, "clean_defence": defend(_model, clean, class_maps, **where)}
    if attack_key is not None:
        adversarial = np.asarray(experiment.attack(attack_key)["adversarial"][index], dtype=np.float32)
        out.update(adversarial=adversarial, adversarial_defence=defend(_model, adversarial, class_maps, **where))
    return out


def defence_views(experiment: Experiment, index: int, attack_key: str | None, maps_key: str, model: nn.Module) -> dict:
    """The live defence on image `index`, clean and attacked, with the class maps trained against `maps_key`."""
    return _defence_views(experiment.path, manifest_stamp(experiment.path), int(index), attack_key, maps_key, model,
                          model_id(experiment))


__all__ = [
    "CacheError", "list_experiments", "open_experiment", "experiment_model", "cached_image_views", "figure_one_rows",
    "both_maps_positions", "image_labels", "thumbnails", "thumbnail_uris",
    "paired_maps", "repaired_cosines", "class_averages", "defence_views",
]
