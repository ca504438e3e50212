"""One update of the Lab's mask editor: the edited mask, the image filtered by it, the model's probabilities and
the clickable heat map, from the editor's state. No Streamlit (bench/bench_editor.py times it).

At the input the mask filters the image in its basis (ui.map_basis.filter_in_basis) and the model classifies the
filtered image; at a hidden layer it filters that layer's features (core.hidden_layers.MaskedAt) and there is no
filtered image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ui.basis_figures import coefficient_figure, map_layout, map_plane
from ui.map_basis import INPUT, filter_in_basis, masked_probs
from ui.mask_editor import Edit, edited_map, kept_share


@dataclass(frozen=True, eq=False)
class EditorView:
    """What the editor shows after one change."""

    mask: np.ndarray  # (C, H, W) float32 in [0, 1], display order: the mask to download
    filtered: np.ndarray | None  # (3, H, W) float32 image filtered by the mask; None at a hidden layer
    probs: np.ndarray | None  # (K,) float64 softmax of the model on the filtered input; None without a model
    figure: go.Figure  # the mask's heat map (channel mean or one channel), clickable
    kept: float  # share of the mask's entries above 0.5


def update_editor(model: object | None, image: np.ndarray, start: np.ndarray, basis_key: str, edit: Edit, *,
                  layer: str = INPUT, channel: int | None = None, title: str = "The mask") -> EditorView:
    """The editor after applying `edit` to the start map (C, H, W) in `basis_key`'s display order, for one
    (3, H, W) image in [0, 1]; `channel` picks the plane the heat map shows (None: the channel mean)."""
    layout = map_layout(basis_key, *start.shape[-2:])
    mask = edited_map(start, layout, edit)
    filtered = filter_in_basis(image, mask, basis_key) if layer == INPUT else None
    probs = None
    if model is not None:
        probs = masked_probs(model, image, mask, basis_key, layer)
    plane, what = map_plane(mask, channel)
    where = f" at {layer}" if layer != INPUT else ""
    share = kept_share(mask)
    figure = coefficient_figure(plane, basis_key, f"{title}: {basis_key}{where}",
                                subtitle=f"{what}; {100 * share:.1f} % of the entries kept · click a coefficient to "
                                         "flip it, or the box tool (top right) to flip a region",
                                clickable=True)
    return EditorView(mask=mask, filtered=None if filtered is None else np.clip(filtered, 0, 1), probs=probs,
                      figure=figure, kept=share)


def clicked_cells(points: list[dict], basis_key: str, height: int, width: int) -> list[tuple[int, int]]:
    """Display (row, col) of the points of a Plotly selection event on the editor's heat map (its marker trace),
    read from each point's axis values through the layout; points of other traces are ignored."""
    layout = map_layout(basis_key, height, width)
    rows = {float(v): i for i, v in enumerate(layout.row_values)}
    cols = {float(v): j for j, v in enumerate(layout.col_values)}
    cells = []
    for point in points:
        if point.get("curve_number", 1) != 1:
            continue
        row, col = rows.get(float(point.get("y", np.nan))), cols.get(float(point.get("x", np.nan)))
        if row is not None and col is not None:
            cells.append((row, col))
    return cells


__all__ = ["EditorView", "clicked_cells", "update_editor"]
