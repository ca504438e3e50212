"""Adversarial attacks by name (METHOD §3): one registry used by the CLI, the app and the tests.

All three are Foolbox 3.3.x untargeted L∞ attacks on `foolbox.PyTorchModel(model, bounds=(0, 1))`
with no preprocessing (any normalisation lives inside the model):

    fmn       LInfFMNAttack()        epsilons=None  minimum-norm, defaults (100 steps)
    pgd       LinfPGD()              epsilons=eps   fixed budget, random start (seeded)
    deepfool  LinfDeepFoolAttack()   epsilons=None  minimum-norm, defaults (50 steps)

    result = run_attack(model, images, labels, "pgd", eps=8 / 255, seed=0)
    attack_success_rate(result)  # share of correctly classified images now misclassified

Foolbox is imported lazily, so reading the registry (app drop-downs, CLI choices) stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.attack_keys import ATTACKS, DEFAULT_PGD_EPS, AttackSpec, attack_key, check_attack  # noqa: F401  (re-exported)


@dataclass
class AttackResult:
    """One attack on N images; all tensors on the input images' device."""

    adversarial: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    adv_pred: torch.Tensor  # (N,) int64, the model's prediction on `adversarial`
    clean_pred: torch.Tensor  # (N,) int64, the model's prediction on the clean images
    labels: torch.Tensor  # (N,) int64, true labels
    success: torch.Tensor  # (N,) bool: clean correct AND adversarial misclassified
    linf: torch.Tensor  # (N,) float32, max |adversarial - image| per image
    l2: torch.Tensor  # (N,) float32, Euclidean norm of the perturbation per image


def _foolbox() -> Any:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython; no git binary needed
    import foolbox

    return foolbox


def _build_attack(name: str, steps: int | None = None) -> Any:
    """The Foolbox attack; `steps` overrides its default step count (None keeps Foolbox's, as the paper)."""
    attacks = _foolbox().attacks
    kwargs = {} if steps is None else {"steps": steps}
    builders: dict[str, Callable[[], Any]] = {
        "fmn": lambda: attacks.LInfFMNAttack(**kwargs),
        "pgd": lambda: attacks.LinfPGD(**kwargs),
        "deepfool": lambda: attacks.LinfDeepFoolAttack(**kwargs),
    }
    return builders[name]()


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return fallback


def _check_inputs(images: torch.Tensor, labels: torch.Tensor) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"expected float images of shape (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"expected labels of shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"expected images in [0, 1], got values in [{images.min().item():.3g}, {images.max().item():.3g}]"
        )


@torch.no_grad()
def _predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,)
    return model(images).argmax(dim=1)


def run_attack(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    name: str,
    eps: float | None = None,
    seed: int = 0,
    batch_size: int = 128,
    progress: Callable[[int, int], None] | None = None,
    steps: int | None = None,
    fuse_batchnorm: bool = True,
) -> AttackResult:
    """Attack `images` (N, C, H, W) in [0, 1] with true `labels` (N,) using attack `name`.

    The model must be in eval mode and take [0, 1] images. eps: the L∞ budget for pgd (required),
    None for fmn / deepfool. torch's RNG (CPU and CUDA) is seeded with `seed` once here, so a call
    on the same images with the same seed and batch_size gives the same adversarials.
    progress(done, total) is called after every batch. steps: the attack's step count (None: Foolbox's
    defaults, FMN 100, PGD 40, DeepFool 50, as METHOD §3; fewer only for quick runs and tests).
    fuse_batchnorm: attack `fold_batchnorm(model)`, the same function up to float rounding with fewer
    ops, for the attack's own forward and backward passes; adv_pred and success are `model`'s own
    predictions (measured on 2 CPU cores, ResNet-20, 64 images: FMN 1.3×, DeepFool 1.5×, PGD up to 2× faster).
    Folding traces the model with torch.fx, which patches `nn.Module.__call__` process-wide while it
    runs: pass False where other threads may be calling models at the same time (the app).
    """
    check_attack(name, eps)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"expected attack steps >= 1 (or None for the defaults), got {steps!r}")
    _check_inputs(images, labels)
    if batch_size < 1:
        raise ValueError(f"expected batch_size >= 1, got {batch_size}")
    if model.training:
        raise ValueError("expected a model in eval mode (call model.eval()): batch-norm statistics would change")
    foolbox = _foolbox()
    out_device = images.device
    device = _model_device(model, images.device)
    attacked = model
    if fuse_batchnorm:
        from core.map_training import fold_batchnorm

        attacked = fold_batchnorm(model)  # predictions below still come from `model` itself
    fmodel = foolbox.PyTorchModel(attacked, bounds=(0, 1), device=device)  # no preprocessing: it is inside the model
    attack = _build_attack(name, steps)
    torch.manual_seed(seed)  # seeds CUDA generators too
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)

    total = images.shape[0]
    adversarial, adv_pred, clean_pred = [], [], []
    for start in range(0, total, batch_size):
        x = images[start : start + batch_size].to(device, torch.float32)  # (B, C, H, W)
        y = labels[start : start + batch_size].to(device, torch.int64)  # (B,)
        _raw, clipped, _success = attack(fmodel, x, foolbox.criteria.Misclassification(y), epsilons=eps)
        x_adv = clipped.detach().clamp(0, 1)
        pred_adv, pred_clean = _predict(model, x_adv), _predict(model, x)
        if attacked is not model and not ATTACKS[name].needs_eps:
            # a minimum-norm attack stops right at the folded model's decision boundary, where float
            # rounding can leave `model` itself unfooled (1 of 32 FMN images measured): attack those
            # again on `model`, so folding never lowers the success rate
            redo = (pred_clean == y) & (pred_adv == y)  # (B,) bool
            if redo.any():
                plain = foolbox.PyTorchModel(model, bounds=(0, 1), device=device)
                _raw, again, _success = attack(plain, x[redo], foolbox.criteria.Misclassification(y[redo]), epsilons=eps)
                x_adv[redo] = again.detach().clamp(0, 1)
                pred_adv[redo] = _predict(model, x_adv[redo])
        adversarial.append(x_adv)
        adv_pred.append(pred_adv)
        clean_pred.append(pred_clean)
        if progress is not None:
            progress(min(start + batch_size, total), total)

    adv = torch.cat(adversarial).to(out_device) if adversarial else images.new_zeros(images.shape, dtype=torch.float32)
    adv_pred_all = torch.cat(adv_pred).to(out_device) if adv_pred else labels.new_zeros(0, dtype=torch.int64)
    clean_pred_all = torch.cat(clean_pred).to(out_device) if clean_pred else labels.new_zeros(0, dtype=torch.int64)
    labels = labels.to(out_device, torch.int64)
    delta = (adv - images.to(torch.float32)).flatten(1)  # (N, C*H*W)
    return AttackResult(
        adversarial=adv,
        adv_pred=adv_pred_all,
        clean_pred=clean_pred_all,
        labels=labels,
        success=(clean_pred_all == labels) & (adv_pred_all != labels),
        linf=delta.abs().amax(dim=1) if total else delta.new_zeros(0),
        l2=delta.norm(dim=1),
    )


def attack_success_rate(result: AttackResult) -> float:
    """Share of correctly classified images that the attack makes misclassified (nan if none correct)."""
    correct = result.clean_pred == result.labels
    n_correct = int(correct.sum())
    if n_correct == 0:
        return float("nan")
    return int(result.success.sum()) / n_correct
