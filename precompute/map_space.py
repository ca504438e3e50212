"""Where an experiment's maps act: its basis (--basis, --wavelet, --wavelet-levels), its layer (--layer) and the
maps' shape (C, H, W), checked before any work and recorded in the manifest.

At the input the maps have the images' shape (3, S, S); at a hidden layer that layer's feature shape
(core.hidden_layers: ResNet-20 layer1 16 × 32 × 32, layer2 32 × 16 × 16, ...). The basis must take that size
(core.bases: a wavelet needs H and W divisible by 2^levels). `check_map_space` refuses what cannot work with one
line that says what is possible; `map_space_record` is what the manifest keeps (experiments/format.py `map_space`
reads it back).
"""

from __future__ import annotations

import torch
from torch import nn

from core.bases import BASES, Basis
from core.hidden_layers import INPUT, feature_shape, layer_names
from core.models.registry import MODELS
from experiments.config import ExperimentConfig
from experiments.format import BASIS_KEY, LAYER_KEY, MAP_SHAPE_KEY

IMAGE_CHANNELS = 3  # the data stage stores RGB images


def image_shape(config: ExperimentConfig) -> tuple[int, int, int]:
    """(3, S, S): the images the model sees."""
    return IMAGE_CHANNELS, config.image_size, config.image_size


def bare_network(config: ExperimentConfig) -> nn.Module:
    """The model's architecture on the meta device (shapes, no numbers, no memory): enough to know its layers and
    their feature shapes, in a fraction of a second even for ViT-B/16."""
    with torch.device("meta"):
        return MODELS[config.model].build(10, None).eval()


def basis_flags(config: ExperimentConfig) -> str:
    """The options that chose the basis, as command-line words, e.g. '--basis wavelet --wavelet db2 --wavelet-levels 4'."""
    if config.basis != "wavelet":
        return f"--basis {config.basis}"
    return f"--basis wavelet --wavelet {config.wavelet} --wavelet-levels {config.wavelet_levels}"


def map_shape(config: ExperimentConfig, model: nn.Module | None = None) -> tuple[int, int, int]:
    """(C, H, W) of the experiment's maps, checked against the basis; ValueError (one line) when impossible.

    model: the classifier (or its bare architecture); only needed at a hidden layer (None: `bare_network`).
    """
    if config.layer == INPUT:
        shape = image_shape(config)
    else:
        network = model if model is not None else bare_network(config)
        possible = layer_names(network)
        if config.layer not in possible:
            why = "" if len(possible) > 1 else " (its blocks hold no (C, H, W) feature maps a map could filter)"
            raise ValueError(f"expected --layer {' | '.join(possible)} for --model {config.model}{why}, "
                             f"got {config.layer!r}")
        shape = feature_shape(network, config.layer, image_shape(config))
    check_basis_takes(config.map_basis(), shape, config)
    return shape


def check_basis_takes(basis: Basis, shape: tuple[int, int, int], config: ExperimentConfig) -> None:
    """ValueError naming the options when `basis` cannot filter (C, H, W) maps, with the bases that can."""
    _, height, width = shape
    where = f"the {' × '.join(map(str, shape))} maps at --layer {config.layer}"
    try:
        basis.map_shape(shape)
    except ValueError as error:
        others = [name for name, each in BASES.items() if _takes(each, height, width)]
        if config.basis == "wavelet" and height % 2 == 0 and width % 2 == 0:
            raise ValueError(f"{basis_flags(config)} on {where}: {error}") from None
        raise ValueError(f"expected --basis {' | '.join(others)} for {where}, got {basis_flags(config)} "
                         f"({error})") from None


def _takes(basis: Basis, height: int, width: int) -> bool:
    try:
        basis.check_size(height, width)
    except ValueError:
        return False
    return True


def check_map_space(config: ExperimentConfig) -> None:
    """Every cross-option rule of --basis, --wavelet, --wavelet-levels and --layer (validate_config calls it)."""
    defaults = ExperimentConfig()
    if config.basis != "wavelet":
        for flag, value, default in (("--wavelet", config.wavelet, defaults.wavelet),
                                     ("--wavelet-levels", config.wavelet_levels, defaults.wavelet_levels)):
            if value != default:
                raise ValueError(f"expected --basis wavelet with {flag} (the {config.basis} basis takes no wavelet "
                                 f"options), got --basis {config.basis}")
    if config.layer != INPUT and config.bf16:
        raise ValueError(f"expected --layer input with --bf16 (maps at a hidden layer run in float32), "
                         f"got --layer {config.layer}")
    map_shape(config)


def map_space_record(config: ExperimentConfig, model: nn.Module | None = None) -> dict:
    """The manifest's top-level "basis" (Basis.key), "layer" and "map_shape" [C, H, W] of this experiment."""
    return {BASIS_KEY: config.map_basis().key, LAYER_KEY: config.layer, MAP_SHAPE_KEY: list(map_shape(config, model))}


__all__ = ["bare_network", "basis_flags", "check_map_space", "image_shape", "map_shape", "map_space_record"]
