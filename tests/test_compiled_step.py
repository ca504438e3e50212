"""The compiled map step (core.compiled_step, `--compile`): the same maps as the eager step, a padded tail that
changes no result, a compiled precompute run that resumes after a kill, and the missing-compiler message.

Compiling takes tens of seconds on two CPU cores: one module-scoped compiled training serves the comparisons,
and what compiles is marked slow. The cheap tests swap the compiled step for the eager one to check the padding.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import core.map_training as map_training
from core.compiled_step import AUTO_MIN_IMAGE_STEPS, compiler_problem, resolve_compile
from core.map_training import MapTrainConfig, map_step, train_maps
from precompute.cli import main
from tests.conftest import AKAMASTER, CIFAR_TEST, REPO, needs_shared

CONFIG = MapTrainConfig(lam=0.5, min_steps=20, max_steps=40)  # short trainings; maps far from their start of ones
N_IMAGES, SLOTS = 6, 4  # 4 slots for 6 images: two refills, then a tail of 2 images padded to 4 slots
# float32 reordering (inductor's fused kernels vs eager ops) after <= 41 Adam steps of lr 0.01 moves a map entry
# by ~1e-6 (measured 2.4e-7 after 7 steps); 1e-4 leaves room for the reordering to compound, not for a wrong step
MAP_ATOL = 1e-4
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.fixture(scope="module")
def real_batch(akamaster_model, cifar_test_float):
    """The first N_IMAGES correctly classified test-1000 images, their labels and the third-party ResNet-20."""
    images, labels = cifar_test_float
    with torch.no_grad():
        correct = (akamaster_model(images[:40]).argmax(1) == labels[:40]).nonzero().flatten()[:N_IMAGES]
    return akamaster_model, images[correct], labels[correct]


@pytest.fixture(scope="module", params=DEVICES)
def compiled_and_eager(request, real_batch):
    """One compiled and one eager training of the same images on the device: (compiled, eager) MapResults."""
    model, images, labels = real_batch
    device = torch.device(request.param)
    model, images, labels = model.to(device), images.to(device), labels.to(device)
    compiled = train_maps(model, images, labels, CONFIG, batch_size=SLOTS, compile=True)
    eager = train_maps(model, images, labels, CONFIG, batch_size=SLOTS)
    model.cpu()
    return compiled, eager


@pytest.mark.slow
def test_compiled_maps_equal_eager_maps_on_real_images(compiled_and_eager) -> None:
    compiled, eager = compiled_and_eager
    assert torch.equal(compiled.steps, eager.steps)
    assert torch.equal(compiled.kept, eager.kept)  # identical kept decisions
    assert torch.equal(compiled.final_pred, eager.final_pred)
    torch.testing.assert_close(compiled.maps, eager.maps, rtol=0, atol=MAP_ATOL)
    torch.testing.assert_close(compiled.final_loss, eager.final_loss, rtol=1e-4, atol=1e-5)
    assert (eager.maps < 0.9).float().mean() > 0.05  # the maps moved: the comparison is not of untouched ones


@pytest.mark.slow
def test_compiled_tail_equals_those_images_trained_alone(real_batch, compiled_and_eager) -> None:
    """The last two images finish in a padded batch of 4 slots; trained alone (eager, batch 2, no padding) the same."""
    model, images, labels = real_batch
    compiled, _ = compiled_and_eager
    alone = train_maps(model, images[-2:], labels[-2:], CONFIG, batch_size=2)
    assert torch.equal(compiled.steps[-2:], alone.steps.to(compiled.steps.device))
    torch.testing.assert_close(compiled.maps[-2:].cpu(), alone.maps, rtol=0, atol=MAP_ATOL)


def _eager_as_compiled(assignment, images, targets, maps, adam, lam, apply_maps, channels_last):
    """The compiled step's interface on the eager step: the padding of train_maps(compile=True) without compiling."""
    def forward(filtered: torch.Tensor) -> torch.Tensor:
        if channels_last:
            filtered = filtered.contiguous(memory_format=torch.channels_last)
        if len(assignment) == 1:
            return assignment[0][0](filtered)
        parts, order = [], []
        for network, slots in assignment:
            parts.append(network(filtered[torch.tensor(slots)]))
            order += slots
        return torch.cat(parts)[torch.tensor(order).argsort()]

    return map_step(forward, images, targets, maps, adam, lam, apply_maps)


@needs_shared(AKAMASTER, CIFAR_TEST)
def test_padded_inert_slots_change_no_result(real_batch, monkeypatch) -> None:
    """Eager arithmetic either way: a tail padded with inert slots vs a tail that shrinks (batch size rounding only)."""
    model, images, labels = real_batch
    config = MapTrainConfig(lam=0.5, min_steps=8, max_steps=16)
    shrinking = train_maps(model, images, labels, config, batch_size=SLOTS)
    monkeypatch.setattr(map_training, "compiled_map_step", _eager_as_compiled)
    padded = train_maps(model, images, labels, config, batch_size=SLOTS, compile=True)
    assert torch.equal(padded.steps, shrinking.steps)
    assert torch.equal(padded.kept, shrinking.kept)
    torch.testing.assert_close(padded.maps, shrinking.maps, rtol=0, atol=1e-5)


def test_padding_keeps_the_early_and_late_split(real_batch, monkeypatch) -> None:
    """With an early network (as under --bf16) the padded trainer splits the batch like the eager one does."""
    model, images, labels = real_batch
    config = MapTrainConfig(lam=0.5, min_steps=6, max_steps=10)
    early = map_training.fold_batchnorm(model.eval())
    kwargs = dict(batch_size=SLOTS, early_model=early, early_steps=4, fuse_batchnorm=False)
    reference = train_maps(model, images, labels, config, **kwargs)
    monkeypatch.setattr(map_training, "compiled_map_step", _eager_as_compiled)
    padded = train_maps(model, images, labels, config, compile=True, **kwargs)
    assert torch.equal(padded.steps, reference.steps)
    torch.testing.assert_close(padded.maps, reference.maps, rtol=0, atol=1e-5)


def test_missing_compiler_names_the_fix_or_falls_back(monkeypatch) -> None:
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    problem = compiler_problem("cpu")
    assert problem is not None and "'/nonexistent/g++' was not found" in problem and "--compile off" in problem
    with pytest.raises(ValueError, match=r"^--compile on: torch.compile on the CPU needs a C\+\+ compiler"):
        resolve_compile("on", torch.device("cpu"), 0)
    with pytest.warns(RuntimeWarning, match="--compile auto: training the maps eagerly"):
        assert resolve_compile("auto", torch.device("cpu"), AUTO_MIN_IMAGE_STEPS) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # short runs and off: eager without a word
        assert resolve_compile("auto", torch.device("cpu"), AUTO_MIN_IMAGE_STEPS - 1) is False
        assert resolve_compile("off", torch.device("cpu"), 10**9) is False


def test_auto_compiles_long_runs_only_where_a_compiler_is(monkeypatch) -> None:
    monkeypatch.setenv("CXX", sys.executable)  # a file that exists stands for the compiler
    assert resolve_compile("auto", torch.device("cpu"), AUTO_MIN_IMAGE_STEPS) is True
    assert resolve_compile("on", torch.device("cpu"), 1) is True
    assert resolve_compile("auto", torch.device("cpu"), 1) is False
    with pytest.raises(ValueError, match="expected --compile one of auto, on, off, got 'yes'"):
        resolve_compile("yes", torch.device("cpu"), 1)


@needs_shared(AKAMASTER, CIFAR_TEST)
def test_compile_on_without_a_compiler_stops_the_run_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    code = main(["run", "--checkpoint", str(AKAMASTER), "--input-norm", "imagenet", "--data", str(CIFAR_TEST),
                 "--limit", "2", "--attacks", "none", "--device", "cpu", "--compile", "on", "--quiet",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: --compile on: torch.compile on the CPU needs a C++ compiler") and "\n" not in err
    assert not any(tmp_path.iterdir())  # stopped before any work


# the essential maps of 6 images under --compile on, 2 per resumable unit: a kill mid-stage loses at most one
COMPILED_RUN = [
    "run", "--model", "resnet20", "--checkpoint", str(AKAMASTER), "--input-norm", "imagenet", "--data", str(CIFAR_TEST),
    "--limit", "6", "--attacks", "none", "--lam", "0.1", "--min-steps", "5", "--max-steps", "12", "--chunk-size", "2",
    "--batch-size", "2", "--permutations", "3", "--repairings", "1", "--bootstrap", "20", "--power-repeats", "1",
    "--device", "cpu", "--compile", "on", "--quiet",
]


def _run(out: Path, timeout: float | None = None) -> subprocess.CompletedProcess | None:
    """`precompute COMPILED_RUN --out out`; None when killed (SIGKILL) after `timeout` seconds."""
    cmd = [sys.executable, "-m", "precompute", *COMPILED_RUN, "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO), GIT_PYTHON_REFRESH="quiet", OMP_NUM_THREADS="1")
    if timeout is None:
        return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    process = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return None


def _checksums(root: Path) -> dict[str, str]:
    (entry,) = [p for p in root.iterdir() if (p / "manifest.json").is_file()]
    manifest = json.loads((entry / "manifest.json").read_text())
    return {name: array["sha256"] for name, array in manifest["arrays"].items()}


@pytest.mark.slow
@needs_shared(AKAMASTER, CIFAR_TEST)
def test_compiled_run_killed_and_resumed_equals_an_uninterrupted_one(tmp_path) -> None:
    start = time.perf_counter()
    reference = _run(tmp_path / "reference")
    duration = time.perf_counter() - start
    assert reference.returncode == 0, reference.stderr[-2000:]
    _run(tmp_path / "resumed", timeout=0.8 * duration)  # late: in the maps stage, after compiling
    resumed = _run(tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _checksums(tmp_path / "resumed") == _checksums(tmp_path / "reference")
