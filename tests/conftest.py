"""Shared test fixtures: paths to the shared data folder, the third-party ResNet-20, real CIFAR-10 images.

The larger real data (`test-1000`, `train-4000`) and the third-party checkpoint live outside the
repository, in `../shared` beside the clone or wherever `FMAPS_SHARED` points. Tests that need them
skip with a reason that says how to get them (`python -m precompute fetch-data DIR`, then
`FMAPS_SHARED=DIR python -m pytest`): fixtures that read them skip by themselves, tests that pass
the paths on carry `@needs_shared(CIFAR_TEST, ...)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython
os.environ.setdefault("FMAPS_VERIFIED", "")  # the app remembers verified files in ~/.cache: not from tests

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))
CIFAR_TEST = SHARED / "data" / "cifar10" / "test-1000"
CIFAR_TRAIN = SHARED / "data" / "cifar10" / "train-4000"
AKAMASTER = SHARED / "models" / "resnet20-akamaster.th"
SHIPPED_MODEL = REPO / "assets" / "resnet20-cifar10.pt"  # the project's own ResNet-20, in every clone
# what presets name (relative to the repository, experiments/paths.py): a test that runs one reads these
PRESET_SHARED = REPO.parent / "shared"
HOW_TO_GET = ("get them with `python -m precompute fetch-data DIR --limit 1000` and set FMAPS_SHARED=DIR "
              "(the shared folder looked in: {shared})")


def missing_shared(*paths: Path) -> str | None:
    """The skip reason when any of `paths` (files or folders of the shared data) is absent, else None."""
    missing = [str(path) for path in paths if not path.exists()]
    if not missing:
        return None
    return f"needs {', '.join(missing)}: " + HOW_TO_GET.format(shared=SHARED)


def needs_shared(*paths: Path) -> pytest.MarkDecorator:
    """Skip marker for a test that reads these shared files or folders (CIFAR_TEST, CIFAR_TRAIN, AKAMASTER...)."""
    reason = missing_shared(*paths)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def skip_unless_shared(*paths: Path) -> None:
    """Skip the running test (or fixture) unless every one of `paths` exists."""
    reason = missing_shared(*paths)
    if reason is not None:
        pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def akamaster_model() -> torch.nn.Module:
    """The third-party ResNet-20 (ImageNet normalisation inside the model), eval mode, CPU; skips without it."""
    from core.models.registry import build_model

    skip_unless_shared(AKAMASTER)
    return build_model("resnet20", checkpoint=str(AKAMASTER), input_norm="imagenet")


@pytest.fixture(scope="session")
def cifar_test():
    """All of test-1000 as an ImageSet (uint8 images, labels in canonical class order); skips without it."""
    from core.data.image_folder import load_image_folder

    skip_unless_shared(CIFAR_TEST)
    return load_image_folder(str(CIFAR_TEST))


@pytest.fixture(scope="session")
def cifar_test_float(cifar_test) -> tuple[torch.Tensor, torch.Tensor]:
    """test-1000 in canonical index order as float (N, 3, 32, 32) in [0, 1] and int64 labels."""
    order = sorted(range(len(cifar_test.ids)), key=lambda i: int(Path(cifar_test.ids[i]).stem))
    images = cifar_test.images[order].float() / 255
    return images, cifar_test.labels[order]


@pytest.fixture(scope="session")
def shipped_model() -> torch.nn.Module:
    """The project's own ResNet-20 (assets/, inputs in [0, 1]), eval mode, CPU: a real model on any clone."""
    from core.models.registry import build_model

    return build_model("resnet20", checkpoint=str(SHIPPED_MODEL))


@pytest.fixture(scope="session")
def cifar_samples():
    """Foolbox's 20 bundled CIFAR-10 test images (canonical indices 0-19) as an ImageSet: real pictures on any clone."""
    from core.data.datasets import load_dataset

    return load_dataset("samples")


def cifar_sample_pngs() -> dict[int, tuple[Path, int]]:
    """Foolbox's bundled CIFAR-10 PNGs by canonical test index (0-19): (file, label). Read straight from the
    package, not through the project's loaders, so tests can use them as an independent reference."""
    import importlib.util

    spec = importlib.util.find_spec("foolbox")
    assert spec is not None and spec.submodule_search_locations, "foolbox is a test requirement"
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    files = {}
    for path in folder.glob("cifar10_*_*.png"):  # cifar10_<index>_<label>.png
        _, index, label = path.stem.split("_")
        files[int(index)] = (path, int(label))
    assert sorted(files) == list(range(20)), files
    return files


class RealCase(NamedTuple):
    """A trained model with real CIFAR-10 test images in canonical index order."""

    name: str  # "akamaster": the third-party model on test-1000; "shipped": assets/ model on Foolbox's 20 samples
    model: torch.nn.Module
    images: torch.Tensor  # (N, 3, 32, 32) float in [0, 1]; N = 1000 or 20
    labels: torch.Tensor  # (N,) int64


@pytest.fixture(scope="session")
def real_case(request: pytest.FixtureRequest) -> RealCase:
    """The third-party ResNet-20 on test-1000 when the shared data is present, else the shipped ResNet-20 on
    the 20 samples: for tests of properties that any trained model on real pictures shows, so they run on
    every clone (thresholds that differ between the two carry what was measured for each)."""
    if missing_shared(AKAMASTER, CIFAR_TEST) is None:
        images, labels = request.getfixturevalue("cifar_test_float")
        return RealCase("akamaster", request.getfixturevalue("akamaster_model"), images, labels)
    samples = request.getfixturevalue("cifar_samples")
    return RealCase("shipped", request.getfixturevalue("shipped_model"), samples.images.float() / 255, samples.labels)
