"""Data sets by name: one registry used by the CLI, the app and the tests.

    load_dataset("samples")                              # Foolbox's 20 CIFAR-10 test images, offline
    load_dataset("cifar10", split="test", root="~/data", download=True)
    load_dataset("imagenette", split="val", root="~/data")      # resized to 224 x 224
    load_dataset("../shared/data/cifar10/test-1000", limit=100)  # any ImageFolder directory
    load_dataset("my-folder", classes=CIFAR10_CLASSES)   # labels follow the model's class names

Every source gives an `ImageSet` (uint8 images (N, 3, S, S), int64 labels, class names, string
ids). Ids are canonical indices ("0", "1", ...) where the source has them (CIFAR-10, Foolbox
samples, folders whose file names are integers: those are then ordered by that index, so the
first N images are the same whichever source holds them), else relative file paths.
With `classes` (the model's class names in label order, `core.models.registry.model_class_names`)
a folder's labels follow its class folders' names rather than their sorted order, so a folder that
holds only some of the classes keeps their true label indices (`label_by_class_names`).
Resizing (when `size` differs from the stored size) is a plain bilinear resize to size x size, as
in `image_folder`; Imagenette is squashed to 224 x 224 like the paper's pipeline.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from core.data.image_folder import (
    ImageSet,
    canonical_indices,
    check_image_folder,
    decode_images,
    list_image_folder,
    load_image_folder,
)
from core.paths import repo_path

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# torchvision's Imagenette, in WordNet-id order (= sorted folder names), first common name of each
IMAGENETTE_WNIDS = (
    "n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
    "n03394916", "n03417042", "n03425413", "n03445777", "n03888257",
)  # fmt: skip
IMAGENETTE_CLASSES = (
    "tench", "English springer", "cassette player", "chain saw", "church",
    "French horn", "garbage truck", "gas pump", "golf ball", "parachute",
)  # fmt: skip
IMAGENETTE_VARIANTS = ("full", "320px", "160px")  # torchvision archive variants, preferred first
# other names a class folder may carry for a model class: Imagenette's WordNet ids (torchvision's folder names)
CLASS_ALIASES: dict[str, tuple[str, ...]] = {name: (wnid,) for name, wnid in zip(IMAGENETTE_CLASSES, IMAGENETTE_WNIDS, strict=True)}


class DataNotFoundError(ValueError):
    """A named data set that is not on disk (and may not be downloaded)."""


@dataclass(frozen=True)
class DataSpec:
    """What the rest of the project needs to know about a named data set."""

    name: str
    default_size: int  # square side in pixels the images come at (or are resized to)
    classes: tuple[str, ...]  # class names in label order
    splits: tuple[str, ...]  # accepted `split` values
    description: str
    load: Callable[[str, int | None, int, str | None, bool], ImageSet]  # (split, limit, size, root, download)


def _name_key(name: str) -> str:
    """A class name with spelling differences removed: 'English_springer' and 'english springer' agree."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def class_name_indices(names: Sequence[str], classes: Sequence[str]) -> list[int] | None:
    """The model's label index of every folder class name, or None unless each name is one of `classes`
    (or an alias in `CLASS_ALIASES`) and no two names are the same class."""
    lookup: dict[str, int] = {}
    for index, name in enumerate(classes):
        for alias in (name, *CLASS_ALIASES.get(name, ())):
            lookup.setdefault(_name_key(alias), index)
    indices = [lookup.get(_name_key(name)) for name in names]
    if None in indices or len(set(indices)) != len(indices):
        return None
    return [int(i) for i in indices if i is not None]


def check_class_names(names: Sequence[str], classes: Sequence[str] | None, source: str) -> list[int] | None:
    """How a source's class names (`names`, in its label order) map to the model's `classes`.

    Returns the model's label index per name when every name is a model class, None when labels stay
    as they are (no `classes`, or other names but one class per model output); a ValueError showing
    both lists when the names do not match and the counts differ, since the labels would then be wrong.
    """
    if classes is None:
        return None
    indices = class_name_indices(names, classes)
    if indices is None and len(names) != len(classes):
        raise ValueError(
            f"expected the classes of {source!r} to carry the model's class names or to number {len(classes)} "
            f"(one per output), got {len(names)}: {list(names)}; the model's classes: {list(classes)}"
        )
    return indices


def label_by_class_names(data: ImageSet, classes: Sequence[str] | None, source: str) -> ImageSet:
    """`data` with labels that follow its class names: the model's label indices and `classes` as its
    class list when every name is a model class; unchanged otherwise (see `check_class_names`)."""
    indices = check_class_names(data.classes, classes, source)
    if indices is None or classes is None:
        return data
    labels = torch.tensor(indices, dtype=torch.int64)[data.labels] if len(data.labels) else data.labels  # (N,)
    return ImageSet(data.images, labels, list(classes), data.ids)


def _check_split(name: str, split: str, splits: tuple[str, ...]) -> None:
    if split not in splits:
        raise ValueError(f"expected split in {list(splits)} for {name}, got {split!r}")


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, 3, size, size), PIL bilinear as in `image_folder` (identity if the size matches)."""
    if images.shape[-2:] == (size, size):
        return images
    out = [
        np.asarray(Image.fromarray(img.permute(1, 2, 0).numpy()).resize((size, size), Image.BILINEAR)).transpose(2, 0, 1)
        for img in images
    ]
    return torch.from_numpy(np.stack(out)) if out else images.new_zeros((0, 3, size, size))


def default_data_root() -> str:
    """Where torchvision data sets live unless `root` is given: $FMAPS_DATA_ROOT or <repo>/cache/datasets."""
    return os.environ.get("FMAPS_DATA_ROOT", repo_path("cache", "datasets"))


def _load_samples(split: str, limit: int | None, size: int, root: str | None, download: bool) -> ImageSet:
    """Foolbox's bundled CIFAR-10 samples (test images 0-19), read as the PNGs shipped in its package."""
    _check_split("samples", split, ("test",))
    spec = importlib.util.find_spec("foolbox")  # find the package without importing it (no GitPython)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError("expected the foolbox package (pip install foolbox==3.3.4) for the 'samples' data set")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    files = {}
    for file in os.listdir(folder):  # cifar10_<index>_<label>.png; the "cifar10_" prefix excludes cifar100
        parts = os.path.splitext(file)[0].split("_")
        if len(parts) == 3 and parts[0] == "cifar10":
            files[int(parts[1])] = (os.path.join(folder, file), int(parts[2]))
    if sorted(files) != list(range(20)):
        raise DataNotFoundError(f"expected 20 CIFAR-10 samples in {folder!r}, found {len(files)}")
    indices = list(range(20))[:limit]
    images = decode_images([files[i][0] for i in indices], size, source=folder)
    labels = torch.tensor([files[i][1] for i in indices], dtype=torch.int64)
    return ImageSet(images, labels, list(CIFAR10_CLASSES), [str(i) for i in indices])


def _load_cifar10(split: str, limit: int | None, size: int, root: str | None, download: bool) -> ImageSet:
    """torchvision's CIFAR10 (the python pickles under root/cifar-10-batches-py), canonical order."""
    from torchvision.datasets import CIFAR10

    _check_split("cifar10", split, ("train", "test"))
    root = os.path.expanduser(root or default_data_root())
    try:
        data = CIFAR10(root, train=split == "train", download=download)
    except RuntimeError as err:  # "Dataset not found or corrupted"
        raise DataNotFoundError(
            f"CIFAR-10 not found under {root!r} ({err}): pass --root with the folder that holds "
            f"cifar-10-batches-py, or allow the download (--download / download=True)"
        ) from None
    images = torch.from_numpy(np.ascontiguousarray(data.data[:limit])).permute(0, 3, 1, 2)  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    labels = torch.tensor(data.targets[:limit], dtype=torch.int64)
    return ImageSet(_resize(images.contiguous(), size), labels, list(data.classes), [str(i) for i in range(len(labels))])


def _load_imagenette(split: str, limit: int | None, size: int, root: str | None, download: bool) -> ImageSet:
    """torchvision's Imagenette; 'test' means its validation split (Imagenette has no test split),
    'all' train and val together, as the paper's maps use them."""
    from torchvision.datasets import Imagenette

    _check_split("imagenette", split, ("train", "val", "test", "all"))
    if split == "all":  # the paper's maps use train and val together (9469 + 3925 images): train first
        train = _load_imagenette("train", limit, size, root, download)
        rest = None if limit is None else max(0, limit - len(train.labels))
        parts = [("train", train)] + ([("val", _load_imagenette("val", rest, size, root, download))] if rest != 0 else [])
        return ImageSet(torch.cat([p.images for _, p in parts]), torch.cat([p.labels for _, p in parts]), train.classes,
                        [f"{name}/{i}" for name, p in parts for i in p.ids])
    root = os.path.expanduser(root or default_data_root())
    present = _imagenette_variants(root)
    variant = present[0] if present else "full"
    folder_split = "val" if split == "test" else split
    try:  # torchvision checks the folder (and downloads when allowed); reading is ImageFolder's job
        Imagenette(root, split=folder_split, size=variant, download=download)
    except RuntimeError as err:  # "Dataset not found"
        raise DataNotFoundError(
            f"Imagenette not found under {root!r} ({err}): pass --root with the folder that holds imagenette2 "
            f"(or imagenette2-320 / -160), or allow the download (--download / download=True, 1.5 GB)"
        ) from None
    images = load_image_folder(os.path.join(root, _imagenette_folder(variant), folder_split), size=size, limit=limit)
    images.classes = [IMAGENETTE_CLASSES[IMAGENETTE_WNIDS.index(w)] if w in IMAGENETTE_WNIDS else w for w in images.classes]
    return images


def _imagenette_folder(variant: str) -> str:
    return "imagenette2" if variant == "full" else f"imagenette2-{variant.removesuffix('px')}"


def _imagenette_variants(root: str) -> list[str]:
    """The Imagenette variants present under root, preferred first."""
    return [v for v in IMAGENETTE_VARIANTS if os.path.isdir(os.path.join(root, _imagenette_folder(v)))]


DATASETS: dict[str, DataSpec] = {
    "cifar10": DataSpec(
        "cifar10", 32, CIFAR10_CLASSES, ("train", "test"), "CIFAR-10 via torchvision (10 000 test, 50 000 train)",
        _load_cifar10,
    ),
    "imagenette": DataSpec(
        "imagenette", 224, IMAGENETTE_CLASSES, ("train", "val", "test", "all"),
        "Imagenette 2 via torchvision, squashed to 224 x 224 ('test' = its val split)", _load_imagenette,
    ),
    "samples": DataSpec(
        "samples", 32, CIFAR10_CLASSES, ("test",), "Foolbox's 20 bundled CIFAR-10 test images (0-19), offline",
        _load_samples,
    ),
}  # fmt: skip


def load_dataset(
    source: str,
    split: str = "test",
    limit: int | None = None,
    size: int | None = None,
    root: str | None = None,
    download: bool = False,
    classes: Sequence[str] | None = None,
) -> ImageSet:
    """Images from a registered data set (`DATASETS`) or an ImageFolder directory.

    split: 'train' | 'test' (| 'val' and 'all' = train + val for imagenette); ignored for a directory (point at the split).
    limit: first N images (canonical order where there is one). size: square side in pixels
    (default: the data set's; for a directory, the images' own size, which must then be uniform).
    root / download: where torchvision data sets live and whether they may be fetched.
    classes: the model's class names in label order (None: labels as the source gives them); see
    `label_by_class_names` for how a folder's names then pick its labels.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"expected limit >= 1 or None, got {limit}")
    if size is not None and size < 1:
        raise ValueError(f"expected size >= 1 or None, got {size}")
    if source in DATASETS:
        spec = DATASETS[source]
        return label_by_class_names(spec.load(split, limit, size or spec.default_size, root, download), classes, source)
    if not os.path.isdir(source):
        raise ValueError(f"expected one of {sorted(DATASETS)} or an ImageFolder directory, got {source!r}")
    samples, names = list_image_folder(source)
    check_class_names(names, classes, source)  # refuse mismatched names before decoding every image
    by_index = canonical_indices(samples) is not None
    return label_by_class_names(load_image_folder(source, size=size, limit=limit, sort_by_canonical_index=by_index),
                                classes, source)


def check_source(
    source: str,
    split: str = "test",
    limit: int | None = None,
    root: str | None = None,
    classes: Sequence[str] | None = None,
) -> None:
    """Refuse, before a long job starts, a source that `load_dataset(source, split, limit, root=root,
    classes=classes)` (download=False) would fail on; returns None when it will load.

    A directory: its class names fit `classes` (see `check_class_names`), and every image the load
    would read is decoded once (a not-an-image, empty, truncated or oversized file is a ValueError
    naming it). A registered data set: its classes fit, the split is known and its files are where
    the loader looks (presence only; the loader still checks integrity).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"expected limit >= 1 or None, got {limit}")
    if source in DATASETS:
        spec = DATASETS[source]
        check_class_names(spec.classes, classes, source)
        _check_split(source, split, spec.splits)
        base = os.path.expanduser(root or default_data_root())
        if source == "samples" and importlib.util.find_spec("foolbox") is None:
            raise DataNotFoundError("expected the foolbox package (pip install foolbox==3.3.4) for the 'samples' data set")
        if source == "cifar10" and not os.path.isdir(os.path.join(base, "cifar-10-batches-py")):
            raise DataNotFoundError(
                f"CIFAR-10 not found under {base!r}: expected the folder cifar-10-batches-py there "
                "(pass --data-root with the folder that holds it)"
            )
        if source == "imagenette":
            variants = _imagenette_variants(base)
            needed = ["train", "val"] if split == "all" else ["val" if split == "test" else split]
            if not variants or not all(os.path.isdir(os.path.join(base, _imagenette_folder(variants[0]), s)) for s in needed):
                raise DataNotFoundError(
                    f"Imagenette not found under {base!r}: expected imagenette2 (or imagenette2-320 / -160) with "
                    f"{' and '.join(needed)} folders there (pass --data-root with the folder that holds it)"
                )
        return
    if not os.path.isdir(source):
        raise ValueError(f"expected one of {sorted(DATASETS)} or an ImageFolder directory, got {source!r}")
    samples, names = list_image_folder(source)
    check_class_names(names, classes, source)
    check_image_folder(source, limit=limit, sort_by_canonical_index=canonical_indices(samples) is not None)
