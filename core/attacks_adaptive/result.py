"""What every adaptive attack returns, and the argument checks they share."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from core.defended import DefendedClassifier
from core.map_training import check_images


@dataclass
class AdaptiveResult:
    """One attack on the defended classifier, N images; tensors on the images' device."""

    adversarial: torch.Tensor  # (N, C, H, W) float32 in [0, 1], within ε of the image (fixed-budget attacks)
    pred: torch.Tensor  # (N,) int64: the defended classifier's prediction on `adversarial`
    labels: torch.Tensor  # (N,) int64: true labels
    linf: torch.Tensor  # (N,) float32: max |adversarial - image| per image

    @property
    def fooled(self) -> torch.Tensor:
        """(N,) bool: the defended prediction is wrong (clean misclassified images count as fooled)."""
        return self.pred != self.labels

    def accuracy(self) -> float:
        """Defended accuracy under the attack: share of images still classified correctly (nan for none)."""
        return float((~self.fooled).double().mean()) if self.labels.numel() else float("nan")

    def min_norms(self) -> torch.Tensor:
        """(N,) float32: the L∞ norm of the adversarial where it fools the defence, inf where it does not."""
        return torch.where(self.fooled, self.linf, torch.full_like(self.linf, math.inf))


def accuracy_at(min_norms: torch.Tensor, eps: float) -> float:
    """Accuracy at budget ε of a minimum-norm attack: share of images whose smallest fooling norm exceeds ε.
    min_norms (N,): as `AdaptiveResult.min_norms` (inf: never fooled); ε in [0, 1] units."""
    return float((min_norms > eps).double().mean()) if min_norms.numel() else float("nan")


def check_eps(eps: float) -> float:
    """ε as a float after checking it lies in (0, 1] (ValueError otherwise)."""
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps) or not 0 < eps <= 1:
        raise ValueError(f"expected eps in (0, 1] (e.g. 8/255 = {8 / 255:.4f}), got {eps!r}")
    return float(eps)


def check_count(value: int, name: str) -> int:
    """A count >= 1 (steps, restarts, queries, batch size); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected {name} >= 1, got {value!r}")
    return value


def check_attack_inputs(defended: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    """ValueError unless `defended` is a DefendedClassifier and images (N, C, H, W) in [0, 1] fit labels (N,)."""
    if not isinstance(defended, DefendedClassifier):
        raise ValueError(f"expected a DefendedClassifier (core.defended), got {type(defended).__name__}")
    check_images(images, labels, label_name="labels")


def device_of(module: nn.Module, fallback: torch.device) -> torch.device:
    """Where the module's tensors live (the class maps at least)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return fallback


@torch.no_grad()
def defended_predictions(defended: DefendedClassifier, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) int64: the defended classifier's predictions, in batches."""
    preds = [defended(images[s : s + batch_size]).argmax(dim=1) for s in range(0, images.shape[0], batch_size)]
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64, device=images.device)


def finish(defended: DefendedClassifier, images: torch.Tensor, adversarial: torch.Tensor, labels: torch.Tensor,
           batch_size: int) -> AdaptiveResult:
    """The result of `adversarial` (N, C, H, W) on the images' device, judged by one fresh defended forward pass."""
    adversarial = adversarial.to(images.device, torch.float32).clamp(0, 1)
    device = device_of(defended, images.device)
    pred = defended_predictions(defended, adversarial.to(device), batch_size).to(images.device)
    linf = (adversarial - images.float()).flatten(1).abs().amax(dim=1) if images.shape[0] else adversarial.new_zeros(0)
    return AdaptiveResult(adversarial=adversarial, pred=pred, labels=labels, linf=linf)
