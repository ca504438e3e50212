"""The class-map defence as one classifier (METHOD §5), so that attacks can see it.

    defended = DefendedClassifier(model, class_maps)        # class_maps (K, C, H, W), natural FFT order
    defended = DefendedClassifier.from_stored(model, maps)   # maps as cached: fftshift-ed (centred)
    logits = defended(images)                                # (N, K): model(filter(x, M[argmax model(x)]))
    defended = DefendedClassifier(model, maps, basis="dct", layer="layer1")  # maps in another basis / at a layer

The filter is the maps' basis (core.bases, default the Fourier amplitude) at the maps' layer (core.hidden_layers:
`input`, the default, filters the image; a hidden layer filters its features (K, C', H', W') and runs the rest of
the model, the pick still being the whole model's argmax).

`core.class_maps.defended_predict` applies the defence after an attack on the bare model; this module
is the same function as an `nn.Module`, which Foolbox's `PyTorchModel`, `run_attack` and the adaptive
attacks (core/attacks_adaptive/) use like any other model.

Its gradient is the true autograd gradient of the branch the first pass picks: the pick
argmax f(x) is piecewise constant, so wherever it does not change under a small step, the defended
logits *are* f(filter(x, M_k)) for that fixed k and their gradient is that branch's gradient. This is
BPDA's "gradient of the branch the first pass picks at the current point" (Athalye et al. 2018), here
exact rather than approximated, because the filter of every basis is differentiable.
"""

from __future__ import annotations

import torch
from torch import nn

from core.bases import Basis, get_basis
from core.hidden_layers import INPUT, MaskedAt, feature_shape


def check_class_maps(class_maps: torch.Tensor | None) -> torch.Tensor:
    """The maps as float (K, C, H, W) with values in [0, 1]; ValueError for missing or malformed maps."""
    if class_maps is None:
        raise ValueError("expected class maps (K, C, H, W) for the defence, got None")
    if not isinstance(class_maps, torch.Tensor) or not class_maps.is_floating_point():
        raise ValueError(f"expected class maps as a float tensor (K, C, H, W), got {type(class_maps).__name__}"
                         + (f" of {class_maps.dtype}" if isinstance(class_maps, torch.Tensor) else ""))
    if class_maps.dim() != 4 or class_maps.shape[0] == 0:
        raise ValueError(f"expected class maps of shape (K, C, H, W) with K >= 1, got {tuple(class_maps.shape)}")
    if not torch.isfinite(class_maps).all() or class_maps.min() < 0 or class_maps.max() > 1:
        raise ValueError(f"expected class maps in [0, 1], got values in [{class_maps.min():.3g}, {class_maps.max():.3g}]")
    return class_maps


class DefendedClassifier(nn.Module):
    """forward(x) = model(filter(x, maps[argmax model(x)])): logits (N, K) of the defended images.

    model: a classifier taking [0, 1] images, in eval mode (its parameters are left as they are; attacks
    differentiate with respect to the images only). class_maps: (K, C, H, W) in the natural order of `basis`
    (Fourier: unshifted), one map per class the model can predict (K = the model's number of logits), of the
    image's shape at `layer` input, else of that layer's feature shape; stored as a buffer, so `.to()` moves it
    with the module.
    """

    def __init__(self, model: nn.Module, class_maps: torch.Tensor, *, basis: str | Basis = "fourier",
                 layer: str = INPUT) -> None:
        super().__init__()
        if model.training:
            raise ValueError("expected a model in eval mode (call model.eval()): batch-norm statistics would change")
        self.model = model
        self.basis, self.layer = get_basis(basis), layer
        MaskedAt(model, layer, self.basis)  # ValueError now, naming the layers possible, for a layer the model lacks
        self.register_buffer("class_maps", check_class_maps(class_maps).detach().clone())
        self._map_shapes: dict[tuple[int, ...], tuple[int, ...]] = {}  # image shape (C, H, W) -> the maps' shape
        super().train(False)

    def train(self, mode: bool = True) -> DefendedClassifier:
        """Evaluation only: `train(False)` / `eval()` are accepted, training mode is refused."""
        if mode:
            raise ValueError("expected the defended classifier in eval mode: its model's batch-norm statistics are fixed")
        return super().train(False)

    @classmethod
    def from_stored(cls, model: nn.Module, stored_maps: torch.Tensor, *, basis: str | Basis = "fourier",
                    layer: str = INPUT) -> DefendedClassifier:
        """The defence with class maps as the cache stores them: in the basis's display order (Fourier: fftshift-ed,
        zero frequency at the centre)."""
        basis = get_basis(basis)
        return cls(model, basis.to_natural_order(check_class_maps(stored_maps)), basis=basis, layer=layer)

    @property
    def num_maps(self) -> int:
        """K, the number of class maps."""
        return self.class_maps.shape[0]

    def pick(self, images: torch.Tensor) -> torch.Tensor:
        """The first pass: the class whose map filters each image, argmax model(x). (N, C, H, W) -> (N,) int64."""
        self._check_images(images)
        with torch.no_grad():  # piecewise constant: no gradient flows through the choice
            logits = self.model(images)  # (N, K)
        if logits.shape[1] != self.num_maps:
            raise ValueError(f"expected one class map per class of the model ({logits.shape[1]}), got {self.num_maps}")
        return logits.argmax(dim=1)

    def branch(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) of the images filtered by the maps of `classes` (N,): one fixed branch per image."""
        maps = self.class_maps[classes].to(images.dtype)  # (N, C', H', W')
        if self.layer == INPUT:
            return self.model(self.basis.apply(images, maps))
        # built per call from the model's own modules, so that it follows the model wherever `.to()` moved it
        return MaskedAt(self.model, self.layer, self.basis)(images, maps)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, K)
        return self.branch(images, self.pick(images))

    @torch.no_grad()
    def predictions(self, images: torch.Tensor, *, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """(first pass (N,), defended prediction (N,)) int64 of images (N, C, H, W), `batch_size` at a time."""
        if batch_size < 1:
            raise ValueError(f"expected batch_size >= 1, got {batch_size}")
        first, defended = [], []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size]  # (B, C, H, W)
            pick = self.pick(x)  # (B,)
            first.append(pick)
            defended.append(self.branch(x, pick).argmax(dim=1))
        empty = torch.zeros(0, dtype=torch.int64, device=images.device)
        return (torch.cat(first) if first else empty), (torch.cat(defended) if defended else empty)

    def _check_images(self, images: torch.Tensor) -> None:
        """ValueError unless images are (N, C, H, W) whose maps (the image's, or the layer's features) fit the maps."""
        if images.dim() == 4:
            image_shape = tuple(images.shape[1:])
            if image_shape not in self._map_shapes:
                self._map_shapes[image_shape] = (image_shape if self.layer == INPUT
                                                 else feature_shape(self.model, self.layer, image_shape))
            if self._map_shapes[image_shape] == tuple(self.class_maps.shape[1:]):
                return
        shape = ", ".join(map(str, self.class_maps.shape[1:]))
        if self.layer == INPUT:
            raise ValueError(f"expected images of shape (N, {shape}) to match the class maps, got {tuple(images.shape)}")
        raise ValueError(f"expected images (N, C, H, W) whose {self.layer} features have the class maps' shape "
                         f"({shape}), got {tuple(images.shape)}")


__all__ = ["DefendedClassifier", "check_class_maps"]
