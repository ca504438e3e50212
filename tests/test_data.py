"""The data registry: Foolbox samples, ImageFolder paths, torchvision sets (faked offline), clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.datasets
from PIL import Image

from core.data.datasets import CIFAR10_CLASSES, DATASETS, DataNotFoundError, load_dataset
from tests.conftest import CIFAR_TEST, cifar_sample_pngs, needs_shared


def shared_png_by_index(index: int) -> tuple[np.ndarray, int]:
    """Independent reference: test-1000's PNG with canonical index `index` (HWC uint8) and its label."""
    (path,) = CIFAR_TEST.glob(f"*/{index:05d}.png")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")), CIFAR10_CLASSES.index(path.parent.name)


def png_by_index(index: int) -> tuple[np.ndarray, int]:
    """Independent reference on any clone: Foolbox's PNG of test image `index` (0-19, HWC uint8), read with PIL."""
    path, label = cifar_sample_pngs()[index]
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")), label


def canonical_folder(root, indices) -> None:
    """Write Foolbox's samples `indices` as an ImageFolder with canonical file names (<class>/<index 5 digits>.png)."""
    for index in indices:
        pixels, label = png_by_index(index)
        folder = root / CIFAR10_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{index:05d}.png")


@pytest.mark.parametrize("name", list(DATASETS))
def test_registry_entries(name):
    spec = DATASETS[name]
    assert spec.name == name and len(spec.classes) == 10 and spec.default_size in (32, 224) and spec.description
    assert "test" in spec.splits


@pytest.mark.parametrize("reference", [
    pytest.param(png_by_index, id="foolbox-pngs"),
    pytest.param(shared_png_by_index, id="test-1000", marks=needs_shared(CIFAR_TEST)),
])
def test_samples_are_test_images_0_to_19_pixel_exact(reference):
    samples = load_dataset("samples")
    assert samples.images.shape == (20, 3, 32, 32) and samples.images.dtype == torch.uint8
    assert samples.ids == [str(i) for i in range(20)]
    assert samples.classes == list(CIFAR10_CLASSES)
    for i in range(20):
        pixels, label = reference(i)
        assert np.array_equal(samples.images[i].permute(1, 2, 0).numpy(), pixels), f"image {i}"
        assert samples.labels[i].item() == label, f"label of image {i}"


def test_samples_limit_size_and_split():
    assert load_dataset("samples", limit=5).images.shape == (5, 3, 32, 32)
    assert load_dataset("samples", size=64, limit=2).images.shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match=r"expected split in \['test'\] for samples, got 'train'"):
        load_dataset("samples", split="train")


@needs_shared(CIFAR_TEST)
def test_image_folder_with_canonical_names_is_in_index_order():
    """test-1000's file names are canonical indices: its first 20 are exactly Foolbox's samples."""
    folder = load_dataset(str(CIFAR_TEST), limit=20)
    samples = load_dataset("samples")
    assert folder.ids == samples.ids
    assert torch.equal(folder.images, samples.images) and torch.equal(folder.labels, samples.labels)
    assert folder.classes == list(CIFAR10_CLASSES)


def test_canonical_names_order_a_folder_by_index(tmp_path):
    """Integer file names are canonical indices: a folder reads in index order, whatever the classes'
    alphabetical order, and its first N are the first N of Foolbox's samples (8 classes: labels by name)."""
    canonical_folder(tmp_path, range(19, -1, -1))
    samples = load_dataset("samples")
    folder = load_dataset(str(tmp_path), limit=12, classes=CIFAR10_CLASSES)
    assert folder.ids == [str(i) for i in range(12)]
    assert torch.equal(folder.images, samples.images[:12]) and torch.equal(folder.labels, samples.labels[:12])
    assert folder.classes == list(CIFAR10_CLASSES)


def test_image_folder_without_canonical_names(tmp_path):
    for cls, colour in (("b_cls", 200), ("a_cls", 10)):
        (tmp_path / cls).mkdir()
        for name in ("x.png", "y.png"):
            Image.new("RGB", (20, 10), (colour, colour, colour)).save(tmp_path / cls / name)
    data = load_dataset(str(tmp_path), size=8)
    assert data.classes == ["a_cls", "b_cls"]
    assert data.ids == ["a_cls/x.png", "a_cls/y.png", "b_cls/x.png", "b_cls/y.png"]
    assert data.labels.tolist() == [0, 0, 1, 1]
    assert data.images.shape == (4, 3, 8, 8)
    assert data.images[:2].eq(10).all() and data.images[2:].eq(200).all()
    Image.new("RGB", (5, 5)).save(tmp_path / "a_cls" / "z.png")
    with pytest.raises(ValueError, match="expected images of one size"):
        load_dataset(str(tmp_path))


def test_unknown_source(tmp_path):
    with pytest.raises(ValueError, match=r"expected one of \['cifar10', 'imagenette', 'samples'\] or an ImageFolder directory, got 'cifar-10'"):
        load_dataset("cifar-10")
    with pytest.raises(ValueError, match="expected class sub-folders"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize(("name", "match"), [("cifar10", "cifar-10-batches-py"), ("imagenette", "imagenette2")])
def test_torchvision_data_missing_says_how_to_get_it(name, match, tmp_path):
    with pytest.raises(DataNotFoundError, match=rf"not found under .*--root.*{match}.*--download"):
        load_dataset(name, root=str(tmp_path))


@pytest.mark.parametrize(("kwargs", "match"), [({"limit": 0}, "expected limit >= 1"), ({"size": 0}, "expected size >= 1")])
def test_bad_limit_and_size(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset("samples", **kwargs)


class FakeCIFAR10:
    """torchvision.datasets.CIFAR10's public surface (HWC uint8 data), filled with test-1000 images 0-9."""

    def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
        self.data = np.stack([png_by_index(i)[0] for i in range(10)])  # (10, 32, 32, 3)
        self.targets = [png_by_index(i)[1] for i in range(10)]
        self.classes = list(CIFAR10_CLASSES)


def test_cifar10_layout_from_torchvision(monkeypatch, tmp_path):
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    data = load_dataset("cifar10", root=str(tmp_path), limit=6)
    samples = load_dataset("samples", limit=6)
    assert torch.equal(data.images, samples.images) and torch.equal(data.labels, samples.labels)
    assert data.ids == samples.ids and data.classes == list(CIFAR10_CLASSES)
    assert load_dataset("cifar10", root=str(tmp_path), limit=2, size=16).images.shape == (2, 3, 16, 16)


def test_imagenette_folder_layout(tmp_path):
    """torchvision's Imagenette layout (imagenette2/val/<wnid>/*.JPEG): readable names, squashed to 224."""
    for wnid, colour in (("n03888257", (0, 0, 255)), ("n01440764", (255, 0, 0))):
        folder = tmp_path / "imagenette2" / "val" / wnid
        folder.mkdir(parents=True)
        Image.new("RGB", (60, 40), colour).save(folder / "ILSVRC2012_val_1.JPEG", quality=95)
    data = load_dataset("imagenette", split="test", root=str(tmp_path))
    assert data.classes == ["tench", "parachute"]
    assert data.ids == ["n01440764/ILSVRC2012_val_1.JPEG", "n03888257/ILSVRC2012_val_1.JPEG"]
    assert data.images.shape == (2, 3, 224, 224) and data.labels.tolist() == [0, 1]
    assert data.images[0, 0].float().mean() > 250 and data.images[1, 2].float().mean() > 250


def test_imagenette_all_is_train_then_val(tmp_path):
    """split='all': the paper's maps use Imagenette's train and val together; train first, ids say which."""
    for split, colour in (("train", (255, 0, 0)), ("val", (0, 0, 255))):
        folder = tmp_path / "imagenette2" / split / "n01440764"
        folder.mkdir(parents=True)
        Image.new("RGB", (60, 40), colour).save(folder / f"{split}_1.JPEG", quality=95)
    data = load_dataset("imagenette", split="all", root=str(tmp_path))
    assert data.ids == ["train/n01440764/train_1.JPEG", "val/n01440764/val_1.JPEG"]
    assert data.images.shape == (2, 3, 224, 224) and data.labels.tolist() == [0, 0]
    assert data.images[0, 0].float().mean() > 250 and data.images[1, 2].float().mean() > 250
    assert load_dataset("imagenette", split="all", root=str(tmp_path), limit=1).ids == ["train/n01440764/train_1.JPEG"]
