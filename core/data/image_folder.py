"""Read an ImageFolder tree (`root/<class>/<file>`) into one uint8 tensor.

Small data sets (CIFAR-10, a few thousand Imagenette images) fit in memory as uint8, which is
4x smaller than float and lets training and map computation index batches without a loader.
Class indices follow torchvision's ImageFolder: class folder names sorted alphabetically.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")


@dataclass
class ImageSet:
    """Images with labels. images: uint8 (N, 3, H, W); labels: int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    ids: list[str]  # one readable id per image (relative path or canonical index)


def list_image_folder(root: str) -> tuple[list[tuple[str, int]], list[str]]:
    """(path, class index) pairs in ImageFolder order, and the sorted class names."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"expected an ImageFolder directory (root/<class>/<image>), got {root!r}")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ValueError(f"expected class sub-folders in {root!r}, found none")
    samples = []
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        for dirpath, _, files in sorted(os.walk(folder, followlinks=True)):
            for file in sorted(files):
                if file.lower().endswith(IMAGE_EXTENSIONS):
                    samples.append((os.path.join(dirpath, file), index))
    if not samples:
        raise ValueError(f"expected image files under {root!r}, found none")
    return samples, classes


def _decode(path: str, size: int | None) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)  # (3, H, W)


def load_image_folder(
    root: str, size: int | None = None, limit: int | None = None, workers: int = 4
) -> ImageSet:
    """Decode every image under `root` (optionally resized to size x size, first `limit`)."""
    samples, classes = list_image_folder(root)
    if limit is not None:
        samples = samples[:limit]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda s: _decode(s[0], size), samples))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"expected images of one size in {root!r} (or pass size=), got {sorted(shapes)[:3]}")
    images = torch.from_numpy(np.stack(arrays))
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    ids = [os.path.relpath(path, root) for path, _ in samples]
    return ImageSet(images, labels, classes, ids)
