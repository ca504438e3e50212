"""Map bases and hidden layers through the whole pipeline: `precompute run --basis B --layer L` on a few real images.

One tiny experiment per case (Foolbox's 20 CIFAR-10 samples, the shipped ResNet-20, a few steps): fourier, phase,
dct and wavelet at the input, and fourier at layer1 (with an adaptive attack on its defence). Each is checked
against references computed here independently of the stages: the manifest's basis/layer/map_shape against the
basis's key and the layer's feature shape; the stored maps against a one-image `train_maps` in that basis, taken
back to natural order; the defence's predictions against a plain two-pass loop (pick by the bare model, filter the
layer's features with the picked map, run the rest); the statistics' non-redundant block against `correlate` on
the coefficients `Basis.nonredundant` selects; the report's header. Then bad input (one line, nothing written) and
the manifest's record of stage options given by a later run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from core.bases import get_basis
from core.hidden_layers import INPUT, split_at
from core.map_training import MapTrainConfig, train_maps
from core.metrics.correlate import correlate
from core.models.registry import build_model
from experiments.config import ExperimentConfig
from experiments.format import map_space
from experiments.paths import resolve_path
from experiments.reader import Experiment
from precompute.cli import main
from precompute.report_cmd import build_report
from precompute.runner import merged_stage_options
from precompute.stages.correlations import paired_maps
from tests.conftest import SHIPPED_MODEL

TINY = [
    "run", "--data", "samples", "--limit", "6", "--attacks", "pgd", "--eps", "8", "--attack-steps", "3",
    "--lam", "0.1", "--min-steps", "3", "--max-steps", "6", "--chunk-size", "3", "--batch-size", "3",
    "--permutations", "3", "--repairings", "1", "--bootstrap", "4", "--power-sizes", "2", "--power-repeats", "1",
    "--train-data", "samples", "--train-split", "test", "--train-limit", "10", "--class-min-steps", "1",
    "--class-max-steps", "2", "--class-batch-size", "4", "--class-chunk", "10", "--device", "cpu", "--quiet",
]  # fmt: skip
CASES = {  # id -> (extra options, the maps' expected (C, H, W))
    "fourier": ([], (3, 32, 32)),
    "phase": (["--basis", "phase"], (3, 32, 32)),
    "dct": (["--basis", "dct"], (3, 32, 32)),
    "wavelet-db2-L2": (["--basis", "wavelet", "--wavelet", "db2", "--wavelet-levels", "2"], (3, 32, 32)),
    "fourier-layer1": (["--layer", "layer1", "--adaptive-attacks", "pgd+bpda", "--adaptive-steps", "2"], (16, 32, 32)),
}
ATTACK = "pgd-8"


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module's cache root; its runs use one torch thread (on a shared 2-core machine two threads measured 30
    times slower for these tiny batches)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path_factory.mktemp("bases-cache")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=list(CASES))
def run(request: pytest.FixtureRequest, cache_root: Path) -> tuple[str, Path]:
    """(case id, experiment directory) of one tiny experiment, computed once per module."""
    extra, _ = CASES[request.param]
    before = set(cache_root.iterdir())
    assert main([*TINY, *extra, "--out", str(cache_root)]) == 0
    (path,) = set(cache_root.iterdir()) - before
    return request.param, path


def _config(path: Path) -> ExperimentConfig:
    return ExperimentConfig.from_dict(json.loads((path / "manifest.json").read_text())["config"])


def _model(config: ExperimentConfig) -> torch.nn.Module:
    return build_model(config.model, checkpoint=resolve_path(config.checkpoint), input_norm=config.input_norm)


def _array(path: Path, relpath: str) -> np.ndarray:
    return np.load(path / relpath, allow_pickle=False)


def test_manifest_records_basis_layer_and_map_shape(run: tuple[str, Path]) -> None:
    case, path = run
    manifest = json.loads((path / "manifest.json").read_text())
    config = _config(path)
    shape = CASES[case][1]
    assert (manifest["basis"], manifest["layer"], tuple(manifest["map_shape"])) == (
        config.map_basis().key, config.layer, shape)
    assert manifest["basis"] == case.split("-layer")[0]  # the case ids are the bases' keys
    assert map_space(manifest) == (manifest["basis"], manifest["layer"], shape)
    for relpath in ("maps/essential/maps.npy", f"maps/adversarial-{ATTACK}/maps.npy", f"class_maps/{ATTACK}/maps.npy"):
        assert tuple(manifest["arrays"][relpath]["shape"][1:]) == shape, relpath
    if config.layer == INPUT:  # the feature shape at layer1 is the reference: 16 channels of 32 × 32 (docs/BASES.md)
        assert shape == tuple(manifest["arrays"]["test/images.npy"]["shape"][1:])


def test_stored_maps_are_one_image_training_in_display_order(run: tuple[str, Path]) -> None:
    """The first essential map, taken back to natural order, equals a one-image train_maps in the same basis/layer."""
    _, path = run
    config = _config(path)
    basis, model = config.map_basis(), _model(config)
    positions = _array(path, "maps/essential/positions.npy")
    image = torch.from_numpy(_array(path, "test/images.npy")[positions[:1]]).float() / 255  # (1, 3, 32, 32)
    label = torch.from_numpy(_array(path, "test/labels.npy")[positions[:1]])
    settings = MapTrainConfig(lam=config.lam, lr=config.lr, min_steps=config.min_steps, max_steps=config.max_steps,
                              tol=config.tol)
    alone = train_maps(model, image, label, settings, batch_size=1, basis=basis, layer=config.layer)
    stored = torch.from_numpy(_array(path, "maps/essential/maps.npy")[:1])
    torch.testing.assert_close(basis.to_natural_order(stored), alone.maps, atol=1e-5, rtol=0)
    assert int(_array(path, "maps/essential/steps.npy")[0]) == int(alone.steps[0])


def _two_pass(model: torch.nn.Module, config: ExperimentConfig, images: torch.Tensor,
              natural_maps: torch.Tensor) -> np.ndarray:
    """The defence one image at a time: k = argmax f(x); then the rest of f on the layer's features filtered by M_k."""
    basis = config.map_basis()
    head, tail = split_at(model, config.layer)
    preds = []
    with torch.no_grad():
        for x in images.split(1):  # (1, 3, H, W)
            k = int(model(x).argmax())
            preds.append(int(tail(basis.apply(head(x), natural_maps[k : k + 1])).argmax()))
    return np.asarray(preds, np.int64)


def test_defended_predictions_equal_a_plain_two_pass_loop(run: tuple[str, Path]) -> None:
    _, path = run
    config = _config(path)
    model = _model(config)
    natural = config.map_basis().to_natural_order(torch.from_numpy(_array(path, f"class_maps/{ATTACK}/maps.npy")))
    rows = {"clean": torch.from_numpy(_array(path, "test/images.npy")).float() / 255,
            ATTACK: torch.from_numpy(_array(path, f"test/attacks/{ATTACK}/adversarial.npy"))}
    for row, images in rows.items():
        stored = _array(path, f"defence/{row}__{ATTACK}.npy")
        np.testing.assert_array_equal(stored, _two_pass(model, config, images, natural), err_msg=row)
    table = json.loads((path / "defence" / "table.json").read_text())
    labels = _array(path, "test/labels.npy")
    assert table["accuracy"][ATTACK][ATTACK] == pytest.approx((_array(path, f"defence/{ATTACK}__{ATTACK}.npy")
                                                               == labels).mean(), abs=1e-12)


def test_adaptive_stage_attacks_the_defence_at_the_layer(run: tuple[str, Path]) -> None:
    """The adaptive row's accuracy is its stored predictions' share correct, and each prediction is the two-pass
    defence of some image within ε of the clean one (here: the clean image itself where the attack failed)."""
    case, path = run
    if case != "fourier-layer1":
        pytest.skip("the adaptive attack runs in the layer case only (time)")
    table = json.loads((path / "defence" / "table.json").read_text())
    pred = _array(path, f"defence/{ATTACK}_bpda__{ATTACK}.npy")
    labels = _array(path, "test/labels.npy")
    assert table["adaptive"]["accuracy"][f"{ATTACK}+bpda"][ATTACK] == pytest.approx((pred == labels).mean(), abs=1e-12)
    linf = _array(path, f"defence/linf/{ATTACK}_bpda__{ATTACK}.npy")
    assert linf.max() <= 8 / 255 + 1e-6


def test_statistics_count_the_bases_nonredundant_coefficients(run: tuple[str, Path]) -> None:
    """The "half_spectrum" block is correlate() on the coefficients Basis.nonredundant keeps, selected here by hand:
    the Hermitian half for fourier and phase, every coefficient for dct and wavelet."""
    _, path = run
    config = _config(path)
    basis = config.map_basis()
    experiment = Experiment(str(path))
    stats = experiment.statistics(ATTACK)
    positions, essential, adversarial = paired_maps(experiment.store, "essential", f"adversarial-{ATTACK}", config.pool)
    keep = basis.nonredundant(*essential.shape[-2:]).numpy()  # (H, W) bool
    assert keep.sum() == (essential.shape[-1] ** 2 + 4) // 2 if case_is_fourier(basis.name) else keep.all()
    rows = [m[:, :, keep].reshape(len(m), -1).astype(np.float64) for m in (essential, adversarial)]
    reference = correlate(*rows, permutations=config.permutations, pool=config.pool,
                          seed=stats["seed"], repairings=config.repairings, strict=False, cka=True)
    half = stats["half_spectrum"]
    for key in ("cosine_mean", "svcca", "cka", "idcor", "p_value", "repaired_cosine_mean"):
        assert half[key] == pytest.approx(reference[key], abs=1e-12, nan_ok=True) if reference[key] is not None \
            else half[key] is None, key
    assert half["half_spectrum"] is True and len(positions) == stats["n"]


def case_is_fourier(name: str) -> bool:
    return name in ("fourier", "phase")


def test_report_names_the_basis_and_layer(run: tuple[str, Path]) -> None:
    case, path = run
    report = build_report(Experiment(str(path)))
    config = _config(path)
    shape = " × ".join(map(str, CASES[case][1]))
    where = "the input image" if config.layer == INPUT else f"the features of layer `{config.layer}`"
    assert f"Maps: basis `{config.map_basis().key}` on {where}, {shape}," in report


def test_a_later_run_records_its_stage_options(cache_root: Path) -> None:
    """`run ... --noise-ceiling` on an existing experiment adds the stages and says so in the manifest's config."""
    out = cache_root / "later"
    assert main([*TINY, "--attacks", "none", "--train-data", "none", "--out", str(out)]) == 0
    (path,) = out.iterdir()
    assert json.loads((path / "manifest.json").read_text())["config"]["noise_ceiling"] is False
    assert main([*TINY, "--attacks", "none", "--train-data", "none", "--noise-ceiling", "--out", str(out)]) == 0
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["config"]["noise_ceiling"] is True and manifest["stages"]["noise-ceiling"]["status"] == "complete"


@pytest.mark.parametrize(("done", "given", "expected"), [
    ({"attacks": ["fmn"], "eps": [8.0]}, {"attacks": ("pgd",), "eps": (4.0,)},
     {"attacks": ["fmn", "pgd"], "eps": [4.0, 8.0]}),
    ({"noise_ceiling": True}, {"noise_ceiling": False}, {"noise_ceiling": True}),
    ({}, {"noise_ceiling": True}, {"noise_ceiling": True}),
    ({}, {"robustness_curve": False}, {}),  # an older manifest gains a key only when the run sets it
    ({"class_attacks": None}, {"class_attacks": ("fmn",)}, {"class_attacks": None}),  # None: every unit
    ({"class_attacks": ["pgd-8"]}, {"class_attacks": ("fmn",)}, {"class_attacks": ["fmn", "pgd-8"]}),
    ({"adaptive_attacks": ["pgd+bpda"]}, {"adaptive_attacks": ("square+defended",)},
     {"adaptive_attacks": ["pgd+bpda", "square+defended"]}),
], ids=["attacks-eps", "switch-stays-on", "switch-added", "default-not-added", "all-wins", "class-union",
        "adaptive-union"])
def test_merged_stage_options(done: dict, given: dict, expected: dict) -> None:
    defaults = {"attacks": [], "eps": []}  # attacks and eps are always in a manifest; () adds nothing to them
    config = ExperimentConfig(**{"attacks": (), "eps": (), **given})
    merged = merged_stage_options({**defaults, **done}, config)
    assert merged == {**defaults, **expected}


@pytest.mark.parametrize(("args", "message"), [
    (["--basis", "haar"], r"expected --basis fourier \| phase \| dct \| wavelet, got 'haar'"),
    (["--basis", "wavelet", "--wavelet", "db9"], r"expected --wavelet haar \| db2, got 'db9'"),
    (["--layer", "layer9"], r"expected --layer input \| layer1 \| layer2 \| layer3 for --model resnet20, got 'layer9'"),
    (["--basis", "wavelet", "--wavelet-levels", "6"], r"expected at most 5 haar levels for 32 × 32 images"),
    (["--basis", "wavelet", "--wavelet", "db2", "--wavelet-levels", "4"], r"expected at most 3 db2 levels"),
    (["--basis", "wavelet", "--image-size", "33"],
     r"expected --basis fourier \| phase \| dct for the 3 × 33 × 33 maps at --layer input, got --basis wavelet"),
    (["--basis", "wavelet", "--layer", "layer3", "--wavelet-levels", "4"],
     r"--wavelet-levels 4 on the 64 × 8 × 8 maps at --layer layer3: expected at most 3 haar levels"),
    (["--model", "vit_b_16", "--layer", "layer1"], r"expected --layer input for --model vit_b_16 \(its blocks hold no"),
    (["--basis", "dct", "--wavelet", "db2"], r"expected --basis wavelet with --wavelet"),
    (["--layer", "layer1", "--bf16"], r"expected --layer input with --bf16"),
], ids=["unknown-basis", "unknown-wavelet", "unknown-layer", "level-too-deep", "db2-too-deep", "odd-size",
        "too-deep-at-layer", "vit-layer", "wavelet-option-without-wavelet", "bf16-at-layer"])
def test_bad_map_space_stops_before_work(args: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--data", "samples", "--checkpoint", str(SHIPPED_MODEL), *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_defended_classifier_refuses_a_layer_the_model_lacks() -> None:
    model = build_model("resnet20", checkpoint=str(SHIPPED_MODEL))
    from core.defended import DefendedClassifier

    with pytest.raises(ValueError, match=r"expected a layer in \['input', 'layer1', 'layer2', 'layer3'\]"):
        DefendedClassifier(model, torch.ones(10, 16, 32, 32), layer="layer4")
    defended = DefendedClassifier(model, torch.ones(10, 16, 32, 32), layer="layer1", basis=get_basis("dct"))
    with pytest.raises(ValueError, match=r"whose layer1 features have the class maps' shape \(16, 32, 32\)"):
        defended(torch.zeros(2, 3, 16, 16))
