"""How a basis's coefficients are drawn: axis labels, where the origin sits, and (for wavelets) the subbands.

A map is stored and shown in its basis's display order (`Basis.to_display_order`); a `MapLayout` describes
that order, so a figure can label its axes and outline the wavelet subbands without knowing the basis.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subband:
    """One rectangle of a packed wavelet pyramid, in the map's (H, W) index space."""

    level: int  # 1 = the finest scale (pywt's convention); the approximation carries the deepest level
    orientation: str  # "approximation" | "horizontal" | "vertical" | "diagonal" (pywt's cA, cH, cV, cD)
    rows: tuple[int, int]  # [start, stop) along H
    cols: tuple[int, int]  # [start, stop) along W

    @property
    def label(self) -> str:
        """e.g. 'level 2 diagonal', 'level 3 approximation'."""
        return f"level {self.level} {self.orientation}"


@dataclass(frozen=True)
class MapLayout:
    """What the axes of a map in display order mean."""

    name: str  # "centred spectrum" | "DCT corner" | "wavelet pyramid"
    row_label: str  # axis title for H
    col_label: str  # axis title for W
    row_values: tuple[int, ...]  # the coordinate of each display row (e.g. the signed frequency)
    col_values: tuple[int, ...]  # the coordinate of each display column
    origin: tuple[int, int]  # display index of the zero frequency / (0, 0) coefficient / coarsest approximation
    subbands: tuple[Subband, ...] = ()  # wavelet rectangles, coarsest first; empty for the other bases
