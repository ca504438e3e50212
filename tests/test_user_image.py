"""Uploaded images: every format/mode becomes a finite (1, 3, S, S) tensor in [0, 1], or a clear ImageLoadError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.data.user_image import MAX_PIXELS, ImageLoadError, decode_user_image, load_user_image

SIZE = 32


def encode(im: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def noise(mode: str, w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert(mode)


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header says width x height (IHDR patched, CRC recomputed): a decompression bomb."""
    data = bytearray(encode(Image.new("1", (8, 8))))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def rgba_on_white() -> bytes:
    """Left half opaque red, right half fully transparent red."""
    im = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    im[..., 0] = 255
    im[:, : SIZE // 2, 3] = 255
    return encode(Image.fromarray(im, "RGBA"))


def sixteen_bit() -> bytes:
    grey = np.full((SIZE, SIZE), 65535, dtype=np.uint16)
    grey[:, SIZE // 2 :] = 32768
    return encode(Image.fromarray(grey))  # mode I;16


def palette() -> bytes:
    return encode(noise("RGB", SIZE, SIZE).quantize(16))


def expect_rgb(rgb: Image.Image):
    """Exact reference for images already at SIZE: the RGB pixels / 255."""
    reference = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return lambda x: torch.equal(x, reference)


def left_right(left: tuple, right: tuple, atol: float = 1 / 255):
    """Left half one colour, right half another (in 0..255 units)."""

    def check(x: torch.Tensor) -> bool:
        lhs = torch.tensor(left, dtype=torch.float32).view(3, 1, 1) / 255
        rhs = torch.tensor(right, dtype=torch.float32).view(3, 1, 1) / 255
        return bool(
            torch.allclose(x[0, :, :, : SIZE // 2], lhs.expand(3, SIZE, SIZE // 2), atol=atol)
            and torch.allclose(x[0, :, :, SIZE // 2 :], rhs.expand(3, SIZE, SIZE // 2), atol=atol)
        )

    return check


def uniform(colour: tuple, atol: float = 1 / 255):
    return left_right(colour, colour, atol)


def truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


OK_CASES = [
    pytest.param(lambda: encode(noise("RGB", SIZE, SIZE)), expect_rgb(noise("RGB", SIZE, SIZE)), id="png-rgb"),
    pytest.param(lambda: encode(Image.new("RGB", (SIZE, SIZE), (10, 200, 30)), "JPEG", quality=95), uniform((10, 200, 30), 3 / 255), id="jpeg"),
    pytest.param(lambda: encode(Image.new("L", (SIZE, SIZE), 77)), uniform((77, 77, 77)), id="grayscale"),
    pytest.param(palette, expect_rgb(noise("RGB", SIZE, SIZE).quantize(16).convert("RGB")), id="palette"),
    pytest.param(rgba_on_white, left_right((255, 0, 0), (255, 255, 255)), id="rgba-composited-on-white"),
    pytest.param(sixteen_bit, left_right((255, 255, 255), (128, 128, 128)), id="16-bit-scaled-not-clipped"),
    pytest.param(lambda: encode(Image.new("RGB", (1, 1), (0, 128, 255))), uniform((0, 128, 255)), id="1x1"),
    pytest.param(animated_gif, uniform((255, 0, 0)), id="animated-gif-first-frame"),
    pytest.param(lambda: encode(Image.new("CMYK", (SIZE, SIZE), (0, 0, 0, 0)), "JPEG", quality=95), uniform((255, 255, 255), 3 / 255), id="cmyk-jpeg"),
    pytest.param(lambda: encode(Image.new("RGB", (4000, 3000), (5, 6, 7))), uniform((5, 6, 7)), id="large-12MP-allowed"),
    pytest.param(lambda: encode(Image.new("1", (SIZE, SIZE), 1)), uniform((255, 255, 255)), id="1-bit"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "check"), OK_CASES)
def test_valid_images_become_model_inputs(make, check):
    x = load_user_image(make(), SIZE)
    assert x.shape == (1, 3, SIZE, SIZE) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert check(x)


BAD_CASES = [
    pytest.param(lambda: b"", "empty", id="empty-bytes"),
    pytest.param(lambda: np.random.default_rng(0).bytes(5000), "not an image", id="random-bytes"),
    pytest.param(lambda: b"GIF89a" + bytes(3), "not an image", id="gif-header-only"),
    pytest.param(lambda: truncated(encode(noise("RGB", 128, 128)), 0.5), "truncated or corrupt PNG", id="truncated-png"),
    pytest.param(lambda: truncated(encode(noise("RGB", 128, 128), "JPEG"), 0.6), "truncated or corrupt JPEG", id="truncated-jpeg"),
    pytest.param(lambda: png_claiming_size(8000, 8000), "image too large: 8000 x 8000 = 64 megapixels", id="bomb-64MP-over-limit"),
    pytest.param(lambda: png_claiming_size(10000, 10000), "image too large", id="bomb-100MP-pillow-warning"),
    pytest.param(lambda: png_claiming_size(20000, 20000), "image too large", id="bomb-400MP-pillow-error"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "match"), BAD_CASES)
def test_bad_files_raise_a_clear_error(make, match):
    with pytest.raises(ImageLoadError, match=match):
        load_user_image(make(), SIZE)


def test_limit_is_what_the_bomb_cases_test():
    assert 8000 * 8000 > MAX_PIXELS >= 4000 * 3000


def test_paths_and_info(tmp_path):
    path = tmp_path / "gray.png"
    Image.new("L", (40, 20), 9).save(path)
    x = load_user_image(path, SIZE)
    assert torch.allclose(x, torch.full((1, 3, SIZE, SIZE), 9 / 255))
    assert torch.equal(load_user_image(str(path), SIZE), x)
    _, info = decode_user_image(path.read_bytes())
    assert (info.width, info.height, info.mode, info.format, info.frames) == (40, 20, "L", "PNG", 1)
    _, gif_info = decode_user_image(animated_gif())
    assert gif_info.frames == 2
    with pytest.raises(ImageLoadError, match="no such file"):
        load_user_image(tmp_path / "missing.png", SIZE)


def test_resize_matches_the_dataset_pipeline():
    """An image at another size is resized exactly like image_folder does (PIL bilinear)."""
    im = noise("RGB", 50, 70)
    reference = np.asarray(im.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32) / 255
    x = load_user_image(encode(im), SIZE)
    assert torch.equal(x[0].permute(1, 2, 0), torch.from_numpy(reference))


@pytest.mark.parametrize("size", [0, -3, 2.5])
def test_bad_size(size):
    with pytest.raises(ValueError, match="expected size to be a positive int"):
        load_user_image(encode(Image.new("RGB", (4, 4))), size)


@settings(max_examples=30, deadline=None, derandomize=True)  # the same examples on every run (CI)
@given(
    mode=st.sampled_from(["L", "RGB", "RGBA", "P"]),
    width=st.integers(1, 64),
    height=st.integers(1, 64),
    fmt=st.sampled_from(["PNG", "GIF", "WEBP"]),
    seed=st.integers(0, 2**16),
)
def test_any_small_valid_image_becomes_an_input(mode, width, height, fmt, seed):
    x = load_user_image(encode(noise(mode, width, height, seed), fmt), 32)
    assert x.shape == (1, 3, 32, 32)
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
