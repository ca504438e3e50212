"""Pictures for the app's fast views: colour maps, crisp upscaling and colour bars as uint8 arrays.

Numpy functions (plus Plotly's colour-scale tables, no Plotly figures and no matplotlib; Pillow only to
write PNG), tested in tests/test_ui_pictures.py. The pages show these pictures with st.image (PNG),
which the browser draws in milliseconds; a Plotly chart of the same panels costs it hundreds. The colour
scales are the ones the interactive Plotly figures use (ui.figures: Viridis for maps, Magma for spectra),
so both modes read the same way.

Shapes: images and maps arrive as (C, H, W) floats (C = 3, or 1 for grey); pictures leave as
(H, W, 3) uint8 (or (H, W, 4) RGBA with transparent margins), ready for PNG.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ui.arrays import to_hwc_uint8

LUT_SIZE = 256
PANEL_PX = 192  # display size of a small panel: 32×32 images enlarged 6×
PANEL_MARGIN = 12  # transparent pixels either side of a panel in a row of pictures (24 px between panels)
AXIS_RGB = (128, 132, 149)  # tick marks and labels: Streamlit's grey for secondary text, legible on light and dark
AXIS_FONT_PX = 11
AXIS_TICK = 3  # tick length in pixels
AXIS_BOTTOM = 16  # gutter for the horizontal axis' labels
NAN_RGB = (128, 128, 128)  # "no value" (NaN) in a heat map: mid-grey, outside every scale used here

Panel = tuple[np.ndarray, str]  # an (H, W, 3) uint8 picture (or (H, W, 4) RGBA: frequency axes) and its caption
Shown = tuple[bytes, str, int]  # a panel as shown: PNG bytes (with transparent margins), caption, width in px


def _rgb(colour: str) -> tuple[float, float, float]:
    """'#rrggbb' or 'rgb(r, g, b)' -> (r, g, b) in 0..255."""
    colour = colour.strip()
    if colour.startswith("#") and len(colour) == 7:
        return tuple(float(int(colour[i:i + 2], 16)) for i in (1, 3, 5))  # type: ignore[return-value]
    match = re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*[\d.]+\s*)?\)", colour)
    if match is None:
        raise ValueError(f"expected a colour as '#rrggbb' or 'rgb(r, g, b)', got {colour!r}")
    return tuple(float(v) for v in match.groups())  # type: ignore[return-value]


def _stops(scale: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions (S,) in [0, 1] and colours (S, 3) in 0..255 of a Plotly scale name or colour list."""
    import plotly.colors

    if isinstance(scale, str):
        pairs = plotly.colors.get_colorscale(scale)  # [[position, colour], ...]
    else:
        colours = list(scale)
        if len(colours) < 2:
            raise ValueError(f"expected at least two colours in a scale, got {len(colours)}")
        pairs = [[k / (len(colours) - 1), c] for k, c in enumerate(colours)]
    positions = np.array([float(p) for p, _ in pairs])
    rgb = np.array([_rgb(c) for _, c in pairs])
    return positions, rgb


@lru_cache(maxsize=16)
def _lut(scale: str | tuple[str, ...]) -> np.ndarray:
    positions, rgb = _stops(scale)
    x = np.linspace(0.0, 1.0, LUT_SIZE)  # (256,)
    table = np.stack([np.interp(x, positions, rgb[:, k]) for k in range(3)], axis=1)  # (256, 3)
    table = np.rint(table).astype(np.uint8)
    table.flags.writeable = False  # shared by every caller
    return table


def colormap_lut(scale: str | Sequence[str] = "Magma") -> np.ndarray:
    """A (256, 3) uint8 RGB lookup table of a Plotly colour scale (a name such as "Magma", or colours).

    Entry 0 is the scale's first colour, entry 255 its last; in between the colours are interpolated
    linearly in RGB between the scale's stops, as Plotly draws a heat map. Read-only (cached).
    """
    return _lut(scale if isinstance(scale, str) else tuple(scale))


def value_range(values: np.ndarray | Sequence[np.ndarray]) -> tuple[float, float]:
    """(min, max) over the finite entries of one array or several; (0, 0) when none is finite."""
    arrays = [values] if isinstance(values, np.ndarray) else list(values)
    finite = [a[np.isfinite(a)] for a in (np.asarray(a, dtype=np.float64) for a in arrays)]
    finite = [a for a in finite if a.size]
    if not finite:
        return 0.0, 0.0
    return float(min(a.min() for a in finite)), float(max(a.max() for a in finite))


def heat_picture(values: np.ndarray, lut: np.ndarray, vmin: float | None = None, vmax: float | None = None,
                 *, nan_rgb: tuple[int, int, int] = NAN_RGB) -> np.ndarray:
    """A (H, W) array through a (256, 3) colour table -> (H, W, 3) uint8.

    vmin -> the table's first colour, vmax -> its last; values outside are clipped. Without vmin
    or vmax the array's own finite min / max are used. A constant array (vmax <= vmin) is drawn in
    the first colour; NaN and ±inf entries in `nan_rgb`.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"expected a (H, W) array, got shape {values.shape}")
    lut = np.asarray(lut, dtype=np.uint8)
    if lut.ndim != 2 or lut.shape[1] != 3:
        raise ValueError(f"expected a (N, 3) colour table, got shape {lut.shape}")
    low, high = value_range(values)
    low = low if vmin is None else float(vmin)
    high = high if vmax is None else float(vmax)
    finite = np.isfinite(values)  # (H, W)
    if high > low:
        scaled = (np.where(finite, values, low) - low) / (high - low)  # (H, W) in [0, 1] after clipping
        index = np.rint(np.clip(scaled, 0.0, 1.0) * (len(lut) - 1)).astype(np.intp)
    else:
        index = np.zeros(values.shape, np.intp)
    picture = lut[index]  # (H, W, 3)
    picture[~finite] = nan_rgb
    return picture


def upscale(picture: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (H, W) or (H, W, C) by an integer factor -> (H·f, W·f[, C]).

    Every pixel becomes an f×f block, so pixels stay crisp (no interpolation).
    """
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"expected an integer factor >= 1, got {factor}")
    if picture.ndim not in (2, 3):
        raise ValueError(f"expected a (H, W) or (H, W, C) picture, got shape {picture.shape}")
    if factor == 1:
        return picture
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def display_factor(size: int, target: int = PANEL_PX) -> int:
    """The integer enlargement that brings a `size`-pixel side closest to `target` from below (at least 1).

    32 -> 6 (192 px), 64 -> 3, 224 -> 1 (native: large pictures are never shrunk here).
    """
    if size < 1:
        raise ValueError(f"expected a size >= 1, got {size}")
    return max(1, int(target) // int(size))


def image_picture(image: np.ndarray, factor: int = 1) -> np.ndarray:
    """A (3, H, W) image (or map) in [0, 1] -> (H·f, W·f, 3) uint8, enlarged with crisp pixels."""
    return upscale(to_hwc_uint8(np.asarray(image)), factor)


def colour_bar(lut: np.ndarray, length: int = PANEL_PX, thickness: int = 14, *, vertical: bool = False) -> np.ndarray:
    """A colour-bar strip of a (N, 3) colour table -> (thickness, length, 3) uint8, low values on the left.

    vertical: (length, thickness, 3) with the low values at the bottom, as beside a heat map.
    """
    lut = np.asarray(lut, dtype=np.uint8)
    if length < 2 or thickness < 1:
        raise ValueError(f"expected length >= 2 and thickness >= 1, got {length}, {thickness}")
    index = np.rint(np.linspace(0, len(lut) - 1, int(length))).astype(np.intp)  # (length,)
    strip = np.broadcast_to(lut[index][None], (int(thickness), int(length), 3))  # (thickness, length, 3)
    if vertical:
        strip = strip[:, ::-1].transpose(1, 0, 2)  # (length, thickness, 3), high values on top
    return np.ascontiguousarray(strip)


def pad_transparent(picture: np.ndarray, left: int, right: int) -> np.ndarray:
    """(H, W, 3) or (H, W, 4) uint8 -> (H, left + W + right, 4) RGBA with transparent columns either side.

    An RGB picture becomes opaque; an RGBA one keeps its own alpha (transparent axis gutters stay so).
    """
    if picture.ndim != 3 or picture.shape[2] not in (3, 4):
        raise ValueError(f"expected a (H, W, 3) or (H, W, 4) picture, got shape {picture.shape}")
    h, w, c = picture.shape
    out = np.zeros((h, int(left) + w + int(right), 4), np.uint8)  # transparent
    out[:, left:left + w, :c] = picture
    if c == 3:
        out[:, left:left + w, 3] = 255
    return out


def with_margin(picture: np.ndarray, margin: int = PANEL_MARGIN) -> np.ndarray:
    """`margin` transparent columns either side: (H, W, 3|4) -> (H, W + 2·margin, 4) RGBA.

    Pictures shown side by side in one st.image row touch; the margins space them on any page colour
    and keep a caption centred under its picture.
    """
    return pad_transparent(picture, margin, margin)


def indented(picture: np.ndarray, left: int = 0) -> np.ndarray:
    """`left` transparent columns first: (H, W, 3|4) -> (H, left + W, 4) RGBA.

    Lines a colour bar up with the plot area of pictures that carry a frequency axis (`axis_gutter` wide) on their left.
    """
    return pad_transparent(picture, left, 0)


def frequency_ticks(cells: int) -> list[int]:
    """Centred frequency indices to mark on an axis of `cells` cells: the band's quarters, -c/2, -c/4, 0, c/4.

    32 -> [-16, -8, 0, 8]; 224 -> [-112, -56, 0, 56]; (after fftshift, cell i holds frequency i - c // 2).
    """
    if cells < 1:
        raise ValueError(f"expected cells >= 1, got {cells}")
    half, step = cells // 2, max(1, cells // 4)
    return list(range(-half, cells - half, step))


@lru_cache(maxsize=1)
def _axis_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=AXIS_FONT_PX)  # Pillow's bundled font (FreeType builds: every wheel)
    except (OSError, ImportError):  # a Pillow built without FreeType: its small bitmap font
        return ImageFont.load_default()


def _tick_labels(cells: int, cycles_per_cell: float) -> list[tuple[int, str]]:
    # ASCII minus: the bundled font has no U+2212
    return [(f, f"{f * cycles_per_cell:g}") for f in frequency_ticks(cells)]


def axis_gutter(cells: int, cycles_per_cell: float = 1.0) -> int:
    """Width in pixels of the vertical axis that `with_frequency_axes` adds: the widest label, a gap and the tick.

    22 px for a 32×32 map ("-16"), 28 px for a pooled 224×224 one ("-112"): as narrow as the labels allow, so
    two framed 192-px maps still fit side by side in a laptop-width column.
    """
    font = _axis_font()
    widest = max(font.getlength(text) for _, text in _tick_labels(cells, cycles_per_cell))
    return int(np.ceil(widest)) + AXIS_TICK + 4  # 1 px left of the label, 2 px between label and tick, 1 spare


def with_frequency_axes(picture: np.ndarray, cells: int, cycles_per_cell: float = 1.0) -> np.ndarray:
    """A centred frequency picture (H, W, 3) uint8 of `cells`×`cells` cells -> (H + B, L + W, 4) RGBA with axes
    (B = AXIS_BOTTOM, L = axis_gutter(cells, cycles_per_cell)).

    Tick marks and labels (cycles/image) on a transparent gutter left of and below the picture, in a grey that
    reads on light and dark pages; the picture's own pixels are unchanged. cycles_per_cell: the frequencies one
    cell spans (7 for a 224×224 map pooled to 32×32), so the labels give the original frequencies.
    """
    if picture.ndim != 3 or picture.shape[2] != 3:
        raise ValueError(f"expected a (H, W, 3) picture, got shape {picture.shape}")
    h, w, _ = picture.shape
    if h % cells or w % cells:
        raise ValueError(f"expected a picture made of {cells}×{cells} equal cells, got shape {picture.shape}")
    left = axis_gutter(cells, cycles_per_cell)
    canvas = Image.new("RGBA", (left + w, h + AXIS_BOTTOM), (0, 0, 0, 0))
    canvas.paste(Image.fromarray(np.ascontiguousarray(picture), "RGB"), (left, 0))
    draw, font, colour = ImageDraw.Draw(canvas), _axis_font(), (*AXIS_RGB, 255)
    half = cells // 2
    for f, text in _tick_labels(cells, cycles_per_cell):
        x = left + int((f + half + 0.5) * w / cells)  # the cell's centre column
        y = int((f + half + 0.5) * h / cells)  # the cell's centre row (frequency grows downwards, as in the charts)
        draw.line([(x, h), (x, h + AXIS_TICK - 1)], fill=colour)  # below the picture
        draw.line([(left - AXIS_TICK, y), (left - 1, y)], fill=colour)  # left of the picture
        draw.text((x, h + AXIS_TICK), text, fill=colour, font=font, anchor="mt")
        label_y = min(max(y, AXIS_FONT_PX // 2 + 1), h - 1)  # the top label stays inside the canvas
        draw.text((left - AXIS_TICK - 2, label_y), text, fill=colour, font=font, anchor="rm")
    return np.asarray(canvas)


def encode_png(picture: np.ndarray) -> bytes:
    """(H, W, 3) RGB or (H, W, 4) RGBA uint8 -> PNG bytes (lossless: pixels stay exact)."""
    picture = np.ascontiguousarray(picture, dtype=np.uint8)
    if picture.ndim != 3 or picture.shape[2] not in (3, 4):
        raise ValueError(f"expected a (H, W, 3) or (H, W, 4) picture, got shape {picture.shape}")
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")  # mode from the shape: RGB or RGBA
    return buffer.getvalue()


__all__ = [
    "AXIS_BOTTOM", "AXIS_RGB", "LUT_SIZE", "NAN_RGB", "PANEL_MARGIN", "PANEL_PX", "Panel", "Shown", "axis_gutter", "colormap_lut",
    "colour_bar", "display_factor", "encode_png", "frequency_ticks", "heat_picture", "image_picture", "indented",
    "pad_transparent", "upscale", "value_range", "with_frequency_axes", "with_margin",
]
