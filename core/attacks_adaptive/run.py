"""Adaptive attacks by name (core.attack_keys.ADAPTIVE_ATTACKS), and the non-adaptive attack they are set against.

    result = run_adaptive_attack("pgd+bpda", defended, images, labels, eps=8 / 255, seed=0)
    baseline = transfer_attack(defended, images, labels, eps=8 / 255)  # Table IV: PGD on the bare model
    baseline.accuracy() >= result.accuracy()   # expected of an attack that knows the defence
"""

from __future__ import annotations

import torch

from core.attack_keys import ADAPTIVE_ATTACKS
from core.attacks import run_attack
from core.attacks_adaptive.fmn import defended_fmn
from core.attacks_adaptive.pgd import adaptive_pgd
from core.attacks_adaptive.result import AdaptiveResult, check_attack_inputs, check_eps, finish
from core.attacks_adaptive.square import square_attack
from core.defended import DefendedClassifier


def run_adaptive_attack(
    name: str,
    defended: DefendedClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float | None = None,
    *,
    seed: int = 0,
    steps: int | None = None,
    restarts: int = 1,
    batch_size: int = 128,
) -> AdaptiveResult:
    """Attack `name` ("pgd+bpda", "pgd+all-maps", "fmn+defended", "square+defended") on the defended classifier.

    eps: the L∞ budget in (0, 1] for fixed-budget attacks, None for fmn+defended. steps: PGD steps (40),
    FMN steps (100) or Square queries (1000); None keeps those defaults. restarts: PGD only.
    """
    if name not in ADAPTIVE_ATTACKS:
        raise ValueError(f"expected an adaptive attack in {sorted(ADAPTIVE_ATTACKS)}, got {name!r}")
    spec = ADAPTIVE_ATTACKS[name]
    if spec.needs_eps:
        eps = check_eps(eps)
    elif eps is not None:
        raise ValueError(f"expected eps=None for {name} (a minimum-norm attack finds its own budget), got {eps!r}")
    if restarts != 1 and spec.attack != "pgd":
        raise ValueError(f"expected restarts=1 for {name} (only PGD restarts), got {restarts!r}")
    options = {} if steps is None else {"queries" if spec.attack == "square" else "steps": steps}
    if spec.attack == "pgd":
        return adaptive_pgd(defended, images, labels, eps, objective=spec.variant, restarts=restarts, seed=seed,
                            batch_size=batch_size, **options)
    if spec.attack == "fmn":
        return defended_fmn(defended, images, labels, seed=seed, batch_size=batch_size, **options)
    return square_attack(defended, images, labels, eps, seed=seed, batch_size=batch_size, **options)


def transfer_attack(
    defended: DefendedClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    seed: int = 0,
    steps: int | None = None,
    batch_size: int = 128,
) -> AdaptiveResult:
    """The non-adaptive attack of Table IV: Foolbox LinfPGD on the bare model, then the defence applied."""
    check_attack_inputs(defended, images, labels)
    bare = run_attack(defended.model, images, labels, "pgd", eps=check_eps(eps), seed=seed, batch_size=batch_size,
                      steps=steps)
    return finish(defended, images, bare.adversarial, labels, batch_size)
