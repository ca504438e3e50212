"""The adaptive stages (precompute/stages/adaptive.py) on a tiny experiment: Foolbox's CIFAR-10 samples, the
shipped ResNet-20, class maps trained on 8 samples in 2 steps. The stored predictions must equal a direct
`run_adaptive_attack` / `curve_correct` call on the same images with the same per-chunk seed, exactly; adding
the adaptive attacks to a finished experiment keeps its directory and Table IV's values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.attacks_adaptive import CURVE_EPS_255, curve_correct, run_adaptive_attack
from core.defended import DefendedClassifier
from core.models.registry import build_model
from experiments.format import (
    ADAPTIVE,
    DEFENCE,
    EFFORT,
    ROBUSTNESS_CURVE,
    adaptive_cell,
    effort_dir,
    file_name,
    npy_path,
    robustness_curve_dir,
)
from experiments.paths import resolve_path
from experiments.reader import Experiment
from precompute.cli import main
from precompute.report_cmd import build_report
from precompute.stages.context import StageContext

CHUNK = 2  # images per resumable unit: 3 images make 2 chunks, each with its own seed
BASE_RUN = ["run", "--data", "samples", "--limit", "3", "--attacks", "pgd", "--eps", "8", "--attack-steps", "2",
            "--min-steps", "1", "--max-steps", "2", "--permutations", "2", "--repairings", "0", "--bootstrap", "0",
            "--train-data", "samples", "--train-split", "test", "--train-limit", "8", "--class-min-steps", "1",
            "--class-max-steps", "2", "--class-batch-size", "4", "--chunk-size", str(CHUNK), "--device", "cpu",
            "--adaptive-steps", "2", "--quiet"]  # fmt: skip  (--adaptive-steps is hashed: given to both runs)
ADAPTIVE_RUN = ["--adaptive-attacks", "pgd+bpda", "fmn+defended", "--robustness-curve"]  # not hashed: adds stages


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for these three-image batches (two threads spin-wait on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """The experiment built without adaptive attacks, then again with them: (directory, table before, after).
    A copy of it before the second run is left in the "results-only" cache for `pruned_copy`."""
    out = tmp_path_factory.mktemp("cache")
    assert main([*BASE_RUN, "--out", str(out)]) == 0
    [path] = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    for copy in ("results-only", "limited"):
        shutil.copytree(path, tmp_path_factory.getbasetemp() / copy / path.name)
    before = json.loads((path / DEFENCE / "table.json").read_text())
    assert main([*BASE_RUN, *ADAPTIVE_RUN, "--out", str(out)]) == 0
    assert [p for p in out.iterdir() if (p / "manifest.json").is_file()] == [path]  # the same experiment
    return path, before, json.loads((path / DEFENCE / "table.json").read_text())


@pytest.fixture(scope="module")
def pruned_copy(runs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The experiment before its adaptive run, pruned to a results-only copy, then given the adaptive stages."""
    path = tmp_path_factory.getbasetemp() / "results-only" / runs[0].name
    assert main(["prune", str(path), "--drop", "train", "images", "maps"]) == 0
    assert not (path / "test" / "images.npy").exists() and not (path / "maps" / "essential" / "maps.npy").exists()
    assert main([*BASE_RUN, *ADAPTIVE_RUN, "--out", str(path.parent)]) == 0
    return path


def test_a_results_only_copy_gains_the_same_adaptive_stages(runs, pruned_copy):
    """The test images come back (decoded again, checked against the stored predictions), the adaptive cells and
    curve equal those of the unpruned run exactly, and what was pruned and is not needed stays absent."""
    full, pruned = Experiment(str(runs[0])), Experiment(str(pruned_copy))
    assert json.loads((pruned_copy / DEFENCE / "table.json").read_text()) == runs[2]
    assert np.array_equal(np.asarray(pruned.images()), np.asarray(full.images()))
    for cell in (adaptive_cell("pgd-8+bpda", "pgd-8"), adaptive_cell("fmn+defended", "pgd-8")):
        assert np.asarray(pruned.array(npy_path(DEFENCE, cell))).tolist() == \
            np.asarray(full.array(npy_path(DEFENCE, cell))).tolist(), cell
    assert pruned.robustness_curves()["pgd-8"]["accuracy"] == full.robustness_curves()["pgd-8"]["accuracy"]
    assert not (pruned_copy / "maps" / "essential" / "maps.npy").exists() and not (pruned_copy / "train").exists()
    assert main(["prune", str(pruned_copy), "--drop", "images"]) == 0
    assert not (pruned_copy / "test" / "images.npy").exists()


def test_adaptive_limit_attacks_the_first_n_images_and_records_n(runs, tmp_path_factory, capsys):
    """--adaptive-limit 2: the first chunk of the full run exactly (same positions, same seed), N = 2 in the table;
    a later run with another N is refused rather than mixed into the same table."""
    path = tmp_path_factory.getbasetemp() / "limited" / runs[0].name
    assert main([*BASE_RUN, "--adaptive-attacks", "pgd+bpda", "--adaptive-limit", "2", "--out", str(path.parent)]) == 0
    limited, full = Experiment(str(path)), Experiment(str(runs[0]))
    cell = adaptive_cell("pgd-8+bpda", "pgd-8")
    pred = np.asarray(limited.array(npy_path(DEFENCE, cell)))
    assert pred.tolist() == np.asarray(full.array(npy_path(DEFENCE, cell)))[:CHUNK].tolist()
    block = json.loads((path / DEFENCE / "table.json").read_text())["adaptive"]
    assert block["n"] == 2 and block["settings"]["pgd-8+bpda"]["n"] == 2
    assert block["accuracy"]["pgd-8+bpda"]["pgd-8"] == pytest.approx(float((pred == full.labels()[:2]).mean()), abs=1e-12)
    capsys.readouterr()
    assert main([*BASE_RUN, "--adaptive-attacks", "pgd+bpda", "--adaptive-limit", "3", "--out", str(path.parent)]) == 2
    assert "expected --adaptive-limit to give the N = 2 test images" in capsys.readouterr().err


def _direct(experiment: Experiment, maps_key: str):
    """The experiment's model, defended by its class maps, its test images and labels (as the stage sees them)."""
    config = experiment.config
    model = build_model(config.model, checkpoint=resolve_path(config.checkpoint), input_norm=config.input_norm)
    defended = DefendedClassifier.from_stored(model, torch.from_numpy(experiment.class_maps(maps_key)))
    images = torch.from_numpy(np.asarray(experiment.images())).float() / 255
    return defended, images, torch.from_numpy(experiment.labels())


def _seed(experiment: Experiment, *parts: object) -> int:
    return StageContext(experiment.config, None, None, None, None, None).stage_seed(*parts)


@pytest.mark.parametrize(("name", "key", "eps"), [("pgd+bpda", "pgd-8+bpda", 8 / 255), ("fmn+defended", "fmn+defended", None)])
def test_stage_equals_a_direct_attack_per_chunk(runs, name, key, eps):
    path, _, table = runs
    experiment = Experiment(str(path))
    defended, images, labels = _direct(experiment, "pgd-8")
    expected = []
    for chunk, start in enumerate(range(0, experiment.n, CHUNK)):
        part = slice(start, start + CHUNK)
        result = run_adaptive_attack(name, defended, images[part], labels[part], eps,
                                     seed=_seed(experiment, ADAPTIVE, key, "pgd-8", chunk), steps=2)
        expected.append(result.pred)
    expected = torch.cat(expected).numpy()
    stored = np.asarray(experiment.array(npy_path(DEFENCE, adaptive_cell(key, "pgd-8"))))
    assert stored.tolist() == expected.tolist()
    block = experiment.adaptive_table()
    assert block["rows"] == ["fmn+defended", "pgd-8+bpda"] and block["columns"] == ["pgd-8"]
    assert block["extends"][key] == key.partition("+")[0]  # the row begins with the key of the attack it extends
    labels_np = labels.numpy()
    correct = experiment.pred() == labels_np
    assert block["accuracy"][key]["pgd-8"] == pytest.approx(float((expected == labels_np).mean()), abs=1e-12)
    assert block["accuracy_clean_correct"][key]["pgd-8"] == pytest.approx(
        float((expected == labels_np)[correct].mean()), abs=1e-12)
    assert (block["n"], block["n_clean_correct"]) == (3, int(correct.sum()))
    assert table["adaptive"] == block


def test_robustness_curve_equals_curve_correct_per_chunk(runs):
    path, _, _ = runs
    experiment = Experiment(str(path))
    defended, images, labels = _direct(experiment, "pgd-8")
    parts = [curve_correct(defended, images[s:s + CHUNK], labels[s:s + CHUNK], CURVE_EPS_255, attacks=("pgd+bpda",),
                           seed=_seed(experiment, ROBUSTNESS_CURVE, "pgd-8", chunk), steps=2, baseline_steps=2)
             for chunk, s in enumerate(range(0, experiment.n, CHUNK))]
    curve = experiment.robustness_curves()["pgd-8"]
    assert curve["rows"] == ["undefended", "non_adaptive", "pgd+bpda", "worst_case"]
    for row in curve["rows"]:
        expected = torch.cat([p[row] for p in parts]).numpy()
        stored = np.asarray(experiment.array(npy_path(robustness_curve_dir("pgd-8"), file_name(row))))
        assert stored.tolist() == expected.tolist(), row
        np.testing.assert_allclose(curve["accuracy"][row], expected.mean(axis=0), rtol=0, atol=1e-12)
    assert curve["eps_255"] == list(CURVE_EPS_255)
    assert [c["row"] for c in curve["checks"]] == ["pgd+bpda", "worst_case"]


def test_table_iv_keeps_its_values_and_gains_its_denominator(runs):
    path, before, after = runs
    assert {k: v for k, v in after.items() if k != "adaptive"} == before  # nothing else changed on the second run
    experiment = Experiment(str(path))
    labels, correct = experiment.labels(), experiment.pred() == experiment.labels()
    defended = np.asarray(experiment.array(npy_path(DEFENCE, "pgd-8__pgd-8")))
    assert before["accuracy_clean_correct"]["pgd-8"]["pgd-8"] == pytest.approx(
        float((defended == labels)[correct].mean()), abs=1e-12)
    assert before["n_clean_correct"] == int(correct.sum())
    config = json.loads((path / "manifest.json").read_text())["config"]
    assert config["adaptive_attacks"] == ["fmn+defended", "pgd+bpda"] and config["robustness_curve"] is True
    report = build_report(experiment)
    assert "## Adaptive attacks on the defence" in report and "Sanity checks" in report
    assert "PGD ε=8/255 + bpda" in report and "Robustness curve" in report


def test_effort_check_reruns_pgd_with_more_steps_and_restarts(runs, tmp_path_factory):
    """--effort-check: each adaptive PGD cell not already at 0 is attacked again with twice the steps and one more
    restart under its own per-chunk seed, exactly as a direct call; the check compares the two accuracies."""
    path = tmp_path_factory.mktemp("effort") / runs[0].name
    shutil.copytree(runs[0], path)
    assert main([*BASE_RUN, *ADAPTIVE_RUN, "--effort-check", "--out", str(path.parent)]) == 0
    experiment = Experiment(str(path))
    block = experiment.adaptive_table()
    effort = block["effort"]["pgd-8+bpda"]["pgd-8"]
    assert (effort["steps"], effort["restarts"]) == (4, 2) and "fmn+defended" not in block["effort"]  # PGD only
    as_run = block["accuracy"]["pgd-8+bpda"]["pgd-8"]
    cell = npy_path(effort_dir(), adaptive_cell("pgd-8+bpda", "pgd-8"))
    if as_run == 0:
        assert effort == {"accuracy": 0.0, "steps": 4, "restarts": 2, "rerun": False}
        assert not (path / cell).exists()
    else:
        defended, images, labels = _direct(experiment, "pgd-8")
        expected = torch.cat([
            run_adaptive_attack("pgd+bpda", defended, images[s:s + CHUNK], labels[s:s + CHUNK], 8 / 255,
                                seed=_seed(experiment, EFFORT, "pgd-8+bpda", "pgd-8", chunk), steps=4, restarts=2).pred
            for chunk, s in enumerate(range(0, experiment.n, CHUNK))]).numpy()
        assert np.asarray(experiment.array(cell)).tolist() == expected.tolist()
        assert effort["rerun"] is True
        assert effort["accuracy"] == pytest.approx(float((expected == labels.numpy()).mean()), abs=1e-12)
    [check] = [c for c in block["checks"] if c["check"] == "more_effort_does_not_help"]
    assert check["passed"] == (as_run - effort["accuracy"] <= 1 / 3 + 1e-12)
    assert "4 steps and 2 restarts against 2 and 1" in check["message"]
    assert "more_effort_does_not_help" in build_report(experiment)


def test_effort_check_needs_an_adaptive_pgd(runs, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("effort-refused")
    capsys.readouterr()
    assert main([*BASE_RUN, "--adaptive-attacks", "fmn+defended", "--effort-check", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "expected --effort-check with an adaptive PGD attack in --adaptive-attacks (pgd+all-maps, pgd+bpda)" in err
    assert len(err.strip().splitlines()) == 1 and not any(out.iterdir())
