"""Bases a map can filter images in: Fourier amplitude (the default), Fourier phase, DCT, wavelet.

`BASES` names every basis once, each with its default options; the trainers, the tests and (later) the CLI and
the app iterate it. `get_basis(name, **options)` builds one with other options (e.g. wavelet="db2", levels=2).
Every basis filters as x_F = inverse(mask(forward(x), M)) (base.py); docs/BASES.md defines each one, what
M = 0 and M = 1 mean, its layout, its redundancy and its size rules.
"""

from __future__ import annotations

from core.bases.base import Basis
from core.bases.dct import DctBasis, dct_matrix
from core.bases.fourier import FourierBasis
from core.bases.layout import MapLayout, Subband
from core.bases.phase import PhaseBasis
from core.bases.wavelet import WAVELETS, WaveletBasis, analysis_matrix, possible_levels

DEFAULT_BASIS = "fourier"

BASES: dict[str, Basis] = {
    basis.name: basis for basis in (FourierBasis(), PhaseBasis(), DctBasis(), WaveletBasis())
}


def get_basis(name: str | Basis = DEFAULT_BASIS, **options: object) -> Basis:
    """The basis `name` (a Basis passes through), built with `options` if any; ValueError on unknown names."""
    if isinstance(name, Basis):
        if options:
            raise ValueError(f"expected no options with a built basis {name!r}, got {sorted(options)}")
        return name
    if name not in BASES:
        raise ValueError(f"expected a basis in {sorted(BASES)}, got {name!r}")
    if not options:
        return BASES[name]
    try:
        return type(BASES[name])(**options)
    except TypeError as error:  # an option the basis does not take
        raise ValueError(f"expected options the {name} basis takes, got {sorted(options)} ({error})") from None


def basis_from_key(key: str) -> Basis:
    """The basis a key names, as Basis.key writes it ('fourier', 'dct', 'wavelet-db2-L3'); ValueError if unknown.

    The inverse of Basis.key, kept beside it so manifests, the app and the report parse keys one way.
    """
    name, _, options = key.partition("-")
    if name != "wavelet" or not options:
        if key not in BASES:
            raise ValueError(f"expected a basis key in {sorted(BASES)} or 'wavelet-<name>-L<levels>', got {key!r}")
        return BASES[key]
    wavelet, _, levels = options.rpartition("-")
    if not wavelet or not levels.startswith("L") or not levels[1:].isdigit():
        raise ValueError(f"expected a wavelet key such as 'wavelet-haar-L3', got {key!r}")
    return get_basis("wavelet", wavelet=wavelet, levels=int(levels[1:]))


__all__ = [
    "BASES",
    "DEFAULT_BASIS",
    "WAVELETS",
    "Basis",
    "DctBasis",
    "FourierBasis",
    "MapLayout",
    "PhaseBasis",
    "Subband",
    "WaveletBasis",
    "analysis_matrix",
    "basis_from_key",
    "dct_matrix",
    "get_basis",
    "possible_levels",
]
