"""Maps drawn in their basis's own layout: Plotly heat maps and uint8 pictures of (C, H, W) maps in display order.

- fourier, phase: the centred spectrum, signed frequency axes in cycles per image, the zero frequency in the
  middle (exactly ui.figures' heat maps, which stay as they were);
- dct: the DCT grid, (0, 0) (the mean) in the top-left corner, index axes in half cycles per image;
- wavelet: the packed pyramid with each subband outlined and labelled (A3 = level-3 approximation, H/V/D =
  horizontal/vertical/diagonal detail, the digit the level, 1 the finest), the full name on hover;
- a hidden layer's map (C' channels, e.g. 16 at ResNet-20's layer1): the channel mean, or one picked channel.

Colour bar [0, 1] (Viridis) on every map. Pure functions of numpy arrays and a basis key, no Streamlit
(tests/test_basis_figures.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui import figures
from ui.arrays import to_hwc_uint8
from ui.map_basis import FOURIER, FREQUENCY_BASES, INPUT, basis_from_key
from ui.pictures import colormap_lut, heat_picture, image_picture, upscale

OUTLINE = "#ffffff"  # subband outlines: white reads on every Viridis colour
ORIENTATION_LETTER = {"approximation": "A", "horizontal": "H", "vertical": "V", "diagonal": "D"}
WAVELET_LEGEND = "A = approximation, H / V / D = horizontal / vertical / diagonal detail, digit = level (1 finest)"


@lru_cache(maxsize=64)
def map_layout(basis_key: str, height: int, width: int) -> object:
    """core.bases.MapLayout of a basis key at (H, W) (cached: layouts are small and immutable)."""
    return basis_from_key(basis_key).layout(height, width)


def short_label(band: object) -> str:
    """A subband's label that fits in its rectangle: 'A3', 'H1', 'D2'."""
    return f"{ORIENTATION_LETTER[band.orientation]}{band.level}"


def is_hidden(map_display: np.ndarray) -> bool:
    """A map with other than 1 or 3 channels is a hidden layer's: drawn one plane at a time."""
    return map_display.ndim == 3 and map_display.shape[0] not in (1, 3)


def map_plane(map_display: np.ndarray, channel: int | None = None) -> tuple[np.ndarray, str]:
    """One (H, W) plane of a (C, H, W) map and what it is: the channel mean (channel None) or channel `channel`."""
    if map_display.ndim != 3:
        raise ValueError(f"expected a map of shape (C, H, W), got {map_display.shape}")
    c = map_display.shape[0]
    if channel is None:
        return map_display.mean(axis=0), (f"mean of its {c} channels" if c > 1 else "its one channel")
    if not 0 <= channel < c:
        raise ValueError(f"expected a channel in [0, {c}), got {channel}")
    return map_display[channel], f"channel {channel} of {c}"


def layout_note(basis_key: str, height: int, width: int, layer: str = INPUT) -> str:
    """One sentence under a map: what its axes and origin mean in this basis (and at which layer)."""
    layout = map_layout(basis_key, height, width)
    where = "" if layer == INPUT else f" of the {layer} features ({height}×{width} per channel)"
    if layout.name == "centred spectrum":
        what = ("Fourier amplitude map" if basis_key == FOURIER else "Fourier phase map (1 keeps a frequency's "
                "phase, 0 sets it to zero, the amplitude is always kept)")
        return (f"{what}{where}: centre = zero frequency, edges = ±{height // 2} cycles per image; frequencies k and "
                "−k act as a pair.")
    if layout.name == "DCT corner":
        return (f"DCT map{where}: top-left = (0, 0), the mean; k_y down and k_x right count half cycles per image, "
                f"up to {height - 1}.")
    return (f"Wavelet map {basis_key}{where}: the packed pyramid, coarsest approximation top-left, finer details "
            f"towards the bottom right. {WAVELET_LEGEND}.")


def _subband_names(layout: object, height: int, width: int) -> np.ndarray | None:
    """(H, W) object array of each cell's subband label, for hover text; None without subbands."""
    if not layout.subbands:
        return None
    names = np.empty((height, width), dtype=object)
    for band in layout.subbands:
        names[band.rows[0]:band.rows[1], band.cols[0]:band.cols[1]] = band.label
    return names


def subband_outlines(layout: object, *, xref: str = "x", yref: str = "y",
                     labels: bool = True) -> tuple[list[dict], list[dict]]:
    """Plotly shapes outlining each wavelet subband (data coordinates = display indices) on one subplot, and
    annotations labelling them at their centres."""
    shapes, notes = [], []
    for band in layout.subbands:
        (r0, r1), (c0, c1) = band.rows, band.cols
        shapes.append({"type": "rect", "x0": c0 - 0.5, "x1": c1 - 0.5, "y0": r0 - 0.5, "y1": r1 - 0.5, "xref": xref,
                       "yref": yref, "line": {"color": OUTLINE, "width": 1.5}, "fillcolor": "rgba(0,0,0,0)",
                       "layer": "above"})
        if labels and (r1 - r0) >= 2:
            notes.append({"x": (c0 + c1 - 1) / 2, "y": (r0 + r1 - 1) / 2, "xref": xref, "yref": yref,
                          "text": short_label(band), "showarrow": False,
                          "font": {"color": OUTLINE, "size": 11 if r1 - r0 >= 4 else 9}})
    return shapes, notes


def add_subband_outlines(fig: go.Figure, layout: object, axes: Sequence[str] = ("",), *,
                         labels: bool = True) -> go.Figure:
    """Outline and label the subbands on the subplots with these axis suffixes ("" = x/y, "2" = x2/y2, …)."""
    shapes, notes = [], []
    for suffix in axes:
        more_shapes, more_notes = subband_outlines(layout, xref=f"x{suffix}", yref=f"y{suffix}", labels=labels)
        shapes += more_shapes
        notes += more_notes
    # one layout update: adding shapes one by one re-validates the whole figure each time
    fig.update_layout(shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *notes])
    return fig


def coefficient_figure(plane: np.ndarray, basis_key: str, title: str, *, subtitle: str = "", height: int = 460,
                       clickable: bool = False, zmax: float = 1.0) -> go.Figure:
    """One (H, W) plane of a map in display order as a heat map on its basis's axes, colour bar [0, zmax].

    clickable: an invisible marker on every coefficient, so st.plotly_chart(on_select=...) reports clicks
    (Plotly heat maps themselves are not selectable); each point's customdata is its display (row, col). Dragging
    zooms: Streamlit selects on click only while the drag mode is not box or lasso select, which stay a click away
    in the mode bar.
    """
    if plane.ndim != 2:
        raise ValueError(f"expected a (H, W) plane, got shape {plane.shape}")
    h, w = plane.shape
    layout = map_layout(basis_key, h, w)
    x, y = np.asarray(layout.col_values), np.asarray(layout.row_values)
    names = _subband_names(layout, h, w)
    hover = f"{layout.col_label.split(' (')[0]} %{{x}}, {layout.row_label.split(' (')[0]} %{{y}}<br>map %{{z:.3f}}"
    fig = go.Figure(go.Heatmap(z=plane, x=x, y=y, coloraxis="coloraxis", customdata=names,
                               hovertemplate=hover + ("<br>%{customdata}" if names is not None else "")
                               + "<extra></extra>"))
    if clickable:
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")  # (H, W) each
        fig.add_trace(go.Scatter(
            x=x[cols.ravel()], y=y[rows.ravel()], mode="markers", showlegend=False, hoverinfo="none",  # "skip" would make them unclickable
            customdata=np.stack([rows.ravel(), cols.ravel()], axis=1),
            marker={"symbol": "square", "size": max(4, 360 // max(h, w)), "color": "rgba(0,0,0,0)"},
            selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}},
        ))
    if layout.subbands:
        # wavelet cells are drawn at their display indices: the outlines' coordinates
        add_subband_outlines(fig, layout)
    fig.update_xaxes(title_text=layout.col_label, constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(title_text=layout.row_label, autorange="reversed", scaleanchor="x", constrain="domain",
                     showgrid=False, zeroline=False)
    fig.update_layout(coloraxis={"colorscale": figures.MAP_SCALE, "cmin": 0, "cmax": zmax,
                                 "colorbar": {"title": {"text": "map value"}}},
                      clickmode="event+select", dragmode="zoom")  # in Streamlit, dragmode "select" turns clicks off
    return figures._style(fig, f"{title}<br><sup>{subtitle}</sup>" if subtitle else title, height)


def basis_channels_figure(maps: Sequence[tuple[str, np.ndarray]], basis_key: str, title: str, *,
                          height_per_row: int = 300, layer: str = INPUT) -> go.Figure:
    """Rows of (C, H, W) maps in display order, one heat map per colour channel (a hidden layer's map: its
    channel mean), one shared colour bar [0, 1], on the basis's axes; fourier is ui.figures'
    map_channels_grid_figure itself."""
    if not maps:
        raise ValueError("expected at least one map, got none")
    c, h, w = maps[0][1].shape
    hidden = is_hidden(maps[0][1])
    if basis_key == FOURIER and not hidden:
        return figures.map_channels_grid_figure(maps, title, height_per_row=height_per_row)
    layout = map_layout(basis_key, h, w)
    shown = [(name, m.mean(axis=0, keepdims=True) if hidden else m) for name, m in maps]
    fig = figures.map_channels_grid_figure(shown, title, height_per_row=height_per_row,
                                           axis_y=np.asarray(layout.row_values), axis_x=np.asarray(layout.col_values))
    short_x, short_y = (layout.col_label, layout.row_label) if basis_key not in FREQUENCY_BASES else (None, None)
    n_cols = 1 if hidden else c
    if layout.subbands:
        add_subband_outlines(fig, layout, [str(a) if a > 1 else "" for a in range(1, len(maps) * n_cols + 1)],
                             labels=h >= 16)
    for r in range(len(maps)):
        if short_y:
            fig.update_yaxes(title_text=_short(short_y), row=r + 1, col=1)
    if short_x:
        for k in range(n_cols):
            fig.update_xaxes(title_text=_short(short_x), row=len(maps), col=k + 1)
    if hidden:
        fig.layout.annotations[0].text = f"mean of the {c} channels of {layer}"
    return fig


def _short(label: str) -> str:
    """An axis title without its parenthesis, for narrow panels ('vertical frequency k_y')."""
    return label.split(" (")[0]


def basis_rgb_figure(maps: Sequence[tuple[str, np.ndarray]], basis_key: str, title: str, *,
                     height: int = 380) -> go.Figure:
    """(3, H, W) maps side by side as RGB composites (white: kept in all channels) on the basis's axes, subbands
    outlined; fourier is ui.figures' maps_rgb_row_figure itself."""
    if basis_key == FOURIER:
        return figures.maps_rgb_row_figure(maps, title, height=height)
    _, h, w = maps[0][1].shape
    layout = map_layout(basis_key, h, w)
    fig = figures.maps_rgb_row_figure(maps, title, height=height, axis_y=np.asarray(layout.row_values),
                                      axis_x=np.asarray(layout.col_values))
    if layout.subbands:
        add_subband_outlines(fig, layout, [str(k + 1) if k else "" for k in range(len(maps))])
    for k in range(len(maps)):
        fig.update_xaxes(title_text=_short(layout.col_label), row=1, col=k + 1)
        fig.update_yaxes(title_text=_short(layout.row_label), row=1, col=k + 1)
    return fig


def outlined_picture(picture: np.ndarray, basis_key: str, height: int, width: int) -> np.ndarray:
    """A (H·f, W·f, 3) uint8 picture of an (H, W) map with its wavelet subbands outlined in white (1 px);
    other bases unchanged."""
    layout = map_layout(basis_key, height, width)
    if not layout.subbands:
        return picture
    out = np.array(picture, copy=True)
    f = picture.shape[0] // height
    for band in layout.subbands:
        (r0, r1), (c0, c1) = band.rows, band.cols
        top, bottom, left, right = r0 * f, min(r1 * f, out.shape[0] - 1), c0 * f, min(c1 * f, out.shape[1] - 1)
        out[top, left:right + 1] = 255
        out[bottom, left:right + 1] = 255
        out[top:bottom + 1, left] = 255
        out[top:bottom + 1, right] = 255
    return out


def map_picture(map_display: np.ndarray, basis_key: str, factor: int) -> tuple[np.ndarray, str]:
    """A (H·f, W·f, 3) uint8 picture of one (C, H, W) map in display order, and what it shows: an RGB composite
    (1 or 3 channels), or a hidden layer's channel mean on the maps' Viridis scale [0, 1]; wavelet subbands
    outlined."""
    c, h, w = map_display.shape
    if is_hidden(map_display):
        plane = np.asarray(map_display, dtype=np.float64).mean(axis=0)  # (H, W)
        picture = upscale(heat_picture(plane, colormap_lut(figures.MAP_SCALE), 0.0, 1.0), factor)
        what = f"mean of its {c} channels"
    else:
        picture, what = image_picture(map_display, factor), "RGB composite"
    return outlined_picture(picture, basis_key, h, w), what


def class_maps_figure(maps: np.ndarray, classes: Sequence[str], title: str, basis_key: str = FOURIER, *,
                      layer: str = INPUT, columns: int = 5, height_per_row: int = 230) -> go.Figure:
    """Class-level maps (K, C, H, W) in display order in a grid, one panel per class, in their basis's layout: RGB
    composites (a hidden layer's maps: their channel mean as a Viridis heat map), wavelet subbands outlined, a note
    under the grid saying what rows and columns mean. Fourier maps at the input are ui.figures'
    class_maps_grid_figure itself."""
    if maps.ndim != 4 or maps.shape[0] != len(classes):
        raise ValueError(f"expected ({len(classes)}, C, H, W) class maps, got shape {maps.shape}")
    hidden = is_hidden(maps[0])
    if basis_key == FOURIER and not hidden:
        return figures.class_maps_grid_figure(maps, classes, title, columns=columns, height_per_row=height_per_row)
    k, c, h, w = maps.shape
    layout = map_layout(basis_key, h, w)
    x, y = np.asarray(layout.col_values), np.asarray(layout.row_values)
    rows = (k + columns - 1) // columns
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(classes), horizontal_spacing=0.02,
                        vertical_spacing=0.12)
    for i in range(k):
        where = {"row": i // columns + 1, "col": i % columns + 1}
        if hidden:
            fig.add_trace(go.Heatmap(z=maps[i].mean(axis=0), x=x, y=y, coloraxis="coloraxis",
                                     hovertemplate="row %{y}, column %{x}<br>channel mean %{z:.3f}<extra>"
                                                   + classes[i] + "</extra>"), **where)
        else:
            fig.add_trace(go.Image(z=to_hwc_uint8(maps[i]), x0=float(x[0]), dx=1, y0=float(y[0]), dy=1,
                                   hovertemplate="column %{x}, row %{y}<br>map ×255 %{z}<extra>" + classes[i]
                                                 + "</extra>"), **where)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    if layout.subbands:
        add_subband_outlines(fig, layout, [str(a) if a > 1 else "" for a in range(1, k + 1)], labels=False)
    colour = (f"colour = the mean over the {c} feature channels (0 … 1)" if hidden
              else "colour = which RGB channels keep the coefficient (white: all three)")
    fig.add_annotation(text=f"{layout_note(basis_key, h, w, layer)} {colour}", xref="paper", yref="paper", x=0, y=0,
                       yshift=-30, showarrow=False, font={"size": 12}, align="left")
    fig = figures._style(fig, title, 120 + height_per_row * rows)
    fig.update_layout(margin={"b": 60})
    if hidden:
        fig.update_layout(coloraxis={"colorscale": figures.MAP_SCALE, "cmin": 0, "cmax": 1,
                                     "colorbar": {"title": {"text": "map value"}}})
    return fig


__all__ = ["WAVELET_LEGEND", "add_subband_outlines", "basis_channels_figure", "basis_rgb_figure",
           "class_maps_figure", "coefficient_figure", "is_hidden", "layout_note", "map_layout", "map_picture",
           "map_plane", "outlined_picture", "short_label"]
