"""The attack vocabulary: the registry of attacks and the keys that name one attack setting.

No torch here, so the app's first page and the CLI's option checks can read it cheaply; running an
attack is `core.attacks.run_attack`. A key names what the cache stores for one attack setting:

    "fmn", "deepfool"        a minimum-norm attack (it finds its own budget)
    "pgd-8", "pgd-0.5"       a fixed-budget attack at ε in 1/255 units (4 decimals at most)
    "pgd-8+bpda"             a variant of the setting before "+" (adaptive attacks extend a key this way)

Everything that writes, parses, labels or orders keys goes through this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_PGD_EPS = 8 / 255  # METHOD §3; the paper also uses 1/255 and 3/255


@dataclass(frozen=True)
class AttackSpec:
    """What the rest of the project needs to know about an attack."""

    name: str  # registry key, also the first part of `attack_key`
    label: str  # for tables and drop-downs, e.g. "FMN"
    needs_eps: bool  # True: fixed-budget attack, run_attack needs eps; False: minimum-norm, eps must be None
    default_eps: float | None  # suggested budget for CLI / app defaults (None for minimum-norm attacks)
    description: str


# in display order: tables, pickers and reports list attacks in this order
ATTACKS: dict[str, AttackSpec] = {
    "fmn": AttackSpec(
        "fmn", "FMN", False, None, "Fast Minimum-Norm (L∞), Foolbox LInfFMNAttack, 100 steps: smallest L∞ perturbation"
    ),
    "pgd": AttackSpec(
        "pgd", "PGD", True, DEFAULT_PGD_EPS, "Projected Gradient Descent (L∞), Foolbox LinfPGD, 40 steps, random start"
    ),
    "deepfool": AttackSpec(
        "deepfool", "DeepFool", False, None, "DeepFool (L∞), Foolbox LinfDeepFoolAttack, 50 steps: minimum-norm"
    ),
}


@dataclass(frozen=True)
class AttackKey:
    """A parsed attack key: the attack's name, its budget in 1/255 units (fixed-budget attacks), a variant."""

    name: str  # a key of ATTACKS, or an unknown name read from an older or newer cache
    eps_255: float | None  # ε in 1/255 units; None for minimum-norm attacks
    variant: str = ""  # what follows "+", e.g. "bpda"; "" for the plain attack

    @property
    def base(self) -> str:
        """The key without its variant: 'pgd-8+bpda' -> 'pgd-8'."""
        return self.name if self.eps_255 is None else f"{self.name}-{self.eps_255:g}"

    @property
    def eps(self) -> float | None:
        """ε in [0, 1] pixel units (None for minimum-norm attacks)."""
        return None if self.eps_255 is None else self.eps_255 / 255

    def __str__(self) -> str:
        return self.base + (f"+{self.variant}" if self.variant else "")


def check_attack(name: str, eps: float | None) -> AttackSpec:
    """The spec of attack `name` after checking that `eps` (in [0, 1] units) fits it (ValueError otherwise)."""
    if name not in ATTACKS:
        raise ValueError(f"expected an attack in {sorted(ATTACKS)}, got {name!r}")
    spec = ATTACKS[name]
    if spec.needs_eps:
        if eps is None or not math.isfinite(eps) or not 0 < eps <= 1:
            raise ValueError(f"expected eps in (0, 1] for {name} (e.g. 8/255 = {DEFAULT_PGD_EPS:.4f}), got {eps!r}")
    elif eps is not None:
        raise ValueError(f"expected eps=None for {name} (a minimum-norm attack finds its own budget), got {eps!r}")
    return spec


def attack_key(name: str, eps: float | None = None, variant: str = "") -> str:
    """Stable id of an attack setting: 'fmn', 'deepfool', 'pgd-8' (eps in [0, 1], written in 1/255 units), 'pgd-0.5'."""
    spec = check_attack(name, eps)
    base = name if not spec.needs_eps else f"{name}-{round(eps * 255, 4):g}"
    return base + (f"+{variant}" if variant else "")


def parse_attack_key(key: str) -> AttackKey:
    """'pgd-8+bpda' -> AttackKey('pgd', 8.0, 'bpda'); 'fmn' -> AttackKey('fmn', None). Unknown names are kept
    as they are (a cache written by another version); a malformed budget is a ValueError."""
    base, _, variant = key.partition("+")
    name, dash, eps = base.partition("-")
    if not dash:
        return AttackKey(name, None, variant)
    try:
        value = float(eps)
    except ValueError:
        raise ValueError(f"expected an attack key like 'fmn' or 'pgd-8', got {key!r}") from None
    return AttackKey(name, value, variant)


def eps_of(key: str) -> float | None:
    """ε in 1/255 units of a key ('pgd-8' -> 8.0); None for minimum-norm attacks and keys that do not parse."""
    try:
        return parse_attack_key(key).eps_255
    except ValueError:
        return None


def attack_label(key: str) -> str:
    """Readable name of a key: 'FMN', 'PGD ε=8/255', 'PGD ε=8/255 + bpda'; 'none' and 'clean' as table words."""
    if key in ("none", "clean"):
        return {"none": "no map", "clean": "clean"}[key]
    try:
        parsed = parse_attack_key(key)
    except ValueError:
        return key
    name = ATTACKS[parsed.name].label if parsed.name in ATTACKS else parsed.name
    text = name if parsed.eps_255 is None else f"{name} ε={parsed.eps_255:g}/255"
    return text + (f" + {parsed.variant}" if parsed.variant else "")


def attack_order(key: str) -> tuple[int, float, str]:
    """Sort key: registry order (fmn < pgd by ε < deepfool), then unknown names; variants after their base."""
    try:
        parsed = parse_attack_key(key)
    except ValueError:
        return len(ATTACKS), 0.0, key
    names = list(ATTACKS)
    rank = names.index(parsed.name) if parsed.name in names else len(names)
    return rank, parsed.eps_255 or 0.0, parsed.variant


def attack_units(attacks: tuple[str, ...], eps: tuple[float, ...]) -> list[tuple[str, str, float | None]]:
    """(key, attack name, eps in [0, 1] or None) of each attack setting of a run: a fixed-budget attack once per
    ε of `eps` (1/255 units), a minimum-norm attack once. ValueError for an unknown attack or a bad ε."""
    units = []
    for name in attacks:
        if name not in ATTACKS:
            raise ValueError(f"expected an attack in {sorted(ATTACKS)}, got {name!r}")
        if ATTACKS[name].needs_eps:
            units += [(attack_key(name, e / 255), name, e / 255) for e in eps]
        else:
            units.append((attack_key(name), name, None))
    return units


def attack_name(key: str) -> str:
    """The attack a key belongs to: 'pgd-8+bpda' -> 'pgd', 'fmn' -> 'fmn'; a key that does not parse is its own name."""
    try:
        return parse_attack_key(key).name
    except ValueError:
        return key


def keys_of_attack(keys: list[str], name: str, plain: bool = False) -> list[str]:
    """The keys of attack `name` among `keys`, in their order: keys_of_attack(["fmn", "pgd-1", "pgd-8+bpda"],
    "pgd") -> ["pgd-1", "pgd-8+bpda"]; plain: without variants -> ["pgd-1"]."""
    return [k for k in keys if attack_name(k) == name and not (plain and parse_attack_key(k).variant)]


__all__ = [
    "ATTACKS", "AttackKey", "AttackSpec", "DEFAULT_PGD_EPS", "attack_key", "attack_label", "attack_name",
    "attack_order", "attack_units", "check_attack", "eps_of", "keys_of_attack", "parse_attack_key",
]


@dataclass(frozen=True)
class AdaptiveAttackSpec:
    """An attack on the class-map defence that knows it (core/attacks_adaptive/): its key extends `attack`'s."""

    name: str  # registry key, "<attack>+<variant>", e.g. "pgd+bpda"
    attack: str  # the attack whose key it extends ("pgd", "fmn"; "square" has no non-adaptive form here)
    variant: str  # what follows "+" in its keys, e.g. "bpda" in "pgd-8+bpda"
    label: str  # for tables, e.g. "PGD + BPDA"
    needs_eps: bool  # True: fixed budget (ε in (0, 1]); False: minimum-norm, finds its own budget
    gradient_free: bool  # True: uses only the defended classifier's outputs, never a gradient
    description: str


# in display order; the non-adaptive attack of Table IV is the plain key ("pgd-8") with class maps applied afterwards
ADAPTIVE_ATTACKS: dict[str, AdaptiveAttackSpec] = {
    "pgd+bpda": AdaptiveAttackSpec(
        "pgd+bpda", "pgd", "bpda", "PGD + BPDA", True, False,
        "PGD (L∞, Foolbox LinfPGD's defaults) through the defence: gradient of the branch the first pass picks",
    ),
    "pgd+all-maps": AdaptiveAttackSpec(
        "pgd+all-maps", "pgd", "all-maps", "PGD, all maps", True, False,
        "PGD (L∞) on the bare model's CE plus the CE of every class map's branch: no choice of map can save the image",
    ),
    "fmn+defended": AdaptiveAttackSpec(
        "fmn+defended", "fmn", "defended", "FMN + defence", False, False,
        "Fast Minimum-Norm (L∞), Foolbox LInfFMNAttack on the defended classifier: the smallest L∞ norm that fools it",
    ),
    "square+defended": AdaptiveAttackSpec(
        "square+defended", "square", "defended", "Square + defence", True, True,
        "Square attack (L∞, Andriushchenko et al. 2020), gradient-free: exposes gradient masking",
    ),
}


def adaptive_attack_key(name: str, eps: float | None = None) -> str:
    """Key of an adaptive attack setting: ("pgd+bpda", 8/255) -> 'pgd-8+bpda', ("fmn+defended", None) -> 'fmn+defended'.
    ValueError for an unknown adaptive attack or an ε that does not fit it (eps in [0, 1] units)."""
    if name not in ADAPTIVE_ATTACKS:
        raise ValueError(f"expected an adaptive attack in {sorted(ADAPTIVE_ATTACKS)}, got {name!r}")
    spec = ADAPTIVE_ATTACKS[name]
    if spec.needs_eps:
        if eps is None or isinstance(eps, bool) or not math.isfinite(eps) or not 0 < eps <= 1:
            raise ValueError(f"expected eps in (0, 1] for {name} (e.g. 8/255 = {DEFAULT_PGD_EPS:.4f}), got {eps!r}")
        return f"{spec.attack}-{round(eps * 255, 4):g}+{spec.variant}"
    if eps is not None:
        raise ValueError(f"expected eps=None for {name} (a minimum-norm attack finds its own budget), got {eps!r}")
    return f"{spec.attack}+{spec.variant}"


def adaptive_attack_of(key: str) -> str | None:
    """The adaptive attack a key belongs to: 'pgd-8+bpda' -> 'pgd+bpda'; None for a non-adaptive or unknown key."""
    try:
        parsed = parse_attack_key(key)
    except ValueError:
        return None
    name = f"{parsed.name}+{parsed.variant}"
    return name if parsed.variant and name in ADAPTIVE_ATTACKS else None


__all__ += ["ADAPTIVE_ATTACKS", "AdaptiveAttackSpec", "adaptive_attack_key", "adaptive_attack_of"]
