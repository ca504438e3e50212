"""Plotly figure builders: pure functions of numpy arrays, no Streamlit (tested in tests/test_ui_figures.py).

Conventions for every figure: a title, axis labels with units, a colour bar on heat maps, and
frequency axes in cycles/image with the zero frequency in the centre (-H/2 .. H/2 - 1 for even H),
shown with the vertical frequency growing downwards like the stored (fftshift-ed) array.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# pandas complete before any Plotly code runs: Plotly reads sys.modules["pandas"] without importing it, and another
# session's thread may be half-way through importing pandas (Home draws without Plotly, so app.py no longer imports it)
import pandas  # noqa: F401
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.arrays import frequency_axis, radial_profile, to_hwc_uint8, top_k

FONT = {"size": 14}
MAP_SCALE = "Viridis"  # map values in [0, 1]
# Magma without its first colour "#000004": Streamlit's chart theme uses #000001..#000010 as placeholders
# for its own palette and would paint every zero of a spectrum pink.
SPECTRUM_SCALE = ["#000000", *plotly.colors.sequential.Magma[1:]]
ACCURACY_SCALE = "Blues"
FX_LABEL = "horizontal frequency (cycles/image)"
FY_LABEL = "vertical frequency (cycles/image)"
CHANNELS = ("red", "green", "blue")


def _style(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        font=FONT,
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return fig


def _axes(n: int, axis: np.ndarray | None) -> np.ndarray:
    axis = frequency_axis(n) if axis is None else np.asarray(axis)
    if len(axis) != n:
        raise ValueError(f"expected a frequency axis of length {n}, got {len(axis)}")
    return axis


def _check_chw(array: np.ndarray, name: str) -> None:
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"expected {name} of shape (3, H, W), got {array.shape}")


def image_figure(image: np.ndarray, title: str, *, height: int = 320, subtitle: str = "") -> go.Figure:
    """A (3, H, W) image in [0, 1], pixel axes hidden; zoomable for 224-pixel images."""
    _check_chw(image, "image")
    fig = go.Figure(go.Image(z=to_hwc_uint8(image), hovertemplate="x %{x}, y %{y}<br>RGB %{z}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    if subtitle:
        title = f"{title}<br><sup>{subtitle}</sup>"
    return _style(fig, title, height)


def map_rgb_figure(
    map_display: np.ndarray, title: str, *, height: int = 360, axis_y: np.ndarray | None = None,
    axis_x: np.ndarray | None = None, short_labels: bool = False,
) -> go.Figure:
    """A centred (3, H, W) map in [0, 1] as an RGB composite on frequency axes (white: all channels kept).

    short_labels: 'f_x (cycles/image)' axis titles, for narrow columns.
    """
    _check_chw(map_display, "map")
    _, h, w = map_display.shape
    fy, fx = _axes(h, axis_y), _axes(w, axis_x)
    dy = float(fy[1] - fy[0]) if h > 1 else 1.0
    dx = float(fx[1] - fx[0]) if w > 1 else 1.0
    fig = go.Figure(
        go.Image(
            z=to_hwc_uint8(map_display), x0=float(fx[0]), dx=dx, y0=float(fy[0]), dy=dy,
            hovertemplate="f_x %{x}, f_y %{y}<br>map ×255 (R, G, B) %{z}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="f_x (cycles/image)" if short_labels else FX_LABEL, constrain="domain")
    fig.update_yaxes(title_text="f_y (cycles/image)" if short_labels else FY_LABEL, scaleanchor="x", constrain="domain")
    return _style(fig, title, height)


def map_channel_figure(
    map_display: np.ndarray, title: str, *, height: int = 330, zmax: float = 1.0,
    axis_y: np.ndarray | None = None, axis_x: np.ndarray | None = None,
) -> go.Figure:
    """One heat map per colour channel of a centred (3, H, W) map, shared colour bar, frequency axes."""
    return map_channels_grid_figure([("", map_display)], title, height_per_row=height - 60, zmax=zmax,
                                    axis_y=axis_y, axis_x=axis_x)


def map_channels_grid_figure(
    maps: Sequence[tuple[str, np.ndarray]], title: str, *, height_per_row: int = 300, zmax: float = 1.0,
    axis_y: np.ndarray | None = None, axis_x: np.ndarray | None = None,
) -> go.Figure:
    """Rows of centred (3, H, W) maps, one heat map per colour channel, one shared colour bar.

    maps: (row name, map) pairs; a non-empty name labels the row on the right. Frequency axes in
    cycles/image, zero frequency centred.
    """
    if not maps:
        raise ValueError("expected at least one map, got none")
    for name, m in maps:
        _check_chw(m, f"map {name!r}" if name else "map")
    c, h, w = maps[0][1].shape
    fy, fx = _axes(h, axis_y), _axes(w, axis_x)
    names = CHANNELS[:c] if c == 3 else ("grey",)
    n_rows = len(maps)
    fig = make_subplots(rows=n_rows, cols=c, horizontal_spacing=0.06, vertical_spacing=0.12 if n_rows > 1 else 0.0,
                        subplot_titles=[f"{n} channel" for n in names] + [""] * (c * (n_rows - 1)),
                        row_titles=[name for name, _ in maps] if any(name for name, _ in maps) else None)
    for r, (name, m) in enumerate(maps):
        for k in range(c):
            fig.add_trace(
                go.Heatmap(
                    z=m[k], x=fx, y=fy, coloraxis="coloraxis",
                    hovertemplate="f_x %{x}, f_y %{y}<br>map %{z:.3f}<extra>" + f"{name} {names[k]}".strip() + "</extra>",
                ),
                row=r + 1, col=k + 1,
            )
            axis = r * c + k + 1
            fig.update_yaxes(scaleanchor=f"x{axis if axis > 1 else ''}", constrain="domain", row=r + 1, col=k + 1)
            fig.update_xaxes(constrain="domain", showticklabels=True, row=r + 1, col=k + 1)
        fig.update_yaxes(title_text="f_y (cycles/image)", row=r + 1, col=1)
    for k in range(c):
        fig.update_xaxes(title_text="f_x (cycles/image)", row=n_rows, col=k + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=True)
    fig.update_layout(coloraxis={"colorscale": MAP_SCALE, "cmin": 0, "cmax": zmax, "colorbar": {"title": {"text": "map value"}}})
    return _style(fig, title, 60 + height_per_row * n_rows)


def image_row_figure(panels: Sequence[tuple[str, np.ndarray]], title: str, *, height: int = 340) -> go.Figure:
    """(3, H, W) images in [0, 1] side by side, one panel title each (may hold '<br><sup>…</sup>'); zoomable."""
    if not panels:
        raise ValueError("expected at least one image panel, got none")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for name, _ in panels], horizontal_spacing=0.03)
    for k, (name, image) in enumerate(panels):
        _check_chw(image, f"image {name!r}")
        fig.add_trace(go.Image(z=to_hwc_uint8(image), hovertemplate="x %{x}, y %{y}<br>RGB %{z}<extra></extra>"),
                      row=1, col=k + 1)
        fig.update_yaxes(scaleanchor=f"x{k + 1 if k else ''}", constrain="domain", row=1, col=k + 1)
        fig.update_xaxes(constrain="domain", row=1, col=k + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig = _style(fig, title, height)
    fig.update_layout(margin={"t": 90})
    return fig


def maps_rgb_row_figure(
    maps: Sequence[tuple[str, np.ndarray]], title: str, *, height: int = 380, axis_y: np.ndarray | None = None,
    axis_x: np.ndarray | None = None,
) -> go.Figure:
    """Centred (3, H, W) maps side by side as RGB composites on frequency axes (white: all channels kept)."""
    if not maps:
        raise ValueError("expected at least one map, got none")
    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=[name for name, _ in maps], horizontal_spacing=0.1)
    for k, (name, m) in enumerate(maps):
        _check_chw(m, f"map {name!r}")
        _, h, w = m.shape
        fy, fx = _axes(h, axis_y), _axes(w, axis_x)
        fig.add_trace(
            go.Image(z=to_hwc_uint8(m), x0=float(fx[0]), dx=float(fx[1] - fx[0]) if w > 1 else 1.0, y0=float(fy[0]),
                     dy=float(fy[1] - fy[0]) if h > 1 else 1.0,
                     hovertemplate="f_x %{x}, f_y %{y}<br>map ×255 (R, G, B) %{z}<extra>" + name + "</extra>"),
            row=1, col=k + 1,
        )
        fig.update_xaxes(title_text=FX_LABEL, constrain="domain", row=1, col=k + 1)
        fig.update_yaxes(title_text=FY_LABEL, scaleanchor=f"x{k + 1 if k else ''}", constrain="domain", row=1, col=k + 1)
    return _style(fig, title, height)


def top_k_row_figure(
    panels: Sequence[tuple[str, np.ndarray]], classes: Sequence[str], title: str, *, k: int = 3,
    true_label: int | None = None, height: int = 230,
) -> go.Figure:
    """The model's k most probable classes for several images, one bar panel each (probability in %)."""
    if not panels:
        raise ValueError("expected at least one probability vector, got none")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for name, _ in panels], horizontal_spacing=0.12)
    for i, (_, probs) in enumerate(panels):
        best = top_k(np.asarray(probs), k)
        names = [f"{classes[c]}{' ✓' if c == true_label else ''}" for c, _ in best][::-1]
        values = [100 * p for _, p in best][::-1]
        colours = ["#2e7d32" if c == true_label else "#1f77b4" for c, _ in best][::-1]
        fig.add_trace(go.Bar(x=values, y=names, orientation="h", marker_color=colours, showlegend=False,
                             text=[f"{v:.1f} %" for v in values], textposition="auto",
                             hovertemplate="%{y}: %{x:.2f} %<extra></extra>"), row=1, col=i + 1)
        fig.update_xaxes(range=[0, 100], title_text="probability (%)", row=1, col=i + 1)
    fig.update_annotations(font_size=13)
    return _style(fig, title, height)


def spectra_figure(
    spectra: Sequence[tuple[str, np.ndarray]], title: str, *, height: int = 330
) -> go.Figure:
    """Centred log-magnitude spectra (H, W) side by side on one colour scale, frequency axes."""
    if not spectra:
        raise ValueError("expected at least one spectrum, got none")
    n = len(spectra)
    zmax = max(float(np.max(s)) for _, s in spectra)
    fig = make_subplots(rows=1, cols=n, subplot_titles=[name for name, _ in spectra], horizontal_spacing=0.05)
    for k, (name, spectrum) in enumerate(spectra):
        if spectrum.ndim != 2:
            raise ValueError(f"expected a (H, W) spectrum for {name!r}, got shape {spectrum.shape}")
        h, w = spectrum.shape
        fig.add_trace(
            go.Heatmap(
                z=spectrum, x=frequency_axis(w), y=frequency_axis(h), coloraxis="coloraxis",
                hovertemplate="f_x %{x}, f_y %{y}<br>log(1+|F|) %{z:.2f}<extra>" + name + "</extra>",
            ),
            row=1, col=k + 1,
        )
        fig.update_xaxes(title_text="f_x (cycles/image)", constrain="domain", row=1, col=k + 1)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{k + 1 if k else ''}", constrain="domain", row=1, col=k + 1)
    fig.update_yaxes(title_text="f_y (cycles/image)", row=1, col=1)
    fig.update_layout(
        coloraxis={"colorscale": SPECTRUM_SCALE, "cmin": 0, "cmax": zmax, "colorbar": {"title": {"text": "log(1+|F|)"}}}
    )
    return _style(fig, title, height)


def radial_profile_figure(maps: Sequence[tuple[str, np.ndarray]], title: str, *, height: int = 330) -> go.Figure:
    """Mean map value by frequency radius for each named centred (C, H, W) map."""
    fig = go.Figure()
    for name, map_display in maps:
        radii, values = radial_profile(map_display)
        fig.add_trace(go.Scatter(x=radii, y=values, mode="lines+markers", name=name, marker={"size": 5}))
    fig.update_xaxes(title_text="frequency radius √(f_x² + f_y²) (cycles/image)", rangemode="tozero")
    fig.update_yaxes(title_text="mean map value in the ring", range=[0, 1.02])
    fig.update_layout(legend={"orientation": "h", "y": -0.3})
    return _style(fig, title, height)


def top_k_figure(
    probs: np.ndarray, classes: Sequence[str], title: str, *, k: int = 3, true_label: int | None = None,
    height: int = 200,
) -> go.Figure:
    """The model's k most probable classes as horizontal bars (probability in %); the true class marked ✓."""
    best = top_k(np.asarray(probs), k)
    names = [f"{classes[c]}{' ✓' if c == true_label else ''}" for c, _ in best]
    values = [100 * p for _, p in best]
    colours = ["#2e7d32" if c == true_label else "#1f77b4" for c, _ in best]
    fig = go.Figure(
        go.Bar(
            x=values[::-1], y=names[::-1], orientation="h", marker_color=colours[::-1],
            text=[f"{v:.1f} %" for v in values[::-1]], textposition="auto",
            hovertemplate="%{y}: %{x:.2f} %<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="probability (%)", range=[0, 100])
    fig.update_layout(margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return _style(fig, title, height)


def cosine_histogram_figure(
    paired: np.ndarray, repaired: np.ndarray | None, title: str, *, height: int = 380, bins: int = 30
) -> go.Figure:
    """Per-pair cosine similarities, with the re-paired baseline (another image's map) overlaid."""
    fig = go.Figure()
    edges = {"start": 0.0, "end": 1.0, "size": 1.0 / bins}
    fig.add_trace(go.Histogram(x=paired, xbins=edges, histnorm="probability density", name=f"same image (N={len(paired)})",
                               marker_color="#1f77b4", opacity=0.75))
    if repaired is not None and len(repaired):
        fig.add_trace(go.Histogram(x=repaired, xbins=edges, histnorm="probability density",
                                   name=f"re-paired baseline ({len(repaired)} pairs)", marker_color="#ff7f0e", opacity=0.6))
    means = [(values, colour) for values, colour in ((paired, "#1f77b4"), (repaired, "#ff7f0e"))
             if values is not None and len(values)]
    higher = max(float(np.mean(v)) for v, _ in means)
    for values, colour in means:
        mean = float(np.mean(values))
        fig.add_vline(x=mean, line_dash="dash", line_color=colour, annotation_text=f"mean {mean:.2f}",
                      annotation_font_color=colour,  # labels on the outer side of each line, so they never overlap
                      annotation_position="top right" if mean == higher else "top left")
    fig.update_layout(barmode="overlay", legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(title_text="cosine similarity of essential and adversarial map", range=[0, 1])
    fig.update_yaxes(title_text="density")
    return _style(fig, title, height)


def null_distribution_figure(null_ids: np.ndarray, observed: float, p_value: float | None, title: str,
                             *, height: int = 380) -> go.Figure:
    """IdCor permutation test: IDs of [X | shuffled Y] as a histogram, the observed joint ID marked."""
    fig = go.Figure(go.Histogram(x=null_ids, nbinsx=25, name=f"shuffled pairings ({len(null_ids)})",
                                 marker_color="#999999"))
    label = f"observed joint ID {observed:.2f}" + (f" (p = {p_value:.3f})" if p_value is not None else "")
    fig.add_vline(x=observed, line_color="#d62728", line_width=3, annotation_text=label, annotation_position="top left")
    fig.update_xaxes(title_text="intrinsic dimension of the concatenated maps (TwoNN)")
    fig.update_yaxes(title_text="count of permutations")
    fig.update_layout(showlegend=False)
    return _style(fig, title, height)


def per_class_figure(classes: Sequence[str], means: np.ndarray, stds: np.ndarray, counts: np.ndarray, title: str,
                     *, height: int = 380) -> go.Figure:
    """Mean ± std of per-pair cosine by true class, N pairs on each bar."""
    fig = go.Figure(
        go.Bar(
            x=[f"{name}<br>N={int(c)}" for name, c in zip(classes, counts, strict=True)], y=means,
            error_y={"type": "data", "array": stds, "visible": True}, marker_color="#1f77b4",
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="true class (N pairs)")
    fig.update_yaxes(title_text="cosine similarity (mean ± std)", range=[0, 1.1])
    return _style(fig, title, height)


def map_pair_grid_figure(rows: Sequence[tuple[str, np.ndarray]], columns: Sequence[str], title: str,
                         *, zmax: float | None = None, height_per_row: int | None = None) -> go.Figure:
    """Rows of channel-averaged centred maps: rows[r] = (name, (K, H, W)), one square panel per entry of `columns`.

    Every panel spans f_x, f_y from −H/2 to H/2 − 1 cycles/image with the zero frequency in its centre.
    """
    if not rows:
        raise ValueError("expected at least one row of maps, got none")
    n_cols = len(columns)
    fig = make_subplots(rows=len(rows), cols=n_cols, row_titles=[name for name, _ in rows],
                        subplot_titles=list(columns) + [""] * (n_cols * (len(rows) - 1)),
                        horizontal_spacing=0.01, vertical_spacing=0.08)
    top = zmax if zmax is not None else max(float(np.max(m)) for _, m in rows) or 1.0
    for r, (name, maps) in enumerate(rows):
        if maps.ndim != 3 or maps.shape[0] != n_cols:
            raise ValueError(f"expected ({n_cols}, H, W) maps in row {name!r}, got shape {maps.shape}")
        h, w = maps.shape[1:]
        for k in range(n_cols):
            fig.add_trace(
                go.Heatmap(z=maps[k], x=frequency_axis(w), y=frequency_axis(h), coloraxis="coloraxis",
                           hovertemplate="f_x %{x}, f_y %{y}<br>%{z:.3f}<extra>" + f"{name}: {columns[k]}" + "</extra>"),
                row=r + 1, col=k + 1,
            )
            axis = r * n_cols + k + 1
            fig.update_yaxes(scaleanchor=f"x{axis if axis > 1 else ''}", constrain="domain", constraintoward="top",
                             row=r + 1, col=k + 1)
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, ticks="", showgrid=False, autorange="reversed")
    fig.update_annotations(font_size=12)
    fig.update_layout(coloraxis={"colorscale": MAP_SCALE, "cmin": 0, "cmax": top,
                                 "colorbar": {"title": {"text": "mean map value"}}})
    if height_per_row is None:  # about square panels in a ~1000-pixel-wide chart
        height_per_row = max(90, 1000 // n_cols) + 30
    fig = _style(fig, title, 110 + height_per_row * len(rows))
    fig.update_layout(margin={"t": 110})
    return fig


def class_maps_grid_figure(maps: np.ndarray, classes: Sequence[str], title: str, *, columns: int = 5,
                           height_per_row: int = 230) -> go.Figure:
    """Class-level maps (K, 3, H, W) as RGB composites in a grid, one panel per class."""
    if maps.ndim != 4 or maps.shape[0] != len(classes):
        raise ValueError(f"expected ({len(classes)}, 3, H, W) class maps, got shape {maps.shape}")
    k, _, h, w = maps.shape
    rows = (k + columns - 1) // columns
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(classes), horizontal_spacing=0.02,
                        vertical_spacing=0.12)
    for i in range(k):
        fig.add_trace(
            go.Image(z=to_hwc_uint8(maps[i]), x0=-(w // 2), dx=1, y0=-(h // 2), dy=1,
                     hovertemplate="f_x %{x}, f_y %{y}<br>map ×255 %{z}<extra>" + classes[i] + "</extra>"),
            row=i // columns + 1, col=i % columns + 1,
        )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.add_annotation(text=f"frequency axes −{h // 2} … {h - h // 2 - 1} cycles/image, zero frequency centred; "
                            "colour = which RGB channels keep the frequency (white: all three)",
                       xref="paper", yref="paper", x=0, y=0, yshift=-30, showarrow=False, font={"size": 12})
    fig = _style(fig, title, 120 + height_per_row * rows)
    fig.update_layout(margin={"b": 45})
    return fig


def accuracy_heatmap_figure(accuracy: np.ndarray, row_labels: Sequence[str], column_labels: Sequence[str], title: str,
                            *, height: int = 380, x_title: str = "class-level maps trained against",
                            y_title: str = "test images attacked by") -> go.Figure:
    """An annotated (R, C) accuracy matrix in [0, 1] (NaN cells left blank), like Table IV."""
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if accuracy.shape != (len(row_labels), len(column_labels)):
        raise ValueError(f"expected a ({len(row_labels)}, {len(column_labels)}) matrix, got shape {accuracy.shape}")
    text = [["" if np.isnan(v) else f"{v:.2f}" for v in row] for row in accuracy]
    fig = go.Figure(
        go.Heatmap(z=accuracy, x=list(column_labels), y=list(row_labels), text=text, texttemplate="%{text}",
                   textfont={"size": 16}, colorscale=ACCURACY_SCALE, zmin=0, zmax=1,
                   colorbar={"title": {"text": "accuracy"}},
                   hovertemplate="test: %{y}<br>maps: %{x}<br>accuracy %{z:.3f}<extra></extra>")
    )
    fig.update_xaxes(title_text=x_title, side="bottom")
    fig.update_yaxes(title_text=y_title, autorange="reversed")
    return _style(fig, title, height)


def eps_sweep_figure(eps: Sequence[float], series: dict[str, Sequence[float | None]],
                     paper: dict[str, Sequence[float | None]] | None, paper_eps: Sequence[float], title: str,
                     *, height: int = 400) -> go.Figure:
    """Metrics against the PGD budget ε (in 1/255): this experiment solid, the paper's numbers dashed."""
    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"]
    for i, (name, values) in enumerate(series.items()):
        colour = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=list(eps), y=[np.nan if v is None else v for v in values], mode="lines+markers",
                                 name=f"{name} (this experiment)", line={"color": colour}, marker={"size": 10}))
        if paper and name in paper:
            fig.add_trace(go.Scatter(x=list(paper_eps), y=[np.nan if v is None else v for v in paper[name]],
                                     mode="lines+markers", name=f"{name} (paper)",
                                     line={"color": colour, "dash": "dash"}, marker={"symbol": "x", "size": 10}))
    fig.update_xaxes(title_text="PGD budget ε (in 1/255 of the pixel range)", type="log",
                     tickvals=sorted(set(eps) | set(paper_eps)))
    fig.update_yaxes(title_text="value (success rate as a share, IdCor, cosine)", range=[0, 1.05])
    fig.update_layout(legend={"orientation": "h", "y": -0.3})
    return _style(fig, title, height)


def figure_config(filename: str) -> dict:
    """st.plotly_chart config: the toolbar's camera button saves a 3× PNG named `filename` (no kaleido needed)."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 3}}


def power_curve_figure(sizes: Sequence[int], p_values: np.ndarray, observed_n: int, title: str, *,
                       alpha: float = 0.05, pairs_needed: int | None = None, height: int = 400) -> go.Figure:
    """IdCor's permutation p against the number of pairs: every random subset (dots), their median (line), the
    alpha line, the experiment's N and, when estimated, the pairs a median p < alpha needs. p_values (S, R)."""
    p_values = np.asarray(p_values, dtype=np.float64)
    fig = go.Figure()
    for size, row in zip(sizes, p_values, strict=True):
        fig.add_trace(go.Scatter(x=[size] * len(row), y=row, mode="markers", marker={"color": "#9ecae1", "size": 8},
                                 name="random subsets", showlegend=bool(size == sizes[0]),
                                 hovertemplate="%{x} pairs: p = %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=list(sizes), y=np.median(p_values, axis=1) if p_values.size else [], mode="lines+markers",
                             name="median p", line={"color": "#1f77b4"}, marker={"size": 10}))
    fig.add_hline(y=alpha, line_dash="dash", line_color="#d62728", annotation_text=f"p = {alpha:g}",
                  annotation_position="bottom right")
    fig.add_vline(x=observed_n, line_color="#2ca02c", annotation_text=f"this experiment, N = {observed_n}",
                  annotation_position="top left")
    if pairs_needed is not None and pairs_needed != observed_n:
        fig.add_vline(x=pairs_needed, line_dash="dot", line_color="#ff7f0e", annotation_text=f"needed ≈ {pairs_needed}",
                      annotation_position="top right")
    fig.update_xaxes(title_text="pairs of maps (random subsets of the experiment's pairs)",
                     range=[0, max([observed_n, *sizes, pairs_needed or 0]) * 1.08])
    fig.update_yaxes(title_text="IdCor permutation p-value", range=[0, 1.05])
    fig.update_layout(legend={"orientation": "h", "y": -0.3})
    return _style(fig, title, height)


def noise_ceiling_figure(metrics: Sequence[str], ceiling: Sequence[float | None],
                         attacks: dict[str, Sequence[float | None]], title: str, *, height: int = 380) -> go.Figure:
    """Grouped bars: each metric for two trainings of the essential maps (the ceiling) and for every attack."""
    fig = go.Figure(go.Bar(x=list(metrics), y=[np.nan if v is None else v for v in ceiling],
                           name="noise ceiling (essential vs essential, trained twice)", marker_color="#7f7f7f"))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"]
    for i, (name, values) in enumerate(attacks.items()):
        fig.add_trace(go.Bar(x=list(metrics), y=[np.nan if v is None else v for v in values],
                             name=f"essential vs adversarial, {name}", marker_color=palette[i % len(palette)]))
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.3})
    fig.update_yaxes(title_text="similarity")
    return _style(fig, title, height)


def robustness_curve_figure(eps_255: Sequence[float], accuracy: dict[str, Sequence[float]], title: str, *,
                            height: int = 380) -> go.Figure:
    """Accuracy against the L∞ budget ε (1/255 units), one line per row: the bare model, the defence under the
    non-adaptive attack, under each adaptive attack and in the worst case."""
    fig = go.Figure()
    for name, values in accuracy.items():
        if len(values) != len(eps_255):
            raise ValueError(f"expected {len(eps_255)} accuracies for {name!r}, got {len(values)}")
        dash = "dot" if name == "worst_case" else "solid"
        fig.add_trace(go.Scatter(x=list(eps_255), y=list(values), mode="lines+markers", name=name.replace("_", " "),
                                 line={"dash": dash},
                                 hovertemplate=f"{name}<br>ε %{{x}}/255<br>accuracy %{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(title_text="ε (1/255)")
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02])
    return _style(fig, title, height)
