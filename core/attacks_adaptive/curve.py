"""Robustness curves: accuracy against ε for the bare model, the defence under the non-adaptive attack, and
the defence under attacks that know it.

    curve = robustness_curve(defended, images, labels)   # ε = 0, 1, 2, 4, 8, 16 /255
    curve.worst_case   # per ε: share of images that no attack (adaptive or not) fooled
    correct = curve_correct(defended, images, labels)    # the same per image: row -> (N, E) bool

At ε = 0 every row is the clean accuracy (of the bare model, resp. the defended one); no attack runs.
`curve_correct` is what a resumable pipeline stage computes chunk by chunk; `robustness_curve` averages it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from core.attack_keys import ADAPTIVE_ATTACKS
from core.attacks_adaptive.result import check_attack_inputs, defended_predictions, device_of
from core.attacks_adaptive.run import run_adaptive_attack, transfer_attack
from core.defended import DefendedClassifier

CURVE_EPS_255 = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)  # budgets of the curve, 1/255 units
CURVE_ATTACKS = ("pgd+bpda", "pgd+all-maps")  # the fixed-budget white-box attacks the curve runs by default
UNDEFENDED, NON_ADAPTIVE, WORST_CASE = "undefended", "non_adaptive", "worst_case"  # rows besides the attacks'


@dataclass
class RobustnessCurve:
    """Accuracy (share of n images) at each ε of `eps_255`; every list is aligned with it."""

    eps_255: list[float]  # budgets, 1/255 units
    undefended: list[float]  # the bare model under Foolbox LinfPGD on the bare model
    non_adaptive: list[float]  # the defence under that same attack (Table IV's evaluation)
    adaptive: dict[str, list[float]]  # adaptive attack name -> the defence under it
    worst_case: list[float]  # the defence when an image counts as correct only if no attack above fooled it
    n: int  # images


def check_curve_attacks(attacks: Sequence[str]) -> None:
    """ValueError unless every name is a fixed-budget adaptive attack (the curve sets its budget)."""
    for name in attacks:
        if name not in ADAPTIVE_ATTACKS or not ADAPTIVE_ATTACKS[name].needs_eps:
            fixed = sorted(k for k, s in ADAPTIVE_ATTACKS.items() if s.needs_eps)
            raise ValueError(f"expected fixed-budget adaptive attacks in {fixed}, got {name!r}")


def curve_correct(
    defended: DefendedClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps_255: Sequence[float] = CURVE_EPS_255,
    *,
    attacks: Sequence[str] = CURVE_ATTACKS,
    seed: int = 0,
    steps: int | None = None,
    baseline_steps: int | None = None,
    restarts: int = 1,
    batch_size: int = 128,
) -> dict[str, torch.Tensor]:
    """Per image and ε, whether it is still classified correctly: {"undefended", "non_adaptive", each attack,
    "worst_case"} -> (N, E) bool on the labels' device. steps: the adaptive attacks' (None: each one's default);
    baseline_steps: the non-adaptive PGD's (None: Foolbox's 40); restarts: PGD's (the other attacks start once)."""
    check_attack_inputs(defended, images, labels)
    if any(not 0 <= e <= 255 for e in eps_255):
        raise ValueError(f"expected budgets in [0, 255] (1/255 units), got {list(eps_255)}")
    check_curve_attacks(attacks)
    columns: dict[str, list[torch.Tensor]] = {name: [] for name in (UNDEFENDED, NON_ADAPTIVE, *attacks, WORST_CASE)}
    for e in eps_255:
        if e == 0:
            bare, shielded = _clean_correct(defended, images, labels, batch_size)
            columns[UNDEFENDED].append(bare)
            for name in (NON_ADAPTIVE, *attacks, WORST_CASE):
                columns[name].append(shielded)
            continue
        baseline = transfer_attack(defended, images, labels, e / 255, seed=seed, steps=baseline_steps,
                                   batch_size=batch_size)
        columns[UNDEFENDED].append(_bare_predictions(defended, baseline.adversarial, batch_size) == labels)
        columns[NON_ADAPTIVE].append(~baseline.fooled)
        survived = ~baseline.fooled  # (N,) bool
        for name in attacks:
            starts = restarts if ADAPTIVE_ATTACKS[name].attack == "pgd" else 1  # only PGD restarts
            result = run_adaptive_attack(name, defended, images, labels, e / 255, seed=seed, steps=steps,
                                         restarts=starts, batch_size=batch_size)
            columns[name].append(~result.fooled)
            survived = survived & ~result.fooled
        columns[WORST_CASE].append(survived)
    empty = torch.zeros(labels.shape[0], 0, dtype=torch.bool, device=labels.device)
    return {name: torch.stack(rows, dim=1).to(labels.device) if rows else empty for name, rows in columns.items()}


def robustness_curve(
    defended: DefendedClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps_255: Sequence[float] = CURVE_EPS_255,
    *,
    attacks: Sequence[str] = CURVE_ATTACKS,
    seed: int = 0,
    steps: int | None = None,
    restarts: int = 1,
    batch_size: int = 128,
) -> RobustnessCurve:
    """The curve over images (N, C, H, W) in [0, 1] with labels (N,). attacks: fixed-budget adaptive attacks
    (core.attack_keys.ADAPTIVE_ATTACKS); steps / restarts: as `run_adaptive_attack` (None: each attack's default),
    steps also the non-adaptive PGD's."""
    correct = curve_correct(defended, images, labels, eps_255, attacks=attacks, seed=seed, steps=steps,
                            baseline_steps=steps, restarts=restarts, batch_size=batch_size)
    shares = {name: [_share(column) for column in rows.T] for name, rows in correct.items()}
    return RobustnessCurve(list(eps_255), shares[UNDEFENDED], shares[NON_ADAPTIVE],
                           {name: shares[name] for name in attacks}, shares[WORST_CASE], int(labels.numel()))


def _share(correct: torch.Tensor) -> float:
    return float(correct.double().mean()) if correct.numel() else float("nan")


@torch.no_grad()
def _bare_predictions(defended: DefendedClassifier, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    device = device_of(defended, images.device)
    preds = [defended.model(images[s : s + batch_size].to(device)).argmax(dim=1).to(images.device)
             for s in range(0, images.shape[0], batch_size)]
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64, device=images.device)


def _clean_correct(defended: DefendedClassifier, images: torch.Tensor, labels: torch.Tensor,
                   batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) bool each: the bare model's and the defended classifier's clean predictions are right."""
    device = device_of(defended, images.device)
    defended_pred = defended_predictions(defended, images.to(device), batch_size).to(labels.device)
    return _bare_predictions(defended, images, batch_size).to(labels.device) == labels, defended_pred == labels
