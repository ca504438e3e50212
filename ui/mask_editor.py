"""The Lab's mask editor, its pure part: which coefficients a band, a subband choice or a click keeps.

Every function takes and returns numpy arrays in the basis's display order (as maps are stored and drawn) and
a core.bases.MapLayout that says what the display indices mean; no Streamlit, no torch (tests/test_mask_editor.py
checks each against a plain loop). An edit is: start from a map (C, H, W) in [0, 1], keep or remove a region of
coefficients (the same (H, W) region in every channel), then flip single coefficients by clicking them.

- frequency bases (fourier, phase, dct): a radial band on the layout's axes, radius √(row² + col²) in the
  layout's units (cycles per image for the centred spectra, half cycles for the DCT);
- wavelets: the subbands to keep, by label ('level 2 diagonal');
- fourier and phase: a click flips the coefficient and its Hermitian partner −k together, since the filter of a
  real image sees a map only through (M(k) + M(−k)) / 2 (docs/BASES.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

LOW_PASS, HIGH_PASS, BAND_PASS = "low-pass", "high-pass", "band-pass"
BAND_KINDS = (LOW_PASS, HIGH_PASS, BAND_PASS)
KEEP, REMOVE = "keep", "remove"
CENTRED = "centred spectrum"  # MapLayout.name of the Fourier bases: Hermitian pairs


def coefficient_radius(layout: object) -> np.ndarray:
    """(H, W) float64: √(row value² + column value²) of each display cell (distance from the origin's values)."""
    rows = np.asarray(layout.row_values, dtype=np.float64)
    cols = np.asarray(layout.col_values, dtype=np.float64)
    return np.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2)


def max_radius(layout: object) -> float:
    """The largest radius of any coefficient: the slider's upper end."""
    return float(coefficient_radius(layout).max())


def band_region(layout: object, kind: str, radius: float, outer: float | None = None) -> np.ndarray:
    """(H, W) bool: the coefficients inside a radial band.

    low-pass: radius ≤ `radius`; high-pass: radius ≥ `radius`; band-pass: `radius` ≤ radius ≤ `outer`.
    """
    if kind not in BAND_KINDS:
        raise ValueError(f"expected a band in {BAND_KINDS}, got {kind!r}")
    r = coefficient_radius(layout)
    if kind == LOW_PASS:
        return r <= radius
    if kind == HIGH_PASS:
        return r >= radius
    if outer is None or outer < radius:
        raise ValueError(f"expected a band-pass outer radius >= {radius}, got {outer}")
    return (r >= radius) & (r <= outer)


def subband_labels(layout: object) -> list[str]:
    """The labels of a wavelet layout's subbands, coarsest first ('level 3 approximation', …); [] for the others."""
    return [band.label for band in layout.subbands]


def subband_region(layout: object, keep: Iterable[str], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: True inside the subbands whose labels are in `keep`; ValueError on a label the layout lacks."""
    keep = set(keep)
    unknown = keep - set(subband_labels(layout))
    if unknown:
        raise ValueError(f"expected subbands in {subband_labels(layout)}, got {sorted(unknown)}")
    region = np.zeros(shape, dtype=bool)
    for band in layout.subbands:
        if band.label in keep:
            region[band.rows[0]:band.rows[1], band.cols[0]:band.cols[1]] = True
    return region


def apply_region(map_display: np.ndarray, region: np.ndarray, action: str) -> np.ndarray:
    """(C, H, W) map with the (H, W) region kept (everything else set to 0) or removed (set to 0) -> (C, H, W)."""
    if action not in (KEEP, REMOVE):
        raise ValueError(f"expected an action in {(KEEP, REMOVE)}, got {action!r}")
    if region.shape != map_display.shape[-2:]:
        raise ValueError(f"expected a region of shape {map_display.shape[-2:]}, got {region.shape}")
    chosen = region if action == KEEP else ~region
    return np.where(chosen[None], map_display, 0).astype(map_display.dtype)


def hermitian_partner(layout: object, row: int, col: int) -> tuple[int, int]:
    """The display cell of −k for the cell (row, col) of frequency k in a centred spectrum.

    The origin sits at (H // 2, W // 2); −k is the mirror through it, wrapped: at even sizes the Nyquist row and
    column (−H/2) are their own partners.
    """
    height, width = len(layout.row_values), len(layout.col_values)
    return (2 * layout.origin[0] - row) % height, (2 * layout.origin[1] - col) % width


def toggle_coefficient(map_display: np.ndarray, layout: object, row: int, col: int) -> np.ndarray:
    """Flip one coefficient in every channel: kept (channel maximum > 0.5) -> 0, else -> 1; its Hermitian
    partner gets the same value in a centred spectrum. Returns a new (C, H, W) array."""
    height, width = map_display.shape[-2:]
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"expected a coefficient inside {height} × {width}, got ({row}, {col})")
    out = np.array(map_display, copy=True)
    value = 0.0 if float(out[:, row, col].max()) > 0.5 else 1.0
    cells = [(row, col)]
    if layout.name == CENTRED:
        cells.append(hermitian_partner(layout, row, col))
    for r, c in cells:
        out[:, r, c] = value
    return out


@dataclass(frozen=True)
class Edit:
    """One state of the editor: a region kept or removed, then clicked coefficients flipped, in click order."""

    region: np.ndarray | None  # (H, W) bool, or None: no region step
    action: str = KEEP  # KEEP or REMOVE
    clicks: Sequence[tuple[int, int]] = ()  # display (row, col) of each click


def edited_map(start: np.ndarray, layout: object, edit: Edit) -> np.ndarray:
    """The start map (C, H, W) after the edit's region step and its clicks -> (C, H, W) float32 in [0, 1]."""
    out = np.clip(np.asarray(start, dtype=np.float32), 0, 1)
    if edit.region is not None:
        out = apply_region(out, edit.region, edit.action)
    for row, col in edit.clicks:
        out = toggle_coefficient(out, layout, row, col)
    return out


def kept_share(map_display: np.ndarray) -> float:
    """The share of the map's C·H·W entries above 0.5."""
    return float((np.asarray(map_display) > 0.5).mean())


__all__ = ["BAND_KINDS", "BAND_PASS", "HIGH_PASS", "KEEP", "LOW_PASS", "REMOVE", "Edit", "apply_region",
           "band_region", "coefficient_radius", "edited_map", "hermitian_partner", "kept_share", "max_radius",
           "subband_labels", "subband_region", "toggle_coefficient"]
