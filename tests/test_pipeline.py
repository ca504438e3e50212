"""End-to-end: `precompute run` on a few real images with tiny step counts, then export, report, list;
a run killed mid-stage resumes to identical arrays; torchrun with 2 gloo ranks gives the same cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments.format import STATUS_KEPT
from experiments.reader import Experiment, find_experiments
from precompute.cli import main
from tests.conftest import AKAMASTER, CIFAR_TEST, CIFAR_TRAIN, REPO, SHIPPED_MODEL, needs_shared, skip_unless_shared

SMALL_RUN = [
    "run", "--model", "resnet20", "--checkpoint", str(AKAMASTER), "--input-norm", "imagenet",
    "--data", str(CIFAR_TEST), "--limit", "8", "--attacks", "fmn", "pgd", "deepfool", "--eps", "8", "--attack-steps", "10",
    "--lam", "0.1", "--min-steps", "5", "--max-steps", "25", "--chunk-size", "3", "--batch-size", "2",
    "--permutations", "5", "--repairings", "2", "--bootstrap", "20", "--power-repeats", "1",  # statistics: few resamples
    "--train-data", str(CIFAR_TRAIN), "--train-limit", "30", "--class-min-steps", "2", "--class-max-steps", "4",
    "--class-batch-size", "4", "--quiet",
]


def _experiment_dir(root: Path) -> Path:
    (entry,) = [p for p in root.iterdir() if (p / "manifest.json").is_file()]
    return entry


def _array_checksums(path: Path) -> dict[str, str]:
    manifest = json.loads((path / "manifest.json").read_text())
    return {k: v["sha256"] for k, v in manifest["arrays"].items()}


def _env() -> dict[str, str]:
    env = dict(os.environ, GIT_PYTHON_REFRESH="quiet", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete small experiment, computed once for this module (single thread, for comparisons)."""
    skip_unless_shared(AKAMASTER, CIFAR_TEST, CIFAR_TRAIN)
    out = tmp_path_factory.mktemp("cache")
    result = subprocess.run([sys.executable, "-m", "precompute", *SMALL_RUN, "--out", str(out)],
                            env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return _experiment_dir(out)


@pytest.mark.slow
def test_run_produces_every_stage(small_run: Path) -> None:
    experiment = Experiment(str(small_run))
    assert experiment.n == 8
    assert experiment.attack_keys == ["fmn", "pgd-8", "deepfool"]
    labels, pred = experiment.labels(), experiment.pred()
    essential = experiment.map_set("essential")
    # maps exist exactly for correctly classified images, and statuses agree with rows
    assert ((essential["status"] == 0) == (pred != labels)).all()
    for i in range(experiment.n):
        m, _ = experiment.essential_map(i)
        assert (m is not None) == (essential["status"][i] == STATUS_KEPT)
        if m is not None:
            assert m.shape == (3, 32, 32) and 0 <= m.min() and m.max() <= 1
    for key in experiment.attack_keys:
        attack = experiment.attack(key)
        success = np.asarray(attack["success"])
        assert (success <= (pred == labels)).all()  # success only on correctly classified images
        adv_status = experiment.map_set(f"adversarial-{key}")["status"]
        assert ((adv_status >= 2) == success).all()
        corr = experiment.correlation(key)
        assert corr is not None
        if corr["n"] >= 3:
            assert len(corr["cosine"]) == corr["n"]  # per-pair cosines, whatever else could be computed
            if corr["idcor"] is None:  # these tiny runs barely move the maps: TwoNN may see duplicates
                assert "idcor" in corr["errors"]
            else:
                assert len(corr["null_ids"]) == 5
    table = experiment.defence_table()
    assert table["rows"] == ["clean", "fmn", "pgd-8", "deepfool"]
    assert abs(table["accuracy"]["clean"]["none"] - float((pred == labels).mean())) < 1e-9
    assert experiment.class_maps("fmn").shape == (10, 3, 32, 32)
    assert not list(small_run.glob("parts"))  # merged parts are removed


@pytest.mark.slow
def test_pgd_respects_eps(small_run: Path) -> None:
    experiment = Experiment(str(small_run))
    assert float(np.max(experiment.attack("pgd-8")["linf"])) <= 8 / 255 + 1e-5


@pytest.mark.slow
def test_export_report_list(small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "pairs.npz"
    assert main(["export", str(small_run), "--out", str(out), "--attack", "pgd", "--eps", "8"]) == 0
    with np.load(out) as data:
        assert set(data.files) == {"essential", "adversarial", "index", "position", "label", "adv_label"}
        n = len(data["index"])
        assert data["essential"].shape == data["adversarial"].shape == (n, 3, 32, 32)
        assert (data["label"] != data["adv_label"]).all()
    capsys.readouterr()
    assert main(["report", str(small_run)]) == 0
    report = capsys.readouterr().out
    for heading in ("Table I", "Table III", "Table IV", "sparsity"):
        assert heading in report
    assert main(["list", "--out", str(small_run.parent)]) == 0
    assert small_run.name in capsys.readouterr().out


@pytest.mark.slow
def test_rerun_skips_everything(small_run: Path) -> None:
    before = _array_checksums(small_run)
    start = time.perf_counter()
    assert main([*SMALL_RUN, "--out", str(small_run.parent)]) == 0
    assert _array_checksums(small_run) == before
    assert time.perf_counter() - start < 60


# A smaller run for the kill trials: every stage (attack, both map sets, correlation, class maps,
# defence) in a few seconds, so ten trials stay cheap.
KILL_RUN = [
    "run", "--model", "resnet20", "--checkpoint", str(AKAMASTER), "--input-norm", "imagenet",
    "--data", str(CIFAR_TEST), "--limit", "6", "--attacks", "pgd", "--eps", "8", "--attack-steps", "5",
    "--lam", "0.1", "--min-steps", "3", "--max-steps", "12", "--chunk-size", "2", "--batch-size", "2",
    "--permutations", "3", "--repairings", "1", "--bootstrap", "20", "--power-repeats", "1",  # statistics: few resamples
    "--train-data", str(CIFAR_TRAIN), "--train-limit", "20", "--class-min-steps", "2", "--class-max-steps", "3",
    "--class-batch-size", "4", "--quiet",
]
KILL_TRIALS = 10


@pytest.fixture(scope="module")
def kill_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], float]:
    """Checksums of an uninterrupted KILL_RUN and how long it took."""
    skip_unless_shared(AKAMASTER, CIFAR_TEST, CIFAR_TRAIN)
    out = tmp_path_factory.mktemp("kill-reference")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "precompute", *KILL_RUN, "--out", str(out)],
                            env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return _array_checksums(_experiment_dir(out)), time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(KILL_TRIALS))
def test_killed_run_resumes_to_identical_arrays(kill_reference, tmp_path: Path, trial: int) -> None:
    """SIGKILL the run at a random moment (seeded per trial, anywhere in an uninterrupted run's
    duration: during imports, attacks, maps, class maps or a manifest write), resume, and compare
    every array's checksum with the uninterrupted run."""
    checksums, duration = kill_reference
    delay = float(np.random.default_rng(trial).uniform(0.3, duration))
    cmd = [sys.executable, "-m", "precompute", *KILL_RUN, "--out", str(tmp_path)]
    process = subprocess.Popen(cmd, env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    result = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"resume after a kill at {delay:.1f}s failed: {result.stderr[-2000:]}"
    assert _array_checksums(_experiment_dir(tmp_path)) == checksums, f"killed at {delay:.1f}s"


@pytest.mark.slow
def test_torchrun_two_ranks_match_one_process(small_run: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
           "-m", "precompute", *SMALL_RUN, "--out", str(tmp_path)]
    result = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _array_checksums(_experiment_dir(tmp_path)) == _array_checksums(small_run)
    assert find_experiments([str(tmp_path)])[0].ok


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "expected a preset"),
        (["--model", "resnet99"], "expected --model"),
        (["--attacks", "cw"], "expected --attacks"),
        (["--eps", "0"], r"expected --eps in \(0, 255\]"),
        (["--eps", "300"], r"expected --eps in \(0, 255\]"),
        (["--data", "/nonexistent/folder"], "expected --data"),
        (["--checkpoint", "/nonexistent.pt"], "expected --checkpoint"),
    ],
    ids=["unknown-preset", "unknown-model", "unknown-attack", "eps-zero", "eps-too-big", "missing-data", "missing-ckpt"],
)
def test_bad_input_stops_before_work(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import re

    code = main(["run", "--data", "samples", "--checkpoint", str(SHIPPED_MODEL), *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert list(tmp_path.iterdir()) == []  # nothing written


@needs_shared(AKAMASTER, CIFAR_TEST)
def test_checkpoint_for_another_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--model", "resnet18", "--checkpoint", str(AKAMASTER), "--data", str(CIFAR_TEST),
                 "--limit", "2", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit" in err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    code = main(["run", "--data", "samples", "--checkpoint", str(SHIPPED_MODEL), "--out", str(target)])
    assert code == 2 and "expected --out to be a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_unwritable_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that can write anywhere (root)")
        code = main(["run", "--data", "samples", "--checkpoint", str(SHIPPED_MODEL), "--out", str(locked / "x")])
        assert code == 2 and "writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


@needs_shared(AKAMASTER, CIFAR_TEST, CIFAR_TRAIN)
@pytest.mark.parametrize("fold", ["on", "off"])
def test_fold_batchnorm_option_reaches_every_trainer_and_attack(fold: str, tmp_path: Path, monkeypatch) -> None:
    """`--fold-batchnorm` decides, in a real run, whether the attacks, the per-image maps and the class maps
    see the BatchNorm-folded network: each caller of `fold_batchnorm` is recorded by its file."""
    import inspect

    import core.class_maps
    import core.map_training

    original, callers = core.map_training.fold_batchnorm, []

    def recording_fold(model):
        callers.append(Path(inspect.stack()[1].filename).name)
        return original(model)

    monkeypatch.setattr(core.map_training, "fold_batchnorm", recording_fold)  # per-image maps; attacks import it late
    monkeypatch.setattr(core.class_maps, "fold_batchnorm", recording_fold)
    tiny = ["run", "--model", "resnet20", "--checkpoint", str(AKAMASTER), "--input-norm", "imagenet",
            "--data", str(CIFAR_TEST), "--limit", "3", "--attacks", "fmn", "--attack-steps", "3",
            "--lam", "0.1", "--min-steps", "2", "--max-steps", "3", "--permutations", "3", "--repairings", "1", "--bootstrap", "20",
            "--train-data", str(CIFAR_TRAIN), "--train-limit", "12", "--class-min-steps", "1",
            "--class-max-steps", "2", "--class-batch-size", "4", "--quiet", "--fold-batchnorm", fold,
            "--out", str(tmp_path)]
    assert main(tiny) == 0
    if fold == "off":
        assert callers == []
    else:
        assert {"attacks.py", "map_training.py", "class_maps.py"} <= set(callers), callers
