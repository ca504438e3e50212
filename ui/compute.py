"""The app's small computations: filter an image by a map, classify, assemble one image's views,
the live defence and live map training for the Lab. No Streamlit here.

Maps come in centred (display) order as stored in the cache; they are turned to the FFT's natural
order only to filter (core.fourier). Models are frozen classifiers taking [0, 1] images on the CPU
(or wherever their parameters are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from core.fourier import to_display_order
from experiments.format import (
    ESSENTIAL,
    STATUS_ATTACK_FAILED,
    STATUS_KEPT,
    STATUS_LOST,
    STATUS_MISCLASSIFIED,
    STATUS_TEXT,
    adversarial_set,
)
from ui.arrays import cosine, filter_by_map, log_spectrum, perturbation_norms
from ui.image_views import ImageSide, ImageViews, LabRun


def _device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def classify(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """Softmax probabilities (B, K) float64 of float images (B, 3, H, W) in [0, 1]."""
    x = torch.as_tensor(np.array(images, dtype=np.float32), device=_device(model))
    return torch.softmax(model(x).double(), dim=1).cpu().numpy()


def filter_image(image: np.ndarray, map_display: np.ndarray) -> np.ndarray:
    """x_F = Re(IFFT2(M ⊙ FFT2(x))) of one (3, H, W) image with its centred (3, H, W) map -> (3, H, W)."""
    return filter_by_map(image, map_display)


def image_side(image: np.ndarray, probs: np.ndarray | None, map_display: np.ndarray | None, map_status: str,
               model: nn.Module | None, basis: str = "fourier", layer: str = "input") -> ImageSide:
    """One (3, H, W) image with its centred (3, H, W) map (or None): the image filtered by the map, both spectra,
    and the model's probabilities (K,) on the filtered image when a model is given. Maps of another basis filter
    in it (ui.map_basis); at a hidden layer there is no filtered image, only the probabilities."""
    filtered = filtered_spectrum = filtered_probs = None
    if map_display is not None and (basis != "fourier" or layer != "input"):
        from ui.map_basis import filter_in_basis, masked_probs

        if layer == "input":
            filtered = filter_in_basis(image, map_display, basis)
            filtered_spectrum = log_spectrum(filtered)
        if model is not None:
            filtered_probs = masked_probs(model, image, map_display, basis, layer)
    elif map_display is not None:
        filtered = filter_image(image, map_display)
        filtered_spectrum = log_spectrum(filtered)
        if model is not None:
            filtered_probs = classify(model, filtered[None])[0]
    return ImageSide(image=image, probs=probs, spectrum=log_spectrum(image), map=map_display, map_status=map_status,
                     filtered=filtered, filtered_spectrum=filtered_spectrum, filtered_probs=filtered_probs)


def assemble_views(clean: ImageSide, adversarial: ImageSide | None, *, label: int | None, success: bool | None,
                   image_id: str = "", index: int | None = None, attack_key: str | None = None,
                   lab: LabRun | None = None) -> ImageViews:
    """One image's views from its two sides (see `image_side`): the perturbation's norms and the maps' cosine added."""
    linf = l2 = None
    if adversarial is not None:
        linf, l2 = perturbation_norms(clean.image, adversarial.image)
    both_maps = clean.map is not None and adversarial is not None and adversarial.map is not None
    return ImageViews(clean=clean, adversarial=adversarial, label=label, success=success, linf=linf, l2=l2,
                      cosine=cosine(clean.map, adversarial.map) if both_maps else None, image_id=image_id,
                      index=index, attack_key=attack_key, lab=lab)


def build_image_views(experiment: object, index: int, attack_key: str | None, model: nn.Module | None) -> ImageViews:
    """Views of image `index` of an opened experiments.reader.Experiment under attack `attack_key`."""
    if not 0 <= index < experiment.n:
        raise ValueError(f"expected an image index in [0, {experiment.n}), got {index}")
    from ui.map_basis import experiment_basis_key, experiment_layer

    basis, layer = experiment_basis_key(experiment), experiment_layer(experiment)
    essential, essential_status = experiment.essential_map(index)
    clean = image_side(experiment.image(index), np.asarray(experiment.probs()[index], dtype=np.float64), essential,
                       essential_status, model, basis, layer)
    adversarial = success = None
    if attack_key is not None:
        attack = experiment.attack(attack_key)
        adversarial_map, adversarial_status = experiment.adversarial_map(attack_key, index)
        adversarial = image_side(np.asarray(attack["adversarial"][index], dtype=np.float32),
                                 np.asarray(attack["adv_probs"][index], dtype=np.float64), adversarial_map,
                                 adversarial_status, model, basis, layer)
        success = bool(attack["success"][index])
    views = assemble_views(clean, adversarial, label=int(experiment.labels()[index]), success=success,
                           image_id=experiment.ids[index], index=index, attack_key=attack_key)
    return replace(views, basis=basis, layer=layer)


def cosine_context(summary: dict | None, index: int) -> str | None:
    """Where image `index`'s pair stands among its attack's pairs, from the correlation stage's stored values.

    One pair's cosine says little alone: its rank and the median of all pairs, and the re-paired baseline (maps of
    different images), tell a reader whether it is high. None when the image has no stored pair. The stored values
    are the ones the tables use (pooled to 32×32 for large maps), so the rank is exact.
    """
    if not summary or summary.get("error") or summary.get("positions") is None or summary.get("cosine") is None:
        return None
    values = np.asarray(summary["cosine"], dtype=np.float64)  # (P,) one per stored pair
    at = np.flatnonzero(np.asarray(summary["positions"]) == index)
    if not len(at) or len(values) != len(summary["positions"]):
        return None
    mine = values[at[0]]
    rank = int((values > mine).sum()) + 1  # 1 = the most similar pair
    pooled = f" (maps pooled to {summary['pool_size']}×{summary['pool_size']})" if summary.get("pool") not in (None, "none") else ""
    text = (f"Stored for the tables{pooled}: {mine:.3f}, rank {rank} of {len(values)} pairs of this attack "
            f"(median {np.median(values):.2f})")
    baseline = summary.get("repaired_cosine_mean")
    if baseline is not None:
        text += f"; maps of different images (re-paired) average {baseline:.2f}"
    return text + "."


def image_numbers(experiment: object, index: int, attack_key: str | None) -> dict:
    """What a results-only copy (no images, no maps) still says about image `index` of an opened Experiment.

    label, clean_probs (K,); with an attack: adv_probs, success, linf, l2, and the pair's stored cosine
    (None unless the image has both maps); maps: one row per map set (status sentence, steps, non-zero
    entries, zero frequency only, last loss; None where no map was trained).
    """
    out: dict = {"index": index, "id": experiment.ids[index], "label": int(experiment.labels()[index]),
                 "clean_probs": np.asarray(experiment.probs()[index], dtype=np.float64), "maps": []}
    sets = [("essential", ESSENTIAL)]
    if attack_key is not None:
        attack = experiment.attack(attack_key)
        out.update(adv_probs=np.asarray(attack["adv_probs"][index], dtype=np.float64),
                   success=bool(attack["success"][index]), linf=float(attack["linf"][index]),
                   l2=float(attack["l2"][index]), cosine=None)
        summary = experiment.correlation(attack_key)
        if summary is not None and not summary.get("error"):
            at = np.flatnonzero(summary["positions"] == index)
            out["cosine"] = float(summary["cosine"][at[0]]) if len(at) else None
        sets.append(("adversarial", adversarial_set(attack_key)))
    for label, name in sets:
        if name not in experiment.map_set_names():
            continue
        data = experiment.map_set(name)
        status, row = int(data["status"][index]), int(data["row"][index])
        trained = row >= 0

        def stat(key: str, cast: type, data: dict = data, row: int = row, trained: bool = trained) -> object:
            return cast(data[key][row]) if trained and key in data else None

        out["maps"].append({"map": label, "status": STATUS_TEXT.get(status, "no map"),
                            "steps": stat("steps", int), "non-zero entries": stat("nonzero", int),
                            "zero frequency only": stat("dc_only", bool), "last loss": stat("final_loss", float)})
    return out


@torch.no_grad()
def defend(model: nn.Module, image: np.ndarray, class_maps_display: np.ndarray, basis: str = "fourier",
           layer: str = "input") -> dict:
    """The class-map defence on one (3, H, W) image (METHOD §5): ŷ = f(x), map M_ŷ, then f(x filtered by M_ŷ).

    Uses no label. The maps (K, C, H, W) are in display order, in the experiment's basis (a manifest key) at its
    layer; the second pass filters the image (at a hidden layer: that layer's features) in that basis, as
    core.defended.DefendedClassifier does. Returns first_probs (K,), first_pred, map (C, H, W) in display order,
    filtered (3, H, W) or None at a hidden layer (no image is filtered there), defended_probs (K,), defended_pred.
    """
    first_probs = classify(model, image[None])[0]
    first_pred = int(np.argmax(first_probs))
    chosen = np.asarray(class_maps_display[first_pred], dtype=np.float32)
    if layer == "input":
        from ui.map_basis import filter_in_basis

        filtered = filter_in_basis(image, chosen, basis)
        defended_probs = classify(model, filtered[None])[0]
    else:
        from ui.map_basis import masked_probs

        filtered, defended_probs = None, masked_probs(model, image, chosen, basis, layer)
    return {
        "first_probs": first_probs, "first_pred": first_pred, "map": chosen, "filtered": filtered,
        "defended_probs": defended_probs, "defended_pred": int(np.argmax(defended_probs)),
    }


class StepCounter(nn.Module):
    """Wraps a classifier and reports each forward pass: one forward pass = one map-training step."""

    def __init__(self, model: nn.Module, on_step: Callable[[int], None]) -> None:
        super().__init__()
        self.model = model
        self.on_step = on_step
        self.steps = 0
        self.train(model.training)  # a new Module starts in train mode; restoring that would change `model`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        self.on_step(self.steps)
        return self.model(x)


def _train_pair_maps(
    model: nn.Module, image: torch.Tensor, label: int, result: object, *, correct: bool, config: object,
    report: Callable[[str, float], None],
) -> tuple[dict[str, np.ndarray | None], dict[str, str], dict[str, int]]:
    """The essential map of a correctly classified (3, H, W) image and, when the attack succeeded, the adversarial
    map of the attack's adversarial image (`result`: core.attacks' result for a batch of one), trained together as
    one batch. Returns, by map name ("essential", "adversarial"): the map (3, H, W) centred, or None where it was
    not trained or not kept; its status sentence; the steps taken (trained maps only)."""
    from core.map_training import train_maps

    device = image.device
    success = bool(result.success[0])
    batch, targets, names = [], [], []
    if correct:
        batch.append(image)
        targets.append(int(label))
        names.append("essential")
        if success:
            batch.append(result.adversarial[0].to(device))
            targets.append(int(result.adv_pred[0]))
            names.append("adversarial")
    maps: dict[str, np.ndarray | None] = {"essential": None, "adversarial": None}
    status = {"essential": STATUS_TEXT[STATUS_MISCLASSIFIED],
              "adversarial": STATUS_TEXT[STATUS_MISCLASSIFIED if not correct else STATUS_ATTACK_FAILED]}
    steps: dict[str, int] = {}
    if not batch:
        return maps, status, steps
    counter = StepCounter(model, lambda t: report("maps", min(1.0, t / (config.max_steps + 1))))
    # no BatchNorm folding here: it traces the model with torch.fx, which patches nn.Module.__call__
    # for the whole process while it runs and breaks other sessions' model calls (found by
    # bench/load_test.py); for a batch of two images the folding would save nothing anyway
    trained = train_maps(counter, torch.stack(batch), torch.tensor(targets, device=device), config,
                         batch_size=len(batch), fuse_batchnorm=False)
    display = to_display_order(trained.maps).cpu().numpy()  # (B, 3, H, W) centred
    for row, name in enumerate(names):
        kept = bool(trained.kept[row])
        maps[name] = display[row] if kept else None
        status[name] = STATUS_TEXT[STATUS_KEPT if kept else STATUS_LOST]
        steps[name] = int(trained.steps[row])
    report("maps", 1.0)
    return maps, status, steps


def train_live(
    model: nn.Module, image: np.ndarray, label: int, *, attack: str, eps: float | None, lam: float, min_steps: int,
    max_steps: int, lr: float = 0.01, tol: float = 1e-5, seed: int = 0,
    progress: Callable[[str, float], None] | None = None,
) -> ImageViews:
    """Attack one (3, H, W) image, then train its essential and adversarial maps together (one batch of 2).

    label: the class the essential map must keep (the true label when known). progress(stage, fraction)
    is called as work proceeds. Returns the image's views with a LabRun: the settings, both predictions and
    the steps each map took.
    """
    from core.attacks import run_attack
    from core.map_training import MapTrainConfig

    report = progress or (lambda stage, fraction: None)
    config = MapTrainConfig(lam=lam, lr=lr, min_steps=min_steps, max_steps=max_steps, tol=tol)
    config.validate()
    device = _device(model)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32))[None].to(device)  # (1, 3, H, W)
    y = torch.tensor([int(label)], device=device)
    report("attack", 0.0)
    result = run_attack(model, x, y, attack, eps=eps, seed=seed, fuse_batchnorm=False)  # no fx tracing beside other sessions
    adversarial = result.adversarial[0].cpu().numpy()
    clean_probs, adv_probs = classify(model, image[None])[0], classify(model, adversarial[None])[0]
    correct = bool(result.clean_pred[0] == y[0])
    report("attack", 1.0)

    maps, status, steps = _train_pair_maps(model, x[0], int(label), result, correct=correct, config=config,
                                           report=report)
    clean_side = image_side(np.asarray(image, dtype=np.float32), clean_probs, maps["essential"], status["essential"],
                            model)
    adversarial_side = image_side(adversarial, adv_probs, maps["adversarial"], status["adversarial"], model)
    lab = LabRun(attack=attack, eps=eps, lam=lam, clean_pred=int(result.clean_pred[0]),
                 adv_pred=int(result.adv_pred[0]), steps=steps)
    return assemble_views(clean_side, adversarial_side, label=int(label), success=bool(result.success[0]), lab=lab)
