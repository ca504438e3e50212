"""The Square attack (L∞, untargeted), gradient-free: a check for gradient masking (key 'square-8+defended').

    result = square_attack(defended, images, labels, 8 / 255, queries=1000)

Random search after Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient
black-box adversarial attack via random search" (ECCV 2020), Algorithms 1 and 2 and their reference
code (`square_attack_linf`): start from vertical stripes x + ε·(±1 per channel and column); each query
draws one square window of side s = round(√(p·H·W)) (1 <= s <= H - 1) at a uniformly random position,
sets the perturbation inside it to ε·(±1 per channel), resampled while it would not change the image,
and keeps the candidate when the margin loss z_y - max_{j≠y} z_j drops; an image stops once that margin
is negative (fooled). p follows the reference schedule, halving from p_init at fixed shares of the
query budget. p_init = 0.8 is AutoAttack's setting for Square L∞. It reads only the defended
classifier's logits, so a defence that hides its gradient does not slow it down.
"""

from __future__ import annotations

import math

import torch

from core.attacks_adaptive.result import (
    AdaptiveResult,
    check_attack_inputs,
    check_count,
    check_eps,
    device_of,
    finish,
)
from core.defended import DefendedClassifier

P_INIT = 0.8  # share of the image the first windows cover (AutoAttack's Square L∞ setting)
RESAMPLE_TRIES = 10  # draws of a window's signs before giving up on changing that image this query
# the reference `p_selection`: p = p_init / divisor while lower < 10000·query/queries <= upper (p_init elsewhere)
_SCHEDULE = ((10, 50, 2), (50, 200, 4), (200, 500, 8), (500, 1000, 16), (1000, 2000, 32), (2000, 4000, 64),
             (4000, 6000, 128), (6000, 8000, 256), (8000, 10000, 512))  # (lower, upper, divisor)


def window_share(p_init: float, query: int, queries: int) -> float:
    """p, the share of the image a window covers, at query `query` (0-based) of `queries`."""
    progress = int(query / queries * 10000)
    for lower, upper, divisor in _SCHEDULE:
        if lower < progress <= upper:
            return p_init / divisor
    return p_init


def square_attack(
    defended: DefendedClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    queries: int = 1000,
    p_init: float = P_INIT,
    seed: int = 0,
    batch_size: int = 128,
) -> AdaptiveResult:
    """Attack images (N, C, H, W) in [0, 1] with labels (N,) within L∞ budget eps using at most `queries`
    forward passes of the defended classifier per image. Random draws come from a CPU generator seeded
    with `seed`, so the same arguments give the same adversarials on any device (up to float rounding)."""
    check_attack_inputs(defended, images, labels)
    eps = check_eps(eps)
    check_count(queries, "queries")
    check_count(batch_size, "batch_size")
    if not 0 < p_init <= 1:
        raise ValueError(f"expected p_init in (0, 1], got {p_init!r}")
    device = device_of(defended, images.device)
    generator = torch.Generator().manual_seed(seed)
    adversarial = []
    for start in range(0, images.shape[0], batch_size):
        x0 = images[start : start + batch_size].to(device, torch.float32)  # (B, C, H, W)
        y = labels[start : start + batch_size].to(device)
        adversarial.append(_attack_batch(defended, x0, y, eps, queries, p_init, generator))
    adv = torch.cat(adversarial) if adversarial else images.float()
    return finish(defended, images, adv, labels, batch_size)


@torch.no_grad()
def margins(defended: DefendedClassifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) z_y - max_{j≠y} z_j of the defended logits: negative exactly when the defence is fooled (ties aside)."""
    logits = defended(x)  # (B, K)
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], -math.inf).amax(dim=1)
    return true - others


def _signs(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """±1 of `shape`, each with probability 1/2."""
    return (torch.randint(0, 2, shape, generator=generator) * 2 - 1).to(device, torch.float32)


def _attack_batch(
    defended: DefendedClassifier,
    x0: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    queries: int,
    p_init: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """(B, C, H, W) the best candidate of each image after the query budget (or once it fools the defence)."""
    count, channels, height, width = x0.shape
    best = (x0 + eps * _signs((count, channels, 1, width), generator, x0.device)).clamp(0, 1)  # vertical stripes
    best_margin = margins(defended, best, y)  # (B,)
    rows = torch.arange(height, device=x0.device)[None, :, None]  # (1, H, 1)
    cols = torch.arange(width, device=x0.device)[None, None, :]  # (1, 1, W)
    for query in range(queries - 1):  # the stripes used one query
        active = (best_margin > 0).nonzero().flatten()  # (A,)
        if active.numel() == 0:
            break
        side = round(math.sqrt(window_share(p_init, query, queries) * height * width))
        side = min(max(side, 1), min(height, width) - 1)
        top = torch.randint(0, height - side, (active.numel(),), generator=generator).to(x0.device)[:, None, None]
        left = torch.randint(0, width - side, (active.numel(),), generator=generator).to(x0.device)[:, None, None]
        window = ((rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side))[:, None]  # (A, 1, H, W)
        origin, current = x0[active], best[active]  # (A, C, H, W)
        candidate = current
        unchanged = torch.ones(active.numel(), dtype=torch.bool, device=x0.device)
        for _ in range(RESAMPLE_TRIES):  # the reference resamples until the window changes the image
            signs = _signs((active.numel(), channels, 1, 1), generator, x0.device)
            trial = torch.where(window, (origin + eps * signs).clamp(0, 1), current)
            candidate = torch.where(unchanged[:, None, None, None], trial, candidate)
            unchanged = ((candidate - current).abs() < 1e-7).flatten(1).all(dim=1)
            if not unchanged.any():
                break
        margin = margins(defended, candidate, y[active])
        improved = margin < best_margin[active]
        best[active[improved]] = candidate[improved]
        best_margin[active[improved]] = margin[improved]
    return best
