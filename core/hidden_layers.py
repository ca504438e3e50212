"""Maps at a hidden layer: a classifier split at a named layer into head(x) -> features and tail(features) -> logits.

The paper names the frequencies of intermediate representations as future work. Filtering the features
(B, C', H', W') of a layer in a basis (core.bases) and running the rest of the network asks which of *their*
coefficients the decision needs: `MaskedAt(model, layer, basis)(x, maps)` = tail(basis.apply(head(x), maps)),
maps of the layer's feature shape. The split reuses the model's own modules (no copy, the same weights), in
the order of its forward pass, so tail(head(x)) is model(x) with the same operations.

Layers: `input` everywhere (no split: head is the identity, tail the model); ResNet-20 (core.models.resnet20):
`layer1`, `layer2`, `layer3`, the outputs of its three stages (16 × 32 × 32, 32 × 16 × 16, 64 × 8 × 8 at 32 px);
torchvision ResNet-18: `layer1` .. `layer4` (64 × 56 × 56 .. 512 × 7 × 7 at 224 px). Models are taken bare or
inside core.models.normalization.NormalizedClassifier (the input normalisation then opens the head). Others,
ViT-B/16 among them (its blocks hold token sequences, not feature maps), take `input` only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet as TorchvisionResNet

from core.bases import Basis, get_basis
from core.models.normalization import NormalizedClassifier
from core.models.resnet20 import ResNet20

INPUT = "input"


class _Normalize(nn.Module):
    """NormalizedClassifier's input normalisation on its own: (x − mean) / std, or x for 'none'."""

    def __init__(self, classifier: NormalizedClassifier) -> None:
        super().__init__()
        self.input_norm = classifier.input_norm
        self.register_buffer("mean", classifier.mean, persistent=False)  # (1, 3, 1, 1), the classifier's own tensor
        self.register_buffer("std", classifier.std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_norm != "none":
            x = (x - self.mean) / self.std
        return x


class _ResNet20Stem(nn.Module):
    """relu(bn1(conv1(x))): ResNet-20 before its first stage."""

    def __init__(self, net: ResNet20) -> None:
        super().__init__()
        self.conv1, self.bn1 = net.conv1, net.bn1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv1(x)))


class _GlobalPool(nn.Module):
    """ResNet-20's global average pooling: (B, C, H, W) -> (B, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


class _Flatten(nn.Module):
    """torch.flatten(x, 1), as torchvision's ResNet calls it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)


def _pieces(net: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The network's forward pass as named pieces in order (a piece named like a layer ends there); None: unknown."""
    if isinstance(net, ResNet20):
        return [("stem", _ResNet20Stem(net)), ("layer1", net.layer1), ("layer2", net.layer2),
                ("layer3", net.layer3), ("pool", _GlobalPool()), ("linear", net.linear)]
    if isinstance(net, TorchvisionResNet):
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        return [("stem", stem), ("layer1", net.layer1), ("layer2", net.layer2), ("layer3", net.layer3),
                ("layer4", net.layer4), ("pool", nn.Sequential(net.avgpool, _Flatten())), ("fc", net.fc)]
    return None


_LAYERS = {ResNet20: ("layer1", "layer2", "layer3"), TorchvisionResNet: ("layer1", "layer2", "layer3", "layer4")}


def _inner(model: nn.Module) -> tuple[nn.Module, list[nn.Module]]:
    """The bare network and the pieces that run before it (the normalisation of a NormalizedClassifier)."""
    if isinstance(model, NormalizedClassifier):
        return model.net, [_Normalize(model)]
    return model, []


def layer_names(model: nn.Module) -> tuple[str, ...]:
    """The layers `model` can be split at, `input` first."""
    net, _ = _inner(model)
    for family, names in _LAYERS.items():
        if isinstance(net, family):
            return (INPUT, *names)
    return (INPUT,)


def split_at(model: nn.Module, layer: str = INPUT) -> tuple[nn.Module, nn.Module]:
    """(head, tail) with tail(head(x)) = model(x): head ends with `layer`'s output. ValueError naming the layers possible."""
    possible = layer_names(model)
    if layer not in possible:
        net, _ = _inner(model)
        why = "" if len(possible) > 1 else " (its layers hold no (C, H, W) feature maps the split knows)"
        raise ValueError(f"expected a layer in {list(possible)} for {type(net).__name__}{why}, got {layer!r}")
    if layer == INPUT:
        return nn.Identity(), model
    net, before = _inner(model)
    pieces = _pieces(net)
    cut = [name for name, _ in pieces].index(layer) + 1
    head = nn.Sequential(*before, *(piece for _, piece in pieces[:cut]))
    tail = nn.Sequential(*(piece for _, piece in pieces[cut:]))
    return head.train(model.training), tail.train(model.training)


def _device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


@torch.no_grad()
def feature_shape(model: nn.Module, layer: str, image_shape: Sequence[int]) -> tuple[int, int, int]:
    """(C', H', W') of `layer`'s output for images of shape (..., C, H, W) (one zero image through the head)."""
    head, _ = split_at(model, layer)
    if layer == INPUT:
        return tuple(int(s) for s in image_shape[-3:])
    device, dtype = _device_and_dtype(model)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        features = head(torch.zeros(1, *image_shape[-3:], device=device, dtype=dtype))
    finally:
        for module, training in modes.items():
            module.training = training
    if features.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) features at {layer!r}, got shape {tuple(features.shape)}")
    return tuple(int(s) for s in features.shape[1:])


@torch.no_grad()
def layer_features(model: nn.Module, layer: str, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """`layer`'s output for every image, float32, `batch_size` images at a time with the model in eval mode
    (its mode restored after). (N, C, H, W) -> (N, C', H', W'); `input`: the images as float32."""
    head, _ = split_at(model, layer)
    if layer == INPUT:
        return images.float()
    if batch_size < 1:
        raise ValueError(f"expected batch_size >= 1, got {batch_size}")
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        parts = [head(images[start : start + batch_size].float()) for start in range(0, images.shape[0], batch_size)]
    finally:
        for module, training in modes.items():
            module.training = training
    if not parts:
        return images.new_zeros((0, *feature_shape(model, layer, images.shape)), dtype=torch.float32)
    return torch.cat(parts).float()


class MaskedAt(nn.Module):
    """A classifier whose `layer`'s features are filtered by maps in `basis` before the rest of it runs.

    forward(x (B, C, H, W), maps (B, C', H', W') or (C', H', W'), natural order) -> logits (B, K).
    `map_shape(image_shape)` says the maps' shape (C', H', W') and checks that the basis takes that size.
    """

    def __init__(self, model: nn.Module, layer: str = INPUT, basis: str | Basis = "fourier") -> None:
        super().__init__()
        self.layer, self.basis = layer, get_basis(basis)
        self.head, self.tail = split_at(model, layer)
        self._model = [model]  # not a submodule: head and tail already hold its modules

    def map_shape(self, image_shape: Sequence[int]) -> tuple[int, int, int]:
        """The maps' (C', H', W') for images of shape (..., C, H, W); ValueError when the basis cannot take that size."""
        shape = feature_shape(self._model[0], self.layer, image_shape)
        try:
            return self.basis.map_shape(shape)
        except ValueError as error:
            raise ValueError(f"{error} (the {self.layer} features of {tuple(image_shape[-3:])} images)") from None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the layer's features (B, C', H', W')."""
        return self.head(x)

    def classify_features(self, features: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Filter features (B, C', H', W') by maps, then run the rest of the model -> logits (B, K)."""
        return self.tail(self.basis.apply(features, maps))

    def forward(self, x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return self.classify_features(self.features(x), maps)
