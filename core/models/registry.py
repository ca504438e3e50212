"""Models by name: one dict used by the CLI, the app and the tests.

`build_model(name, checkpoint=..., input_norm=...)` returns a `NormalizedClassifier` in eval
mode that takes (B, 3, S, S) images in [0, 1], S = the model's input size.
`model_class_names(name, checkpoint)` says what its outputs mean: the class names in label order
that the checkpoint records (train-model writes them), else the family's usual data set's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from core.data.datasets import CIFAR10_CLASSES, IMAGENETTE_CLASSES
from core.models.checkpoints import CheckpointError, load_state_into, read_checkpoint
from core.models.normalization import NORMALIZATIONS, NormalizedClassifier
from core.models.resnet20 import ResNet20
from core.models.torchvision_models import build_resnet18, build_vit_b_16
from core.paths import repo_path


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the project needs to know about a model family."""

    name: str
    build: Callable[[int, str | None], nn.Module]  # (num_classes, pretrained weights path) -> net
    input_size: int  # square input side in pixels
    head_prefix: str  # parameters trained by `train-model --head-only`
    default_input_norm: str  # how its usual weights expect inputs
    description: str
    classes: tuple[str, ...]  # class names in label order of the data set it is made for (10 outputs)


MODELS: dict[str, ModelSpec] = {
    "resnet20": ModelSpec(
        "resnet20",
        lambda classes, _weights: ResNet20(classes),
        32,
        "linear.",
        "none",
        "ResNet-20 for CIFAR-10 (0.27 M parameters, option-A shortcuts)",
        CIFAR10_CLASSES,
    ),
    "resnet18": ModelSpec(
        "resnet18",
        build_resnet18,
        224,
        "fc.",
        "imagenet",
        "torchvision ResNet-18 with a new 10-way head (ImageNet backbone)",
        IMAGENETTE_CLASSES,
    ),
    "vit_b_16": ModelSpec(
        "vit_b_16",
        build_vit_b_16,
        224,
        "heads.",
        "imagenet",
        "torchvision ViT-B/16 with a new 10-way head (ImageNet backbone)",
        IMAGENETTE_CLASSES,
    ),
}


def get_model_spec(name: str) -> ModelSpec:
    """The spec of model `name`, or a ValueError listing the known names."""
    if name not in MODELS:
        raise ValueError(f"expected a model in {sorted(MODELS)}, got {name!r}")
    return MODELS[name]


def build_model(
    name: str,
    checkpoint: str | None = None,
    input_norm: str | None = None,
    num_classes: int = 10,
    backbone_weights: str | None = None,
) -> NormalizedClassifier:
    """Build model `name`, load `checkpoint` (the whole classifier) if given, in eval mode.

    input_norm: 'none' | 'imagenet'; None takes the checkpoint's own setting, else the family's
    default. backbone_weights: a pretrained torchvision file for resnet18 / vit_b_16 (the head is
    replaced afterwards); ignored when a full checkpoint is given.
    """
    spec = get_model_spec(name)
    meta: dict = {}
    if checkpoint is not None:
        meta = read_checkpoint(checkpoint)
        if "model" in meta and meta["model"] != name:
            raise CheckpointError(f"checkpoint {checkpoint!r} is for model {meta['model']!r}, not {name!r}")
    norm = input_norm or meta.get("input_norm") or spec.default_input_norm
    if norm not in NORMALIZATIONS:
        raise ValueError(f"expected input_norm in {sorted(NORMALIZATIONS)}, got {norm!r}")
    net = spec.build(num_classes, None if checkpoint else backbone_weights)
    if checkpoint is not None:
        load_state_into(net, meta["state_dict"], checkpoint)
    model = NormalizedClassifier(net, norm)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def model_class_names(model: str, checkpoint: str | None) -> tuple[str, ...] | None:
    """The class names of the model's outputs in label order: what `checkpoint` records under
    `classes` (a project checkpoint from train-model), else those of the family's data set (resnet20:
    CIFAR-10, resnet18 / vit_b_16: Imagenette); None for a model that is not registered."""
    if model not in MODELS:
        return None
    if checkpoint is not None:
        recorded = read_checkpoint(checkpoint).get("classes")
        if recorded is not None:
            if not isinstance(recorded, (list, tuple)) or not all(isinstance(c, str) for c in recorded):
                raise CheckpointError(f"expected 'classes' in {checkpoint!r} to be a list of names, got {recorded!r}")
            return tuple(recorded)
    return MODELS[model].classes


def default_checkpoint_path() -> str:
    """The project's own trained ResNet-20, shipped in the repository."""
    return repo_path("assets", "resnet20-cifar10.pt")


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters."""
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "MODELS", "ModelSpec", "build_model", "get_model_spec", "count_parameters", "default_checkpoint_path",
    "model_class_names", "torch",
]
