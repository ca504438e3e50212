"""Attacks on the class-map defence that know it (Athalye, Carlini & Wagner 2018; Carlini et al. 2019;
Tramèr et al. 2020), run on `core.defended.DefendedClassifier`:

    pgd.py      PGD through the defence: BPDA (the picked branch's gradient) or every branch at once
    fmn.py      Foolbox's LInfFMNAttack on the defended classifier: minimum L∞ norms
    square.py   the gradient-free Square attack, a check for gradient masking
    run.py      the registry's names -> the functions above; the non-adaptive attack (Table IV) for comparison
    checks.py   the sanity checks (accuracy falls to 0, more effort does not help, white-box >= gradient-free)
    curve.py    accuracy against ε: bare model, non-adaptive and adaptive attacks on the defence

Names and keys ("pgd-8+bpda") live in core.attack_keys (ADAPTIVE_ATTACKS, adaptive_attack_key).
"""

from core.attacks_adaptive.checks import (
    SanityCheck,
    accuracy_falls_to_zero,
    adaptive_beats_non_adaptive,
    more_effort_does_not_help,
    white_box_beats_gradient_free,
)
from core.attacks_adaptive.curve import CURVE_ATTACKS, CURVE_EPS_255, RobustnessCurve, curve_correct, robustness_curve
from core.attacks_adaptive.fmn import defended_fmn
from core.attacks_adaptive.pgd import adaptive_pgd
from core.attacks_adaptive.result import AdaptiveResult, accuracy_at
from core.attacks_adaptive.run import run_adaptive_attack, transfer_attack
from core.attacks_adaptive.square import square_attack

__all__ = [
    "CURVE_ATTACKS", "CURVE_EPS_255", "AdaptiveResult", "RobustnessCurve", "SanityCheck", "accuracy_at",
    "accuracy_falls_to_zero", "adaptive_beats_non_adaptive", "adaptive_pgd", "curve_correct", "defended_fmn", "more_effort_does_not_help", "robustness_curve",
    "run_adaptive_attack", "square_attack", "transfer_attack", "white_box_beats_gradient_free",
]
