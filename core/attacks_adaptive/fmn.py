"""FMN through the defence: Foolbox's LInfFMNAttack run on the defended classifier (key 'fmn+defended').

    result = defended_fmn(defended, images, labels)
    result.min_norms()  # (N,) the smallest L∞ norm found that fools the defence (inf: not fooled)

Set against `core.attacks.run_attack(model, images, labels, "fmn").linf`, the bare model's minimum
norms, it says how much budget the defence costs an attacker who knows it. FMN follows the gradient of
the branch the first pass picks (core/defended.py); it is deterministic, the seed only fixes torch's RNG
for parity with `run_attack`.
"""

from __future__ import annotations

import torch

from core.attacks import _foolbox
from core.attacks_adaptive.result import AdaptiveResult, check_attack_inputs, check_count, device_of, finish
from core.defended import DefendedClassifier

FOOLBOX_FMN_STEPS = 100  # Foolbox LInfFMNAttack's default, as the non-adaptive 'fmn' (METHOD §3)


def defended_fmn(
    defended: DefendedClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = FOOLBOX_FMN_STEPS,
    seed: int = 0,
    batch_size: int = 128,
) -> AdaptiveResult:
    """Minimum-norm L∞ adversarials of images (N, C, H, W) in [0, 1] with labels (N,) against the defence."""
    check_attack_inputs(defended, images, labels)
    check_count(steps, "steps")
    check_count(batch_size, "batch_size")
    foolbox = _foolbox()
    device = device_of(defended, images.device)
    fmodel = foolbox.PyTorchModel(defended, bounds=(0, 1), device=device)
    attack = foolbox.attacks.LInfFMNAttack(steps=steps)
    torch.manual_seed(seed)
    adversarial = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device, torch.float32)  # (B, C, H, W)
        y = labels[start : start + batch_size].to(device)  # (B,)
        _raw, clipped, _success = attack(fmodel, x, foolbox.criteria.Misclassification(y), epsilons=None)
        adversarial.append(clipped.detach())
    adv = torch.cat(adversarial) if adversarial else images.float()
    return finish(defended, images, adv, labels, batch_size)
