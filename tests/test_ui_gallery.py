"""The gallery's thumbnails (ui/gallery.py): small pictures travel exactly, large ones downscaled."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from ui.gallery import MAX_SENT_PX, thumbnail_uri


def decode(uri: str) -> tuple[str, np.ndarray]:
    header, _, payload = uri.partition(",")
    assert header.endswith(";base64")
    picture = Image.open(io.BytesIO(base64.b64decode(payload)))
    return picture.format, np.asarray(picture.convert("RGB"))


def test_small_pictures_are_sent_exactly(cifar_samples):
    picture = cifar_samples.images[0].numpy().transpose(1, 2, 0)  # (32, 32, 3) uint8, a real CIFAR-10 image
    kind, back = decode(thumbnail_uri(picture))
    assert kind == "PNG" and back.dtype == np.uint8
    np.testing.assert_array_equal(back, picture)


def test_large_pictures_are_downscaled_by_area_averaging():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (224, 160, 3), dtype=np.uint8)
    kind, back = decode(thumbnail_uri(picture))
    assert kind == "JPEG"
    assert back.shape == (MAX_SENT_PX, round(160 * MAX_SENT_PX / 224), 3)  # the aspect ratio kept
    flat = np.full((224, 224, 3), (200, 30, 90), np.uint8)  # area averaging keeps a flat colour (JPEG: ±3)
    _, back = decode(thumbnail_uri(flat))
    assert back.shape == (MAX_SENT_PX, MAX_SENT_PX, 3)
    assert np.abs(back.astype(int) - (200, 30, 90)).max() <= 3


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 4), (3, 32, 32)])
def test_other_shapes_are_refused(shape):
    with pytest.raises(ValueError, match=r"expected a \(H, W, 3\) uint8 picture"):
        thumbnail_uri(np.zeros(shape, np.uint8))
