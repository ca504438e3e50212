"""PGD that knows the class-map defence (L∞, untargeted), with two objectives.

    result = adaptive_pgd(defended, images, labels, 8 / 255, objective="bpda")      # key 'pgd-8+bpda'
    result = adaptive_pgd(defended, images, labels, 8 / 255, objective="all-maps")  # key 'pgd-8+all-maps'

The loop is Foolbox 3.3.4's LinfPGD (attacks/gradient_descent_base.py), written out so that the
objective can change: a random start x0 + U(-ε, ε) clipped to [0, 1], then `steps` times
x <- clip(x0 + clip(x + α·sign(∇loss) - x0, -ε, ε), 0, 1) with α = rel_stepsize·ε (0.01 / 0.3·ε, 40 steps).
Objectives (summed over the batch, ascended):

    bpda      CE(defended(x), y): the defended logits, whose gradient is that of the branch the first
              pass picks at the current point (core/defended.py)
    all-maps  CE(f(x), y) + Σ_k CE(f(filter(x, M_k)), y): the bare model and every class map's branch
              at once, so that whichever map the first pass picks, the image is already misclassified

Two departures from Foolbox, both of which can only make the attack stronger: every iterate is judged
by the defended classifier and an image keeps the first iterate that fools it (Foolbox returns the last
one), and `restarts` > 1 draws new random starts for the images no earlier start fooled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.attacks_adaptive.result import (
    AdaptiveResult,
    check_attack_inputs,
    check_count,
    check_eps,
    device_of,
    finish,
)
from core.defended import DefendedClassifier

FOOLBOX_REL_STEPSIZE = 0.01 / 0.3  # Foolbox LinfPGD's default step size, relative to ε
FOOLBOX_STEPS = 40  # Foolbox LinfPGD's default number of steps
OBJECTIVES = ("bpda", "all-maps")


def adaptive_pgd(
    defended: DefendedClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    objective: str = "bpda",
    steps: int = FOOLBOX_STEPS,
    rel_stepsize: float = FOOLBOX_REL_STEPSIZE,
    restarts: int = 1,
    seed: int = 0,
    batch_size: int = 128,
) -> AdaptiveResult:
    """Attack images (N, C, H, W) in [0, 1] with labels (N,) through the defence within L∞ budget eps (in (0, 1]).

    The random starts come from a CPU generator seeded with `seed`, drawn batch after batch and restart
    after restart, so the same arguments give the same adversarials on any device (up to float rounding).
    """
    check_attack_inputs(defended, images, labels)
    eps = check_eps(eps)
    if objective not in OBJECTIVES:
        raise ValueError(f"expected objective in {list(OBJECTIVES)}, got {objective!r}")
    for value, name in ((steps, "steps"), (restarts, "restarts"), (batch_size, "batch_size")):
        check_count(value, name)
    if not 0 < rel_stepsize <= 1:
        raise ValueError(f"expected rel_stepsize in (0, 1], got {rel_stepsize!r}")
    device = device_of(defended, images.device)
    generator = torch.Generator().manual_seed(seed)
    adversarial = []
    for start in range(0, images.shape[0], batch_size):
        x0 = images[start : start + batch_size].to(device, torch.float32)  # (B, C, H, W)
        y = labels[start : start + batch_size].to(device)  # (B,)
        adversarial.append(_attack_batch(defended, x0, y, eps, objective, steps, rel_stepsize * eps, restarts,
                                         generator))
    adv = torch.cat(adversarial) if adversarial else images.float()
    return finish(defended, images, adv, labels, batch_size)


def _attack_batch(
    defended: DefendedClassifier,
    x0: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    objective: str,
    steps: int,
    stepsize: float,
    restarts: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """(B, C, H, W): per image the first iterate that fools the defence, else the last iterate of the last restart."""
    best = x0.clone()
    fooled = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)  # (B,)
    for _ in range(restarts):
        todo = (~fooled).nonzero().flatten()  # (A,) images no earlier start fooled
        if todo.numel() == 0:
            break
        noise = torch.empty(x0[todo].shape).uniform_(-eps, eps, generator=generator).to(x0.device)
        adv, hit = _one_start(defended, x0[todo], y[todo], eps, objective, steps, stepsize, noise)
        best[todo] = adv
        fooled[todo] = hit
    return best


def _one_start(
    defended: DefendedClassifier,
    x0: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    objective: str,
    steps: int,
    stepsize: float,
    noise: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One PGD run from x0 + noise: (kept iterate (A, C, H, W), fooled (A,) bool)."""
    x = (x0 + noise).clamp(0, 1)  # (A, C, H, W) random start, as Foolbox
    kept = x.clone()
    fooled = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
    for step in range(steps + 1):  # judge every iterate, the last one included
        x.requires_grad_(True)
        loss, pred = _objective(defended, x, y, objective)
        newly = (pred != y) & ~fooled  # (A,)
        kept[newly] = x.detach()[newly]
        fooled |= newly
        if step == steps or bool(fooled.all()):
            break
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x = x + stepsize * grad.sign()
            x = (x0 + (x - x0).clamp(-eps, eps)).clamp(0, 1)
    kept[~fooled] = x.detach()[~fooled]
    return kept, fooled


def _objective(
    defended: DefendedClassifier, x: torch.Tensor, y: torch.Tensor, objective: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to ascend (scalar), defended prediction (A,)) at x (A, C, H, W)."""
    if objective == "bpda":
        logits = defended(x)  # (A, K) through the branch the first pass picks
        return F.cross_entropy(logits, y, reduction="sum"), logits.detach().argmax(dim=1)
    model, maps = defended.model, defended.class_maps  # maps (K, C, H, W)
    bare = model(x)  # (A, K)
    count = x.shape[0]
    branches = defended.branch(x.repeat(maps.shape[0], 1, 1, 1),
                               torch.arange(maps.shape[0], device=x.device).repeat_interleave(count))  # (K*A, K)
    loss = F.cross_entropy(bare, y, reduction="sum") + F.cross_entropy(branches, y.repeat(maps.shape[0]),
                                                                         reduction="sum")
    pick = bare.detach().argmax(dim=1)  # (A,) the map the defence would choose
    pred = branches.detach().view(maps.shape[0], count, -1)[pick, torch.arange(count, device=x.device)].argmax(dim=1)
    return loss, pred
