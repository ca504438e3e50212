"""Imagenette end to end: real 224×224 images, random-weight ResNet-18 and ViT-B/16, tiny
step counts: `precompute run` trains both map sets, correlates them, and the app's pages render it.

No ImageNet weights can be had here, so the models keep their seeded random weights. A random
model gets most labels wrong and a wrong label gets no map, so the test files each image under
the class the seeded model predicts for it (ImageFolder takes labels from folder names): the
images are then "correctly classified" and every stage has work to do.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from experiments.reader import Experiment
from tests.conftest import REPO, SHARED

IMAGENETTE_TAR = SHARED / "data" / "imagenette" / "val-3925-224-jpeg-q75.tar"
N_IMAGES = 3
APP = str(REPO / "app.py")


def _real_images(n: int) -> list[tuple[str, bytes]]:
    """The first image of the first n classes of the Imagenette val tar: (file name, JPEG bytes)."""
    out, seen = [], set()
    with tarfile.open(IMAGENETTE_TAR) as tar:
        for member in tar:
            wnid = member.name.split("/")[-2] if member.isfile() else None
            if wnid and wnid not in seen:
                seen.add(wnid)
                out.append((os.path.basename(member.name), tar.extractfile(member).read()))
            if len(out) == n:
                break
    return out


def _folder_by_prediction(model_name: str, root: Path) -> Path:
    """An ImageFolder with 10 class folders, each real image filed under the seeded model's prediction."""
    from core.models.registry import build_model

    torch.manual_seed(0)  # what `precompute run` does (seed 0) before building the model
    model = build_model(model_name, input_norm="imagenet").eval()
    images = _real_images(N_IMAGES)
    with torch.no_grad():
        batch = torch.stack([
            torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB").resize((224, 224)))).permute(2, 0, 1)
            for _, data in images
        ]).float() / 255  # (N, 3, 224, 224)
        predictions = model(batch).argmax(1).tolist()
    folder = root / "imagenette"
    for k in range(10):
        (folder / f"class{k}").mkdir(parents=True)
    for (name, data), label in zip(images, predictions, strict=True):
        (folder / f"class{label}" / name).write_bytes(data)
    return folder


@pytest.mark.slow
@pytest.mark.skipif(not IMAGENETTE_TAR.is_file(), reason=f"needs {IMAGENETTE_TAR}: set FMAPS_SHARED=DIR to a folder "
                    "holding data/imagenette/val-3925-224-jpeg-q75.tar (Imagenette 2's val split squashed to 224 x 224)")
@pytest.mark.parametrize("model_name", ["resnet18", "vit_b_16"])
def test_imagenette_run_and_app(model_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _folder_by_prediction(model_name, tmp_path)
    preset = "imagenette-resnet18" if model_name == "resnet18" else "imagenette-vit"
    out = tmp_path / "cache"
    cmd = [sys.executable, "-m", "precompute", "run", "--preset", preset, "--data", str(data), "--device", "cpu",
           "--attacks", "pgd", "--eps", "8", "--attack-steps", "10", "--min-steps", "1", "--max-steps", "2", "--permutations", "3",
           "--repairings", "1", "--bootstrap", "20", "--power-repeats", "1", "--batch-size", "auto", "--quiet",
           "--out", str(out)]
    env = dict(os.environ, GIT_PYTHON_REFRESH="quiet", PYTHONPATH=str(REPO))
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    (path,) = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    experiment = Experiment(str(path))
    assert experiment.n == N_IMAGES and experiment.images().shape[1:] == (3, 224, 224)
    assert (experiment.pred() == experiment.labels()).all()  # filed under their predictions
    for name in ("essential", "adversarial-pgd-8"):
        maps = experiment.map_set(name)
        assert maps["maps"].dtype == np.float16 and maps["maps"].shape[1:] == (3, 224, 224)  # compact storage
        assert maps["pooled_avg"].shape[1:] == (3, 32, 32)  # the pooled copy the correlations use
    correlation = experiment.correlation("pgd-8")
    assert correlation["pool"] == "avg" and correlation["dim"] == 3 * 32 * 32
    assert len(correlation["cosine"]) == correlation["n"] >= 1

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FMAPS_CACHE", str(out))
    monkeypatch.setenv("FMAPS_ONLY", "1")
    for page in ("pages/explore.py", "pages/correlations.py"):
        at = AppTest.from_file(APP, default_timeout=600).run()
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        if page == "pages/explore.py":  # pictures by default (224-pixel images and maps), Plotly one toggle away
            assert list(at.get("image")), f"{page} drew no picture for {model_name}"
            at.toggle(key="explore_interactive").set_value(True).run()
            assert not at.exception, [e.value for e in at.exception]
        assert list(at.get("plotly_chart")), f"{page} drew no chart for {model_name}"
