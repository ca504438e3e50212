"""Bytes for the app's download buttons: maps as .npy, image panels as PNG, tables as CSV, figures as HTML.

Plotly's own PNG export needs kaleido, which the project does not install. So: image panels
(images, filtered images, maps) are written as PNG with Pillow here; every chart can be saved as
PNG from its toolbar (camera button, rendered by the browser); and a chart can be downloaded as
a self-contained interactive HTML file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from ui.arrays import to_hwc_uint8


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as the bytes of a .npy file (no pickle: np.load(..., allow_pickle=False) reads it)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Several arrays as one compressed .npz."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def png_bytes(image: np.ndarray, *, scale: int = 8) -> bytes:
    """A (3, H, W) image or map in [0, 1] as PNG, enlarged `scale`× with nearest-neighbour (crisp pixels).

    Images larger than 256 pixels are kept at their own size.
    """
    pixels = to_hwc_uint8(image)  # (H, W, 3)
    picture = Image.fromarray(pixels, mode="RGB")
    factor = 1 if max(pixels.shape[:2]) > 256 else max(1, int(scale))
    if factor > 1:
        picture = picture.resize((pixels.shape[1] * factor, pixels.shape[0] * factor), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def csv_bytes(rows: Sequence[dict], columns: Sequence[str] | None = None) -> bytes:
    """Rows of dicts as UTF-8 CSV; columns default to every key that occurs, in order of appearance."""
    if not rows:
        return b""
    columns = list(columns or dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buffer.getvalue().encode("utf-8")


def figure_html(figure: go.Figure) -> bytes:
    """A figure as a standalone interactive HTML page (plotly.js embedded, so it works offline)."""
    return figure.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
