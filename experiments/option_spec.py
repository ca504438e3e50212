"""How one experiment option is declared: the `Option` record carried by each ExperimentConfig field.

`option(default, help, ...)` is `dataclasses.field` with an `Option` in its metadata. Everything about an
option is written there once: its command-line flag (derived from the field name, `lam` -> `--lam`), how a
command-line word is parsed, its help, its range or choices, its hash policy and an example value for the
tests. experiments/options.py derives the parser, the checks, the hash and the rebuild command from it.

Parsers and checks are plain functions; checks raise `ValueError(f"expected {flag} ..., got ...")`.
Registries that import torch (models, normalisations) are imported inside their checks, so reading a
config (the app's first page) stays cheap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# hash policies: how a field takes part in the experiment's hash (its cache directory name)
HASHED = "hashed"  # changes stored numbers: always hashed
HASHED_IF_SET = "hashed if set"  # added after caches were shipped: hashed only when not its default, so every
#                                   existing experiment keeps its directory name
STAGES = "stages"  # not hashed: adds stages to the same directory (attacks, budgets); the rebuild command keeps it
RUN = "run"  # a run setting (device, batch sizes): changes no stored number; the rebuild command leaves it out
POLICIES = (HASHED, HASHED_IF_SET, STAGES, RUN)

Check = Callable[[Any, str], None]  # (value, flag) -> None, or ValueError naming the flag


@dataclass(frozen=True)
class Option:
    """One experiment option, as the command line, the checks, the hash and the rebuild command see it."""

    help: str  # the parser's help text (and the field's documentation)
    parse: Callable[[str], Any] = str  # one command-line word -> value (argparse names its __name__ in errors)
    check: Check | None = None  # range or choices of a value; None: any value (or only cross-field checks apply)
    hash: str = HASHED  # one of POLICIES
    example: Any = None  # a valid non-default value: tests/test_options_roundtrip.py runs every option with it
    many: bool = False  # a tuple of values: `--attacks fmn pgd`
    words: tuple[tuple[str, Any], ...] = ()  # words standing for a whole tuple, e.g. (("none", ()),); str values only
    switch: bool = False  # on/off option whose flag alone means on (`--bf16`)
    cli: bool = True  # False: no command-line flag (filled in by the runner, or set in code)

    def __post_init__(self) -> None:
        if self.hash not in POLICIES:
            raise ValueError(f"expected a hash policy in {POLICIES}, got {self.hash!r}")
        if self.words and not (self.many and self.parse is str):
            raise ValueError(f"expected words only for a tuple of strings (parse=str, many=True), got {self.words}")


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
           **spec: Any) -> Any:
    """A dataclass field whose metadata holds its `Option` (`factory`: a default_factory for mutable defaults)."""
    meta = {"option": Option(help=help, **spec)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------- parsers of one command-line word ----------
def on_off(value: str) -> bool:
    """`on` | `off` -> True | False."""
    if value not in ("on", "off"):
        raise ValueError(value)
    return value == "on"


on_off.__name__ = "on or off"  # argparse: "invalid on or off value: 'maybe'"


def batch_size_or_auto(value: str) -> int:
    """`--batch-size auto|N`: 0 stands for auto (as many maps as fit; see core.autobatch)."""
    return 0 if value == "auto" else int(value)


batch_size_or_auto.__name__ = "batch size (auto or a positive integer)"


def size_or_full(value: str) -> int | str:
    """`--class-batch-size full|N`: `full` stays the word (the whole pool per step), N an integer."""
    return "full" if value == "full" else int(value)


size_or_full.__name__ = "minibatch size (full or a positive integer)"


# ---------- checks of one value ----------
def at_least(low: int, note: str = "") -> Check:
    """value >= low (an integer option); `note` is added in brackets to the message."""

    def check(value: int, flag: str) -> None:
        if value < low:
            raise ValueError(f"expected {flag} >= {low}{f' ({note})' if note else ''}, got {value}")

    return check


def finite_at_least(low: float, strict: bool = False) -> Check:
    """value is a finite number >= low (> low when strict)."""

    def check(value: float, flag: str) -> None:
        if not (math.isfinite(value) and (value > low if strict else value >= low)):
            raise ValueError(f"expected {flag} {'>' if strict else '>='} {low:g} (a finite number), got {value:g}")

    return check


def one_of(*choices: str) -> Check:
    """value is one of `choices` ("expected --pool avg or max, got 'median'")."""

    def check(value: str, flag: str) -> None:
        if value not in choices:
            raise ValueError(f"expected {flag} {' or '.join(choices)}, got {value!r}")

    return check


def check_model(value: str, flag: str) -> None:
    """A key of core.models.registry.MODELS."""
    from core.models.registry import MODELS

    if value not in MODELS:
        raise ValueError(f"expected {flag} in {sorted(MODELS)}, got {value!r}")


def check_input_norm(value: str, flag: str) -> None:
    """A key of core.models.normalization.NORMALIZATIONS."""
    from core.models.normalization import NORMALIZATIONS

    if value not in NORMALIZATIONS:
        raise ValueError(f"expected {flag} in {sorted(NORMALIZATIONS)}, got {value!r}")


def check_attacks(value: tuple[str, ...], flag: str) -> None:
    """Keys of core.attack_keys.ATTACKS (the empty tuple: essential maps only)."""
    from core.attack_keys import ATTACKS

    unknown = [name for name in value if name not in ATTACKS]
    if unknown:
        raise ValueError(f"expected {flag} from {sorted(ATTACKS)} or none, got {unknown[0]!r}")


def check_adaptive_attacks(value: tuple[str, ...], flag: str) -> None:
    """Keys of core.attack_keys.ADAPTIVE_ATTACKS, the attacks on the class-map defence (the empty tuple: none)."""
    from core.attack_keys import ADAPTIVE_ATTACKS

    unknown = [name for name in value if name not in ADAPTIVE_ATTACKS]
    if unknown:
        raise ValueError(f"expected {flag} from {sorted(ADAPTIVE_ATTACKS)} or none, got {unknown[0]!r}")


def check_eps(value: tuple[float, ...], flag: str) -> None:
    """PGD budgets in (0, 255], 1/255 units."""
    for eps in value:
        if not 0 < eps <= 255:
            raise ValueError(f"expected {flag} in (0, 255] (units of 1/255), got {eps:g}")


def check_size_or_full(value: int | str, flag: str) -> None:
    """`full` or an integer >= 1."""
    if value != "full" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"expected {flag} >= 1 or full, got {value!r}")


def check_batch_size(value: int, flag: str) -> None:
    """0 (auto) or a positive number of maps."""
    if value < 0:
        raise ValueError(f"expected {flag} auto or >= 1, got {value}")


__all__ = [
    "HASHED", "HASHED_IF_SET", "POLICIES", "RUN", "STAGES", "Check", "Option", "at_least", "batch_size_or_auto",
    "check_adaptive_attacks", "check_attacks", "check_batch_size", "check_size_or_full", "check_eps", "check_input_norm", "check_model", "finite_at_least", "on_off",
    "one_of", "option", "size_or_full",
]
