"""A small but complete, valid experiment cache with random arrays, for the app's tests.

    path = write_fake_experiment(tmp_path / "cache")

N images (default 6) in K classes, attacks FMN and PGD ε=8/255, every map status that exists
(misclassified image 0, FMN failing on image 1, a lost PGD map on image 5), correlations,
class-level maps and the defence table. The model entry is a ResNet-20 without checkpoint, which
the app rebuilds with random weights from the experiment's seed.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from core.metrics.repairing import repaired_cosine
from experiments.config import ExperimentConfig
from experiments.file_hash import sha256_file
from experiments.format import (
    STATUS_ATTACK_FAILED,
    STATUS_KEPT,
    STATUS_LOST,
    STATUS_MISCLASSIFIED,
    adversarial_set,
)
from experiments.store import ExperimentStore

CLASSES = ("airplane", "cat", "dog", "ship")


def _probs_with_argmax(rng: np.random.Generator, argmax: np.ndarray, k: int) -> np.ndarray:
    probs = rng.dirichlet(np.ones(k), size=len(argmax)).astype(np.float32)  # (N, K)
    probs[np.arange(len(argmax)), argmax] += 1.0
    return probs / probs.sum(axis=1, keepdims=True)


LAYER_SHAPES = {"layer1": (16, 32, 32), "layer2": (32, 16, 16), "layer3": (64, 8, 8)}  # ResNet-20 at 32 px


def _sparse_maps(rng: np.random.Generator, m: int, size: int, shape: tuple[int, int, int] | None = None,
                 centred: bool = True) -> np.ndarray:
    """(m, C, H, W) maps (C, H, W = 3, size, size unless `shape`) keeping the origin (the zero frequency, centred
    for the Fourier bases, else the top-left coefficient) and 12 random entries."""
    c, h, w = shape or (3, size, size)
    maps = np.zeros((m, c, h, w), np.float32)
    maps[:, :, h // 2 if centred else 0, w // 2 if centred else 0] = 1.0  # the origin is always kept
    for i in range(m):
        idx = rng.choice(c * h * w, size=12, replace=False)
        maps[i].reshape(-1)[idx] = rng.uniform(0.2, 1.0, size=12)
    return maps


def _write_map_set(store: ExperimentStore, name: str, status: np.ndarray, rng: np.random.Generator, size: int,
                   targets: np.ndarray, shape: tuple[int, int, int] | None = None, centred: bool = True) -> None:
    positions = np.flatnonzero((status == STATUS_KEPT) | (status == STATUS_LOST))
    row = np.full(len(status), -1, np.int64)
    row[positions] = np.arange(len(positions))
    maps = _sparse_maps(rng, len(positions), size, shape, centred)
    kept = status[positions] == STATUS_KEPT
    arrays = {
        "maps": maps, "steps": np.full(len(positions), 501, np.int64), "final_loss": rng.uniform(0, 1, len(positions)).astype(np.float32),
        "kept": kept, "final_pred": targets[positions].astype(np.int64), "positions": positions.astype(np.int64),
        "row": row, "status": status.astype(np.int8), "nonzero": (maps > 0).reshape(len(positions), -1).sum(1).astype(np.int64),
        "dc_only": np.zeros(len(positions), bool),
    }
    if maps.shape[-1] > 32:
        f = size // 32
        arrays["pooled_avg"] = maps.reshape(len(positions), 3, 32, f, 32, f).mean(axis=(3, 5)).astype(np.float32)
    store.write_arrays(f"maps/{name}", arrays)
    store.mark_stage(f"maps-{name}", n_attempted=len(positions), n_kept=int(kept.sum()), median_nonzero=13.0,
                     dc_only_share=0.0, mean_steps=501.0, map_set=name)


def write_fake_experiment(root: str, *, n: int = 6, size: int = 32, classes: tuple[str, ...] = CLASSES,
                          attacks: tuple[str, ...] = ("fmn", "pgd-8"), model: str = "resnet20", seed: int = 0,
                          name: str = "fake", class_maps: bool = True, images: np.ndarray | None = None,
                          checkpoint: str | None = None, input_norm: str | None = None, basis: str = "fourier",
                          wavelet: str = "haar", wavelet_levels: int = 3, layer: str = "input") -> str:
    """Write the experiment under `root` and return its directory.

    images: optional uint8 (n, 3, size, size) pictures to use instead of random pixels (image i is
    labelled classes[i % K]). checkpoint / input_norm: real weights for the app's live parts
    (filtered predictions, defence, Lab); by default the model has random weights. basis (wavelet,
    wavelet_levels) and layer: where the maps act, recorded as the manifest's "basis" (the Basis key),
    "layer" and "map_shape"; the maps get that shape (ResNet-20's features at a hidden layer, LAYER_SHAPES).
    """
    rng = np.random.default_rng(seed)
    k = len(classes)
    config = ExperimentConfig(
        name=name, model=model, checkpoint=checkpoint,
        checkpoint_sha256=sha256_file(checkpoint) if checkpoint else "random-or-backbone-weights",
        input_norm=input_norm or ("none" if model == "resnet20" else "imagenet"), data="fake-data", image_size=size,
        attacks=tuple(dict.fromkeys(a.partition("-")[0] for a in attacks)), eps=(8.0,), lam=0.1, seed=seed,
        basis=basis, wavelet=wavelet, wavelet_levels=wavelet_levels, layer=layer,
    )
    map_shape = (3, size, size) if layer == "input" else LAYER_SHAPES[layer]
    centred = basis in ("fourier", "phase")
    space = {"basis": config.map_basis().key, "layer": layer, "map_shape": list(map_shape)}
    store = ExperimentStore(os.path.join(root, config.experiment_id()))
    store.create(config.experiment_id(), config.to_dict(), {"config_hash": config.config_hash(),
                                                            "map_order": "fftshift (zero frequency at [H//2, W//2])"
                                                            if centred else "natural", **space})
    if images is None:
        images = rng.integers(0, 256, size=(n, 3, size, size), dtype=np.uint8)
    elif images.shape != (n, 3, size, size) or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape {(n, 3, size, size)}, got {images.dtype} {images.shape}")
    labels = (np.arange(n) % k).astype(np.int64)
    store.write_arrays("test", {"images": images, "labels": labels})
    store.write_json("test/meta.json", {"ids": [f"{i}.png" for i in range(n)], "classes": list(classes)})
    store.mark_stage("test", n=n, source="fake-data", split="test")

    pred = labels.copy()
    pred[0] = (labels[0] + 1) % k  # image 0 is misclassified: it has no maps
    store.write_arrays("test/classify", {"pred": pred, "probs": _probs_with_argmax(rng, pred, k)})
    store.mark_stage("test-classify", n=n, accuracy=float((pred == labels).mean()))
    correct = pred == labels

    essential_status = np.where(correct, STATUS_KEPT, STATUS_MISCLASSIFIED).astype(np.int8)
    for key in attacks:
        success = correct.copy()
        if key == "fmn":
            success[1] = False  # FMN fails on image 1
        adv_pred = np.where(success, (labels + 1) % k, pred).astype(np.int64)
        eps = 8 / 255
        adversarial = np.clip(images / 255 + rng.uniform(-eps, eps, size=images.shape), 0, 1).astype(np.float32)
        delta = (adversarial - images / 255).reshape(n, -1)
        store.write_arrays(f"test/attacks/{key}", {
            "adversarial": adversarial, "adv_pred": adv_pred, "adv_probs": _probs_with_argmax(rng, adv_pred, k),
            "success": success, "linf": np.abs(delta).max(1).astype(np.float32),
            "l2": np.linalg.norm(delta, axis=1).astype(np.float32),
        })
        store.mark_stage(f"test-attack-{key}", n=n, n_correct=int(correct.sum()), n_success=int(success.sum()),
                         success_rate=float(success[correct].mean()), attack=key.partition("-")[0])
    _write_map_set(store, "essential", essential_status, rng, size, labels, map_shape, centred)
    for key in attacks:
        success = np.asarray(store.load_array(f"test/attacks/{key}/success.npy"))
        status = essential_status.copy()
        status[(status == STATUS_KEPT) & ~success] = STATUS_ATTACK_FAILED
        if key.startswith("pgd"):
            status[n - 1] = STATUS_LOST  # training ended without the adversarial label
        adv_pred = np.asarray(store.load_array(f"test/attacks/{key}/adv_pred.npy"))
        _write_map_set(store, adversarial_set(key), status, rng, size, adv_pred, map_shape, centred)
    for key in attacks:
        _write_correlation(store, key, rng)
    if class_maps:
        for key in attacks:
            store.write_arrays(f"class_maps/{key}", {
                "maps": _sparse_maps(rng, k, size, map_shape, centred), "iterations": np.full(k, 600, np.int64),
                "final_loss": rng.uniform(0, 1, k).astype(np.float32), "n_clean": np.full(k, 10, np.int64),
                "n_adversarial": np.full(k, 9, np.int64),
            })
            store.mark_stage(f"class-maps-{key}", mean_iterations=600.0, n_clean=10 * k, n_adversarial=9 * k)
        accuracy = {row: {col: float(rng.uniform(0, 1)) for col in ["none", *attacks]} for row in ["clean", *attacks]}
        store.write_json("defence/table.json", {"rows": ["clean", *attacks], "columns": ["none", *attacks],
                                                "accuracy": accuracy, "n": n,
                                                "clean_true_label_map": {key: 0.5 for key in attacks}})
        store.mark_stage("defence", n=n)
    return store.path


def cifar_pictures(folder: str, n: int, classes: tuple[str, ...] = CLASSES) -> np.ndarray | None:
    """uint8 (n, 3, 32, 32) real pictures from an ImageFolder of CIFAR-10 PNGs (image i of class i % K), or None."""
    from PIL import Image

    pictures = []
    for i in range(n):
        directory = os.path.join(folder, classes[i % len(classes)])
        if not os.path.isdir(directory):
            return None
        files = sorted(os.listdir(directory))
        with Image.open(os.path.join(directory, files[i // len(classes)])) as picture:
            pictures.append(np.asarray(picture.convert("RGB")).transpose(2, 0, 1))
    return np.stack(pictures).astype(np.uint8)


def _write_correlation(store: ExperimentStore, key: str, rng: np.random.Generator) -> None:
    essential = np.asarray(store.load_array("maps/essential/status.npy"))
    adversarial = np.asarray(store.load_array(f"maps/{adversarial_set(key)}/status.npy"))
    positions = np.flatnonzero((essential == STATUS_KEPT) & (adversarial == STATUS_KEPT))
    rows = []
    for name in ("essential", adversarial_set(key)):
        maps = store.load_array(f"maps/{name}/pooled_avg.npy" if store.has_array(f"maps/{name}/pooled_avg.npy")
                                else f"maps/{name}/maps.npy")
        row = np.asarray(store.load_array(f"maps/{name}/row.npy"))[positions]
        rows.append(torch.from_numpy(np.asarray(maps[row], dtype=np.float64).reshape(len(positions), -1)))
    repaired = repaired_cosine(rows[0], rows[1], repairings=10, seed=0)  # the real baseline, as the stage computes it
    cosine = rng.uniform(0.3, 0.9, len(positions)).astype(np.float32)
    null_ids = rng.normal(6.0, 0.5, 100).astype(np.float32)
    summary = {
        "n": int(len(positions)), "dim": 3072, "svcca": 0.31, "cosine_mean": float(cosine.mean()),
        "cosine_std": float(cosine.std()), "idcor": 0.42, "p_value": 0.0099, "id_a": 3.1, "id_b": 3.4, "id_joint": 4.2,
        "permutations": 100, "seed": 0, "pool": "none", "repairings": 10, "repaired_cosine_mean": repaired["mean"],
        "repaired_cosine_std": repaired["std"], "repaired_svcca_mean": 0.1, "repaired_svcca_std": 0.05, "attack_key": key,
    }
    store.write_arrays(f"correlations/{key}", {"positions": positions.astype(np.int64), "cosine": cosine,
                                               "null_ids": null_ids})
    store.write_json(f"correlations/{key}.json", summary)
    store.mark_stage(f"correlate-{key}", n=summary["n"], idcor=0.42)
