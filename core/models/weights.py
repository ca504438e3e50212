"""Where ImageNet backbone weights for resnet18 / vit_b_16 come from.

`--backbone-weights` accepts: a local file path; "imagenet" (torchvision's IMAGENET1K_V1 file,
taken from torchvision's cache `$TORCH_HOME/hub/checkpoints/` or downloaded there when the
network allows); or "none" (random backbone, what the tests and offline machines use).
"""

from __future__ import annotations

import os

import torch
from torchvision.models import ResNet18_Weights, ViT_B_16_Weights

IMAGENET_WEIGHTS = {
    "resnet18": ResNet18_Weights.IMAGENET1K_V1,
    "vit_b_16": ViT_B_16_Weights.IMAGENET1K_V1,
}


def cached_weights_file(model: str) -> str:
    """The path torchvision's cache uses for `model`'s ImageNet weights (may not exist)."""
    url = IMAGENET_WEIGHTS[model].url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def resolve_backbone_weights(model: str, weights: str | None) -> str | None:
    """A local weights file for `model`'s backbone, or None for random weights.

    Raises ValueError with what to do when "imagenet" weights are neither cached nor downloadable.
    """
    if weights in (None, "none"):
        return None
    if weights != "imagenet":
        if not os.path.isfile(weights):
            raise ValueError(f"expected a backbone weights file, got {weights!r} (no such file)")
        return weights
    if model not in IMAGENET_WEIGHTS:
        raise ValueError(f"expected a model with ImageNet weights {sorted(IMAGENET_WEIGHTS)}, got {model!r}")
    path = cached_weights_file(model)
    if os.path.isfile(path):
        return path
    try:
        torch.hub.download_url_to_file(IMAGENET_WEIGHTS[model].url, path, progress=True)
    except Exception as err:  # no network, proxy, disk...
        raise ValueError(
            f"ImageNet weights for {model} are not in torchvision's cache ({path}) and could not be downloaded "
            f"({type(err).__name__}); download {IMAGENET_WEIGHTS[model].url} on a machine with network access, "
            "copy it there or pass its path, or use 'none' for a random backbone"
        ) from None
    return path
