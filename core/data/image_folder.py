"""Read an ImageFolder tree (`root/<class>/<file>`) into one uint8 tensor.

Small data sets (CIFAR-10, a few thousand Imagenette images) fit in memory as uint8, which is
4x smaller than float and lets training and map computation index batches without a loader.
Class indices follow torchvision's ImageFolder: class folder names sorted alphabetically.
With `sort_by_canonical_index=True` the images are ordered by the integer in their file names
(the shared CIFAR-10 folders name each file by its index in the canonical data set) and that
integer, as a string, becomes the image's id; `limit` then takes the first images of that order.

Files are decoded by `core.data.user_image.decode_user_image` (without EXIF rotation), so a data
folder accepts and converts exactly what an upload does: 16-bit grey scaled to 8 bits, alpha
composited on white, palette / grey / CMYK to RGB; an unreadable, truncated, empty or oversized
file is an `ImageLoadError` (a ValueError) naming the file. `check_image_folder` runs that decoding
ahead of a long job, so a bad file stops it before anything is written.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from core.data.user_image import ImageLoadError, decode_user_image

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
    """One file -> uint8 (3, H, W) RGB (resized to size x size if given); ImageLoadError naming the file."""
    try:
        im, _ = decode_user_image(path, exif_transpose=False)
    except ImageLoadError as err:
        raise ImageLoadError(f"expected only readable images in the data folder, got {path!r}: {err}") from None
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)  # (3, H, W)


def canonical_indices(samples: list[tuple[str, int]]) -> list[int] | None:
    """The integer file-name stem of every sample (e.g. `cat/00042.png` -> 42), or None unless all are unique integers."""
    stems = [os.path.splitext(os.path.basename(path))[0] for path, _ in samples]
    if not all(stem.isdigit() for stem in stems):
        return None
    indices = [int(stem) for stem in stems]
    return indices if len(set(indices)) == len(indices) else None


def decode_images(paths: list[str], size: int | None = None, workers: int = 4, source: str = "") -> torch.Tensor:
    """Decode image files to one uint8 tensor (N, 3, H, W), RGB, optionally resized (bilinear) to size x size."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda path: _decode(path, size), paths))
    if not arrays:
        raise ValueError(f"expected at least one image in {source!r}, got none")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"expected images of one size in {source!r} (or pass size=), got {sorted(shapes)[:3]}")
    return torch.from_numpy(np.stack(arrays))


def select_samples(
    root: str, limit: int | None = None, sort_by_canonical_index: bool = False
) -> tuple[list[tuple[str, int]], list[str], list[str]]:
    """The (path, class index) pairs `load_image_folder` reads, their ids and the class names.

    sort_by_canonical_index: order by the integer file names and use them as ids (ValueError
    unless every file name is a unique integer); otherwise ImageFolder order, relative paths as ids.
    """
    samples, classes = list_image_folder(root)
    if sort_by_canonical_index:
        indices = canonical_indices(samples)
        if indices is None:
            raise ValueError(f"expected unique integer file names (canonical indices) under {root!r}")
        order = sorted(range(len(samples)), key=indices.__getitem__)
        samples = [samples[i] for i in order]
        ids = [str(indices[i]) for i in order]
    else:
        ids = [os.path.relpath(path, root) for path, _ in samples]
    if limit is not None:
        samples, ids = samples[:limit], ids[:limit]
    return samples, ids, classes


def check_image_folder(
    root: str, limit: int | None = None, workers: int = 4, sort_by_canonical_index: bool = False
) -> int:
    """Decode (and discard) the images `load_image_folder` would read; returns their number.

    Raises the ValueError loading would raise (bad file, no classes, no images), so a job can
    refuse a bad folder before it writes anything. Costs one decode per file, no resizing.
    """
    samples, _, _ = select_samples(root, limit, sort_by_canonical_index)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(lambda sample: _decode(sample[0], None).shape, samples):
            pass
    return len(samples)


def load_image_folder(
    root: str,
    size: int | None = None,
    limit: int | None = None,
    workers: int = 4,
    sort_by_canonical_index: bool = False,
) -> ImageSet:
    """Decode every image under `root` (optionally resized to size x size, first `limit`).

    sort_by_canonical_index: see `select_samples`.
    """
    samples, ids, classes = select_samples(root, limit, sort_by_canonical_index)
    images = decode_images([path for path, _ in samples], size, workers, source=root)
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return ImageSet(images, labels, classes, ids)
