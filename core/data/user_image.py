"""Turn an image a user uploads (any format Pillow reads) into a model input, safely.

    x = load_user_image(uploaded_bytes, size=32)  # (1, 3, 32, 32) float32 in [0, 1]

Every failure is an `ImageLoadError` (a ValueError) with a message meant for the user: empty
file, not an image, truncated or corrupt data (the whole image is decoded up front, not lazily),
too many pixels (limit `MAX_PIXELS`, checked from the header before decoding, so a small file
that claims a huge canvas costs nothing). The data-set pipeline (`image_folder`) decodes every
file of an ImageFolder with the same function, so a folder and an upload accept and convert the
same images.

Conversions, chosen to match what a person sees:
- EXIF orientation is applied (phone photos are stored sideways); not for data-set folders
  (`exif_transpose=False`), which are read like torchvision's ImageFolder.
- Transparency (RGBA, LA, palette with a transparent colour) is composited on white, the usual
  background of image viewers; black would turn transparent logos into dark squares.
- 16-bit and 32-bit integer grey (modes I;16*, I) are scaled to 8 bits (v * 255 / 65535), not
  clipped; grey, palette, 1-bit and CMYK images are converted to RGB by Pillow.
- Animated images (GIF, APNG, WebP): the first frame.
- The result is a plain bilinear resize to size x size (aspect ratio not kept), the same as the
  data set pipeline (`image_folder`), so an uploaded CIFAR-10 PNG gives exactly the data set's input.
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 50_000_000  # width * height; 50 MP is a large photo (~150 MB as 8-bit RGB in memory)
FORMATS_HINT = "PNG, JPEG, GIF, BMP, TIFF or WebP"
# `warnings.catch_warnings` changes process-wide state and is not thread-safe: data folders are
# decoded in threads and the app serves sessions in threads, so opening (header only) is serialised.
_OPEN_LOCK = threading.Lock()


class ImageLoadError(ValueError):
    """A file (uploaded, or in a data folder) that cannot be used as an image; the message is meant for the user."""


@dataclass(frozen=True)
class UserImageInfo:
    """What the uploaded file was, before conversion."""

    width: int
    height: int
    mode: str  # Pillow mode of the file, e.g. 'RGB', 'P', 'I;16', 'CMYK'
    format: str | None  # e.g. 'PNG', 'JPEG'
    frames: int  # > 1 for animations (only the first is used)


def _read_bytes(source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageLoadError(f"expected an image file, got {str(path)!r} (no such file)")
        return path.read_bytes()
    if hasattr(source, "read"):
        return source.read()
    raise ImageLoadError(f"expected image bytes, a path or a binary file, got {type(source).__name__}")


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (see the module docstring for the rules)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(im, dtype=np.float64)  # (H, W), 0..65535 for 16-bit data
        im = Image.fromarray(np.round(np.clip(grey, 0, 65535) * (255 / 65535)).astype(np.uint8), mode="L")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha or (im.mode in ("L", "RGB") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if im.mode == "RGB":
        return im
    try:
        return im.convert("RGB")
    except ValueError as err:  # e.g. "conversion from LAB to RGB not supported"
        raise ImageLoadError(f"unsupported image mode {im.mode!r}: {err}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def decode_user_image(
    source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO,
    exif_transpose: bool = True,
) -> tuple[Image.Image, UserImageInfo]:
    """Fully decode `source` into an 8-bit RGB Pillow image at its own size, plus what the file was.

    exif_transpose=False keeps the stored pixel orientation (data-set folders, like torchvision).
    """
    data = _read_bytes(source)
    if not data:
        raise ImageLoadError(f"expected an image ({FORMATS_HINT}), got an empty file (0 bytes)")
    with _OPEN_LOCK, warnings.catch_warnings():
        # Pillow warns above ~89 MP and raises above ~179 MP; our own limit below is lower
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageLoadError(
                f"not an image Pillow can read ({len(data)} bytes of unknown format; expected {FORMATS_HINT})"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            claimed = re.search(r"\((\d+) pixels\)", str(err))  # Pillow names the pixel count, not the size
            size = f"{int(claimed.group(1)) / 1e6:.0f} megapixels" if claimed else _first_line(err)
            raise ImageLoadError(
                f"image too large: {size} (a decompression bomb?), expected at most {MAX_PIXELS / 1e6:.0f}"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise ImageLoadError(f"corrupt image header: {_first_line(err)}") from None
    width, height = im.size
    if width * height > MAX_PIXELS:
        raise ImageLoadError(
            f"image too large: {width} x {height} = {width * height / 1e6:.0f} megapixels, "
            f"expected at most {MAX_PIXELS / 1e6:.0f}"
        )
    if width < 1 or height < 1:
        raise ImageLoadError(f"expected an image of at least 1 x 1 pixels, got {width} x {height}")
    info = UserImageInfo(width, height, im.mode, im.format, int(getattr(im, "n_frames", 1)))
    try:
        im.seek(0)  # first frame of an animation
        im.load()  # decode everything now: truncated data fails here, not later
        if exif_transpose:
            im = ImageOps.exif_transpose(im)
        rgb = _to_rgb(im)
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as err:
        raise ImageLoadError(f"truncated or corrupt {im.format or 'image'} data: {_first_line(err)}") from None
    return rgb, info


def load_user_image(
    source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO, size: int
) -> torch.Tensor:
    """Uploaded image -> (1, 3, size, size) float32 in [0, 1] (plain bilinear resize, see module docstring)."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"expected size to be a positive int, got {size!r}")
    rgb, _info = decode_user_image(source)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BILINEAR)
    array = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)  # (3, size, size)
    return torch.from_numpy(array.copy()).float().div_(255).unsqueeze(0)  # (1, 3, size, size)
