"""One image's views as typed values: what Explore and the Lab draw, built by ui.compute, read by every renderer.

`ImageViews` holds the clean image and, under an attack, its adversarial counterpart (`ImageSide` each: the
image, its map, the image filtered by that map, their spectra and the model's probabilities), the pair's
numbers, and for a live Lab training its `LabRun`. Plain numpy arrays and numbers, so st.cache_data can pickle
it and the pictures (ui.pair_pictures), the Plotly charts (ui.pair_figures) and the downloads read the same
fields. No Streamlit, no torch.

Maps are centred (zero frequency at [H // 2, W // 2]), as the cache stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

NO_ATTACK = "no attack chosen"  # why there is no adversarial map when no attack is picked


# eq=False: fields are numpy arrays, whose == is element-wise; two views compare by identity instead.
@dataclass(frozen=True, eq=False)
class ImageSide:
    """One image of the pair (the clean one with its essential map, or the adversarial one with its adversarial
    map) and what its map keeps of it."""

    image: np.ndarray  # (3, H, W) float32 in [0, 1]
    probs: np.ndarray | None  # (K,) float64 softmax of the model on `image`; None without probabilities
    spectrum: np.ndarray  # (H, W) float64 centred log(1 + |F image|), channel mean
    map: np.ndarray | None  # (3, H, W) float32 centred map in [0, 1]; None when there is none (see map_status)
    map_status: str  # what became of the map, a sentence of experiments.format.STATUS_TEXT
    filtered: np.ndarray | None = None  # (3, H, W) float32 Re(F⁻¹(M ⊙ F x)), not clipped; None without a map
    filtered_spectrum: np.ndarray | None = None  # (H, W) float64 like `spectrum`, of `filtered`
    filtered_probs: np.ndarray | None = None  # (K,) float64 softmax on `filtered`; None without a map or a model


@dataclass(frozen=True, eq=False)
class LabRun:
    """What a live Lab training adds to one image's views: its settings and outcome."""

    attack: str  # attack name of core.attack_keys.ATTACKS ("pgd", "fmn", "deepfool")
    eps: float | None  # PGD budget in [0, 1] pixel units (8/255 = 0.031); None for minimum-norm attacks
    lam: float  # L1 weight of the map training
    clean_pred: int  # the model's class for the clean image
    adv_pred: int  # the model's class for the adversarial image
    steps: Mapping[str, int] = field(default_factory=dict)  # "essential" / "adversarial" -> steps; trained maps only
    seconds: float = 0.0  # wall time of the run, slot wait included (set by the Lab page)
    run_id: str = ""  # unique per run: names its pictures in the session's cache (set by the Lab page)


@dataclass(frozen=True, eq=False)
class ImageViews:
    """Every view of one image and its adversarial counterpart (see the module docstring)."""

    clean: ImageSide  # the clean image and its essential map
    adversarial: ImageSide | None  # the attacked image and its adversarial map; None without an attack
    label: int | None  # the true class (the Lab: the class its essential map keeps); None if unknown
    success: bool | None  # the attack turned a correct prediction wrong; None without an attack
    linf: float | None  # L∞ norm of adversarial − clean in [0, 1] pixel units; None without an attack
    l2: float | None  # L2 norm of the same perturbation over all 3·H·W pixel values; None without an attack
    cosine: float | None  # cos(M_E, M_A) over all 3·H·W entries; None unless both maps exist
    image_id: str = ""  # the sample's id in the experiment, or the Lab image's name (shown, and in file names)
    index: int | None = None  # the image's position in its experiment; None for a Lab image
    attack_key: str | None = None  # the experiment's attack key ("pgd-8"); None without one, and in the Lab
    cosine_context: str | None = None  # where the pair's cosine stands among its attack's (ui.compute.cosine_context)
    lab: LabRun | None = None  # the live training's settings and outcome; None outside the Lab
    basis: str = "fourier"  # the maps' basis key (core.bases.Basis.key); maps are in its display order
    layer: str = "input"  # where the maps filter: the image, or a hidden layer (no filtered image then)

    @property
    def essential(self) -> np.ndarray | None:
        """The essential map (3, H, W) centred, or None."""
        return self.clean.map

    @property
    def adversarial_map(self) -> np.ndarray | None:
        """The adversarial map (3, H, W) centred, or None (no attack, or not kept)."""
        return None if self.adversarial is None else self.adversarial.map

    @property
    def adversarial_status(self) -> str:
        """What became of the adversarial map; NO_ATTACK without an attack."""
        return NO_ATTACK if self.adversarial is None else self.adversarial.map_status

    @property
    def sides(self) -> list[tuple[str, ImageSide]]:
        """("clean", side) then, under an attack, ("adversarial", side)."""
        return [("clean", self.clean)] + ([("adversarial", self.adversarial)] if self.adversarial else [])

    def probability_sets(self) -> list[tuple[str, np.ndarray]]:
        """(name, (K,) probabilities) of the images the model saw, in the order the top-3 views show them:
        clean, adversarial, and each image filtered by its map."""
        adversarial = self.adversarial
        sets = [("clean", self.clean.probs), ("adversarial", adversarial.probs if adversarial else None),
                ("clean × essential map", self.clean.filtered_probs),
                ("adversarial × adversarial map", adversarial.filtered_probs if adversarial else None)]
        return [(name, probs) for name, probs in sets if probs is not None]


__all__ = ["NO_ATTACK", "ImageSide", "ImageViews", "LabRun"]
