"""The sanity checks an evaluation of a defence is expected to pass (Carlini et al. 2019, "On evaluating
adversarial robustness", §5), each a function returning its outcome rather than raising:

    accuracy_falls_to_zero      accuracy reaches 0 as ε grows (else the attack, not the defence, is stuck)
    more_effort_does_not_help   more steps / restarts lower accuracy by no more than noise (the attack converged)
    white_box_beats_gradient_free   the gradient attack is at least as strong as the gradient-free one
                                (else the gradient is masked: the defence hides, it does not defend)
    adaptive_beats_non_adaptive the attack that knows the defence is at least as strong as the one that does not
                                (Table IV's attack on the bare model; else the adaptive attack is broken)

They take accuracies (or results) computed by the caller, so they run with any attack and any budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.attacks_adaptive.result import AdaptiveResult


@dataclass(frozen=True)
class SanityCheck:
    """One check's outcome: whether it passed, the numbers it rests on, one readable line."""

    name: str
    passed: bool
    measured: dict[str, float] = field(default_factory=dict)
    message: str = ""


def one_image(n: int) -> float:
    """The default tolerance: one image out of n, the smallest change an accuracy can show."""
    if n < 1:
        raise ValueError(f"expected at least one image, got n={n}")
    return 1 / n


def accuracy_falls_to_zero(
    accuracy_at: Callable[[float], float], eps_255: Sequence[float], *, tolerance: float = 0.0
) -> SanityCheck:
    """accuracy_at(ε in [0, 1]) at each ε of `eps_255` (1/255 units, increasing): passes when the accuracy
    never rises by more than `tolerance` from one ε to the next and is 0 at the largest."""
    if not eps_255 or list(eps_255) != sorted(eps_255) or eps_255[0] <= 0:
        raise ValueError(f"expected increasing budgets > 0 in 1/255 units, got {list(eps_255)}")
    curve = [accuracy_at(e / 255) for e in eps_255]
    monotone = all(b <= a + tolerance for a, b in zip(curve, curve[1:], strict=False))
    passed = monotone and curve[-1] == 0
    shown = ", ".join(f"{e:g}: {a:.3f}" for e, a in zip(eps_255, curve, strict=True))
    return SanityCheck("accuracy_falls_to_zero", passed, {f"{e:g}": a for e, a in zip(eps_255, curve, strict=True)},
                       f"accuracy by ε/255 {shown}" + ("" if passed else " (expected non-increasing down to 0)"))


def more_effort_does_not_help(base: float, more: float, n: int, *, tolerance: float | None = None) -> SanityCheck:
    """Accuracy under the attack as run (`base`) and with more steps or restarts (`more`), on the same n images:
    passes when `more` is lower by at most `tolerance` (default: one image)."""
    tolerance = one_image(n) if tolerance is None else tolerance
    passed = base - more <= tolerance + 1e-12
    return SanityCheck("more_effort_does_not_help", passed, {"base": base, "more": more, "tolerance": tolerance},
                       f"accuracy {base:.3f} as run, {more:.3f} with more effort (tolerance {tolerance:.3f})"
                       + ("" if passed else ": the attack had not converged"))


def white_box_beats_gradient_free(
    white_box: AdaptiveResult, gradient_free: AdaptiveResult, *, tolerance: float | None = None
) -> SanityCheck:
    """Passes when the white-box attack's accuracy is at most the gradient-free one's + `tolerance` (default
    one image). `missed` counts images only the gradient-free attack fooled: many of them mean masking."""
    n = int(white_box.labels.numel())
    if gradient_free.labels.shape != white_box.labels.shape or not bool((gradient_free.labels == white_box.labels).all()):
        raise ValueError("expected both results on the same images (equal labels)")
    tolerance = one_image(n) if tolerance is None else tolerance
    white, free = white_box.accuracy(), gradient_free.accuracy()
    missed = int((gradient_free.fooled & ~white_box.fooled).sum())
    passed = white <= free + tolerance + 1e-12
    return SanityCheck("white_box_beats_gradient_free", passed,
                       {"white_box": white, "gradient_free": free, "missed": float(missed), "tolerance": tolerance},
                       f"accuracy {white:.3f} white-box, {free:.3f} gradient-free; {missed} image(s) only the "
                       "gradient-free attack fooled" + ("" if passed else ": the gradient looks masked"))


def adaptive_beats_non_adaptive(adaptive: float, non_adaptive: float, n: int, *,
                                tolerance: float | None = None) -> SanityCheck:
    """Accuracy of the defence under an adaptive attack and under the non-adaptive one at the same budget, on the
    same n images: passes when the adaptive accuracy is at most the other's + `tolerance` (default one image)."""
    tolerance = one_image(n) if tolerance is None else tolerance
    passed = adaptive <= non_adaptive + tolerance + 1e-12
    return SanityCheck("adaptive_beats_non_adaptive", passed,
                       {"adaptive": adaptive, "non_adaptive": non_adaptive, "tolerance": tolerance},
                       f"accuracy {adaptive:.3f} adaptive, {non_adaptive:.3f} non-adaptive (tolerance {tolerance:.3f})"
                       + ("" if passed else ": the adaptive attack is weaker than the one that ignores the defence"))
