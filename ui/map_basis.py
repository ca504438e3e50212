"""The basis and layer an experiment's maps live in, as the app reads them, and filtering in that basis.

The cache's manifest names the basis by its key (core.bases.Basis.key: "fourier", "phase", "dct",
"wavelet-db2-L3") and the layer the maps act on ("input" or a hidden layer, core.hidden_layers); caches written
before bases existed name neither and read as fourier at the input. Maps arrive in display order, as stored.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

FOURIER = "fourier"  # the default basis: caches without a "basis" key hold Fourier amplitude maps
INPUT = "input"  # the default layer (core.hidden_layers.INPUT), repeated here so this module imports no torch
FREQUENCY_BASES = ("fourier", "phase")  # centred spectra: signed frequency axes, Hermitian pairs


def basis_from_key(key: str) -> object:
    """The core.bases.Basis named by a manifest key ('fourier', 'dct', 'wavelet-db2-L3'); ValueError if unknown."""
    from core.bases import basis_from_key as parse

    return parse(key)


def manifest_basis_key(manifest: Mapping) -> str:
    """The basis key a manifest records ("fourier" for caches written before bases existed)."""
    return str(manifest.get("basis", FOURIER))


def manifest_layer(manifest: Mapping) -> str:
    """The layer a manifest records (top level, else in its config; "input" when neither names one)."""
    return str(manifest.get("layer", manifest.get("config", {}).get("layer", INPUT)))


def experiment_basis_key(experiment: object) -> str:
    """The basis key of an opened experiments.reader.Experiment (or anything with a `manifest`)."""
    return manifest_basis_key(getattr(experiment, "manifest", {}) or {})


def experiment_layer(experiment: object) -> str:
    """The layer of an opened experiments.reader.Experiment's maps."""
    return manifest_layer(getattr(experiment, "manifest", {}) or {})


def where_label(basis_key: str, layer: str) -> str:
    """'fourier', 'dct at layer1': how tables and headings name a basis and layer."""
    return basis_key if layer == INPUT else f"{basis_key} at {layer}"


def filter_in_basis(image: np.ndarray, map_display: np.ndarray, basis_key: str) -> np.ndarray:
    """x_F = inverse(mask(forward(x), M)) of one (C, H, W) image with its (C, H, W) map in display order -> float32.

    Fourier goes through ui.arrays.filter_by_map (numpy, the filter the app always used); the other bases through
    core.bases in float64 torch, so the picture is the basis's own filter.
    """
    if basis_key == FOURIER:
        from ui.arrays import filter_by_map

        return filter_by_map(image, map_display)
    import torch

    basis = basis_from_key(basis_key)
    x = torch.as_tensor(np.asarray(image, dtype=np.float64))[None]  # (1, C, H, W)
    maps = basis.to_natural_order(torch.as_tensor(np.asarray(map_display, dtype=np.float64)))  # (C, H, W)
    if maps.shape != x.shape[1:]:
        raise ValueError(f"expected a map of shape {tuple(x.shape[1:])}, got {tuple(maps.shape)}")
    return basis.apply(x, maps)[0].numpy().astype(np.float32)


def masked_probs(model: object, image: np.ndarray, map_display: np.ndarray, basis_key: str, layer: str) -> np.ndarray:
    """Softmax (K,) float64 of the model on one (3, H, W) image whose `layer` features are filtered by the map
    (C', H', W') in display order (core.hidden_layers.MaskedAt); at the input, of the filtered image itself."""
    import torch

    from core.hidden_layers import MaskedAt

    basis = basis_from_key(basis_key)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.as_tensor(np.array(image, dtype=np.float32), device=device)[None]  # (1, 3, H, W)
    maps = basis.to_natural_order(torch.as_tensor(np.array(map_display, dtype=np.float32), device=device))
    with torch.no_grad():
        logits = MaskedAt(model, layer, basis)(x, maps)  # (1, K)
    return torch.softmax(logits.double(), dim=1)[0].cpu().numpy()


__all__ = ["FOURIER", "FREQUENCY_BASES", "INPUT", "basis_from_key", "experiment_basis_key", "experiment_layer",
           "filter_in_basis", "manifest_basis_key", "manifest_layer", "masked_probs", "where_label"]
