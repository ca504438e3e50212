"""The class-map defence as one classifier (METHOD §5), so that attacks can see it.

    defended = DefendedClassifier(model, class_maps)        # class_maps (K, C, H, W), natural FFT order
    defended = DefendedClassifier.from_stored(model, maps)   # maps as cached: fftshift-ed (centred)
    logits = defended(images)                                # (N, K): model(filter(x, M[argmax model(x)]))

`core.class_maps.defended_predict` applies the defence after an attack on the bare model; this module
is the same function as an `nn.Module`, which Foolbox's `PyTorchModel`, `run_attack` and the adaptive
attacks (core/attacks_adaptive/) use like any other model.

Its gradient is the true autograd gradient of the branch the first pass picks: the pick
argmax f(x) is piecewise constant, so wherever it does not change under a small step, the defended
logits *are* f(filter(x, M_k)) for that fixed k and their gradient is that branch's gradient. This is
BPDA's "gradient of the branch the first pass picks at the current point" (Athalye et al. 2018), here
exact rather than approximated, because the Fourier filter itself is differentiable.
"""

from __future__ import annotations

import torch
from torch import nn

from core.fourier import apply_fourier_maps, to_natural_order


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
    differentiate with respect to the images only). class_maps: (K, C, H, W) in natural FFT order, one map
    per class the model can predict (K = the model's number of logits); stored as a buffer, so `.to()`
    moves it with the module.
    """

    def __init__(self, model: nn.Module, class_maps: torch.Tensor) -> None:
        super().__init__()
        if model.training:
            raise ValueError("expected a model in eval mode (call model.eval()): batch-norm statistics would change")
        self.model = model
        self.register_buffer("class_maps", check_class_maps(class_maps).detach().clone())
        super().train(False)

    def train(self, mode: bool = True) -> DefendedClassifier:
        """Evaluation only: `train(False)` / `eval()` are accepted, training mode is refused."""
        if mode:
            raise ValueError("expected the defended classifier in eval mode: its model's batch-norm statistics are fixed")
        return super().train(False)

    @classmethod
    def from_stored(cls, model: nn.Module, stored_maps: torch.Tensor) -> DefendedClassifier:
        """The defence with class maps as the cache stores them (fftshift-ed, zero frequency at the centre)."""
        return cls(model, to_natural_order(check_class_maps(stored_maps)))

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
        return self.model(apply_fourier_maps(images, self.class_maps[classes].to(images.dtype)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, K)
        return self.branch(images, self.pick(images))

    def _check_images(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1:] != self.class_maps.shape[1:]:
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, self.class_maps.shape[1:]))}) "
                             f"to match the class maps, got {tuple(images.shape)}")


__all__ = ["DefendedClassifier", "check_class_maps"]
