"""Shared test fixtures: paths to ../shared, the third-party ResNet-20, real CIFAR-10 images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython
os.environ.setdefault("FMAPS_VERIFIED", "")  # the app remembers verified files in ~/.cache: not from tests

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))
CIFAR_TEST = SHARED / "data" / "cifar10" / "test-1000"
CIFAR_TRAIN = SHARED / "data" / "cifar10" / "train-4000"
AKAMASTER = SHARED / "models" / "resnet20-akamaster.th"


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def akamaster_model() -> torch.nn.Module:
    """The third-party ResNet-20 (ImageNet normalisation inside the model), eval mode, CPU."""
    from core.models.registry import build_model

    return build_model("resnet20", checkpoint=str(AKAMASTER), input_norm="imagenet")


@pytest.fixture(scope="session")
def cifar_test():
    """All of test-1000 as an ImageSet (uint8 images, labels in canonical class order)."""
    from core.data.image_folder import load_image_folder

    return load_image_folder(str(CIFAR_TEST))


@pytest.fixture(scope="session")
def cifar_test_float(cifar_test) -> tuple[torch.Tensor, torch.Tensor]:
    """test-1000 in canonical index order as float (N, 3, 32, 32) in [0, 1] and int64 labels."""
    order = sorted(range(len(cifar_test.ids)), key=lambda i: int(Path(cifar_test.ids[i]).stem))
    images = cifar_test.images[order].float() / 255
    return images, cifar_test.labels[order]
