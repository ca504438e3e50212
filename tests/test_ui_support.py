"""The app's support code: downloads, cache roots, checkpoint lookup, the live-work bound, filtering, defence."""

from __future__ import annotations

import csv
import hashlib
import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from experiments.config import ExperimentConfig
from ui.checkpoint import resolve_checkpoint
from ui.compute import cosine_context, defend, filter_image
from ui.downloads import csv_bytes, npy_bytes, npz_bytes, png_bytes
from ui.live import BusyError, live_slot
from ui.roots import DEMO_ROOT, cache_roots


def test_npy_and_npz_round_trip():
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(np.load(io.BytesIO(npy_bytes(array)), allow_pickle=False), array)
    with np.load(io.BytesIO(npz_bytes({"a": array})), allow_pickle=False) as data:
        np.testing.assert_array_equal(data["a"], array)


def test_png_is_enlarged_with_crisp_pixels():
    image = np.zeros((3, 4, 4))
    image[0, 1, 2] = 1.0
    picture = Image.open(io.BytesIO(png_bytes(image, scale=8)))
    assert picture.size == (32, 32)
    pixels = np.asarray(picture)
    assert pixels[8:16, 16:24].tolist() == [[[255, 0, 0]] * 8] * 8 and pixels.sum() == 64 * 255
    big = Image.open(io.BytesIO(png_bytes(np.zeros((3, 300, 300)))))
    assert big.size == (300, 300)


def test_csv_rows_and_missing_values():
    data = csv_bytes([{"a": 1, "b": None}, {"a": 2.5, "b": "x", "note": "n"}])
    assert list(csv.DictReader(io.StringIO(data.decode()))) == [{"a": "1", "b": "", "note": ""},
                                                                 {"a": "2.5", "b": "x", "note": "n"}]
    assert csv_bytes([]) == b""


def test_cache_roots_only_and_default(tmp_path):
    extra = [str(tmp_path / "a"), str(tmp_path / "b")]
    env = {"FMAPS_CACHE": ":".join(extra), "FMAPS_ONLY": "1"}
    assert cache_roots(env) == extra
    roots = cache_roots({"FMAPS_CACHE": extra[0]})
    assert roots[0] == DEMO_ROOT and roots[-1] == extra[0]
    assert len(roots) == len(set(roots))


def test_resolve_checkpoint_checks_the_hash(tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    path, note = resolve_checkpoint(ExperimentConfig(checkpoint=str(weights), checkpoint_sha256=good))
    assert path == str(weights) and "weights" in note
    with pytest.raises(FileNotFoundError, match="not on this machine"):
        resolve_checkpoint(ExperimentConfig(checkpoint=str(weights), checkpoint_sha256="0" * 64))
    assert resolve_checkpoint(ExperimentConfig(checkpoint=None))[0] is None


def test_live_slot_waits_then_runs():
    slots = threading.BoundedSemaphore(1)
    waited, order = [], []
    with live_slot(slots=slots):
        def second():
            with live_slot(lambda: waited.append(True), slots=slots):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.3)
        assert waited == [True] and order == []  # told to wait, not yet running
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]
    with live_slot(slots=slots):
        with pytest.raises(BusyError, match="no free slot"):
            with live_slot(slots=slots, limit_s=0.1):
                pass


def test_filter_image_identity_and_dc_only():
    image = np.random.default_rng(0).uniform(size=(3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(filter_image(image, np.ones_like(image)), image, atol=1e-6)
    dc = np.zeros_like(image)
    dc[:, 4, 4] = 1  # centred zero frequency only: every pixel becomes the channel mean
    np.testing.assert_allclose(filter_image(image, dc), np.broadcast_to(image.mean(axis=(1, 2), keepdims=True), image.shape),
                               atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 224, 224), (1, 7, 5)])
def test_numpy_filter_equals_the_torch_filter_the_maps_were_trained_with(shape):
    """ui.arrays.filter_by_map (numpy, for pages without torch) == core.fourier.apply_fourier_maps."""
    from core.fourier import apply_fourier_maps, to_natural_order
    from ui.arrays import filter_by_map

    rng = np.random.default_rng(sum(shape))
    image = rng.uniform(size=shape).astype(np.float32)
    map_display = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)  # sparse, centred
    expected = apply_fourier_maps(torch.from_numpy(image)[None].double(), to_natural_order(torch.from_numpy(map_display))[None].double())[0]
    np.testing.assert_allclose(filter_by_map(image, map_display), expected.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="expected a map of shape"):
        filter_by_map(image, map_display[..., :-1])


def test_home_picture_predictions_are_the_models_on_the_demos_real_images():
    """Home draws Fig. 1 without the model, from predictions stored with the maps: they must be what the
    shipped model says about the filtered images the page shows (float16 maps included)."""
    from experiments.reader import Experiment, find_experiments
    from ui.compute import classify
    from ui.loaders import _load_model, both_maps_positions, figure_one_rows

    (listing,) = [item for item in find_experiments([DEMO_ROOT], deep=False) if item.ok]
    experiment = Experiment(listing.path, verify=False)
    config = experiment.config
    model = _load_model(config.model, resolve_checkpoint(config)[0], config.input_norm, config.seed, len(experiment.classes))
    checked = 0
    for attack in experiment.attack_keys:
        rows = figure_one_rows(experiment, both_maps_positions(experiment, attack), attack)
        for row in rows:
            assert row["clean_pred"] == int(np.argmax(classify(model, row["clean"][None])))
            assert row["adv_pred"] == int(np.argmax(classify(model, row["adversarial"][None])))
            for name in ("essential", "adversarial"):
                said = int(np.argmax(classify(model, row[f"filtered_{name}"][None])))
                assert said == row[f"filtered_{name}_pred"], (attack, row["index"], name)
        checked += len(rows)
    assert checked >= 20


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(3 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_defend_matches_core_defended_predict():
    from core.class_maps import defended_predict
    from core.fourier import to_natural_order

    model = _Linear().eval()
    rng = np.random.default_rng(1)
    maps = rng.uniform(size=(3, 3, 8, 8)).astype(np.float32)  # centred, one per class
    for _ in range(5):
        image = rng.uniform(size=(3, 8, 8)).astype(np.float32)
        result = defend(model, image, maps)
        first, defended = defended_predict(model, torch.from_numpy(image)[None], to_natural_order(torch.from_numpy(maps)))
        assert result["first_pred"] == int(first[0]) and result["defended_pred"] == int(defended[0])
        np.testing.assert_array_equal(result["map"], maps[result["first_pred"]])
        assert result["defended_probs"].sum() == pytest.approx(1.0)


def test_cosine_context_ranks_the_pair_among_the_stored_ones():
    summary = {"positions": np.array([2, 5, 7, 9]), "cosine": np.array([0.10, 0.40, 0.25, 0.40]),
               "repaired_cosine_mean": 0.18, "pool": "none"}
    text = cosine_context(summary, 7)
    assert text == ("Stored for the tables: 0.250, rank 3 of 4 pairs of this attack (median 0.33); "
                    "maps of different images (re-paired) average 0.18.")
    assert cosine_context(summary, 5).startswith("Stored for the tables: 0.400, rank 1 of 4")  # ties share the top
    assert "pooled to 32×32" in cosine_context({**summary, "pool": "avg", "pool_size": 32}, 2)
    assert "re-paired" not in cosine_context({**summary, "repaired_cosine_mean": None}, 2)
    assert cosine_context(summary, 3) is None  # no pair stored for image 3
    assert cosine_context(None, 2) is None and cosine_context({"n": 2, "error": "only 2 images"}, 2) is None


def test_cached_readers_match_the_stored_correlation(tmp_path):
    from experiments.reader import Experiment
    from tests.fake_experiment import write_fake_experiment
    from ui.loaders import class_averages, paired_maps, repaired_cosines

    experiment = Experiment(write_fake_experiment(str(tmp_path)))
    for key in experiment.attack_keys:
        summary = experiment.correlation(key)
        pairs = paired_maps(experiment, key)
        np.testing.assert_array_equal(pairs["positions"], summary["positions"])
        values = repaired_cosines(experiment, key)
        assert len(values) == summary["repairings"] * summary["n"]
        assert values.mean() == pytest.approx(summary["repaired_cosine_mean"], rel=1e-9)  # same derangements
        averages = class_averages(experiment, key)
        labels = experiment.labels()
        for c in range(len(experiment.classes)):
            members = [i for i in summary["positions"] if labels[i] == c]
            assert averages["counts"][c] == len(members)
            if members:
                expected = np.mean([experiment.essential_map(i)[0].mean(axis=0) for i in members], axis=0)
                np.testing.assert_allclose(averages["essential"][c], expected, rtol=1e-6)


def test_train_live_on_a_real_image(akamaster_model, cifar_test_float):
    from ui.compute import train_live

    images, labels = cifar_test_float
    image, label = images[0].numpy(), int(labels[0])  # test image 0, a cat the model gets right
    stages = []
    views = train_live(akamaster_model, image, label, attack="pgd", eps=8 / 255, lam=0.1, min_steps=30, max_steps=60,
                       progress=lambda stage, fraction: stages.append((stage, fraction)))
    run = views.lab
    assert run.clean_pred == label and views.success and run.adv_pred != label
    assert (run.attack, run.eps, run.lam) == ("pgd", 8 / 255, 0.1)
    assert views.essential.shape == (3, 32, 32) and views.adversarial_map.shape == (3, 32, 32)
    for name, side, target in (("essential", views.clean, label), ("adversarial", views.adversarial, run.adv_pred)):
        assert 31 <= run.steps[name] <= 61
        assert int(np.argmax(side.filtered_probs)) == target  # a kept map keeps its target class
    e, a = views.essential.astype(np.float64).ravel(), views.adversarial_map.astype(np.float64).ravel()
    assert views.cosine == pytest.approx(float(e @ a / (np.linalg.norm(e) * np.linalg.norm(a))), rel=1e-12)
    maps_progress = [f for stage, f in stages if stage == "maps"]
    assert maps_progress == sorted(maps_progress) and maps_progress[-1] == 1.0  # the bar only moves forward


def _results_only_copy(root: str) -> str:
    """A fake experiment pruned as `python -m precompute prune DIR --drop train images maps` does."""
    from experiments.store import ExperimentStore
    from precompute.prune_cmd import PATTERNS
    from tests.fake_experiment import write_fake_experiment

    path = write_fake_experiment(root, name="pruned")
    store = ExperimentStore(path)
    for what in ("train", "images", "maps"):
        for pattern in PATTERNS[what]:
            store.drop(pattern)
    return path


def test_results_only_copy_is_detected_and_still_read(tmp_path):
    from experiments.format import ESSENTIAL
    from experiments.reader import Experiment, find_experiments
    from tests.fake_experiment import write_fake_experiment
    from ui.compute import image_numbers
    from ui.loaders import class_averages, paired_maps, repaired_cosines

    full = Experiment(write_fake_experiment(str(tmp_path / "full")))
    pruned = Experiment(_results_only_copy(str(tmp_path / "pruned")))
    assert not full.results_only and full.has_images and full.has_maps(ESSENTIAL)
    assert pruned.results_only and not pruned.has_images and not pruned.has_maps(ESSENTIAL)
    assert "test/images.npy" in pruned.dropped and pruned.maps_dropped and not full.maps_dropped
    [listing] = find_experiments([str(tmp_path / "pruned")])
    assert listing.ok and listing.results_only and listing.describe().endswith("(results only)")
    assert "adversarial" not in pruned.attack("fmn") and pruned.attack("fmn")["linf"].shape == (6,)
    assert pruned.essential_map(3)[0] is None and "dropped" in pruned.essential_map(3)[1]
    assert paired_maps(pruned, "fmn") == {} and class_averages(pruned, "fmn") == {}
    assert len(repaired_cosines(pruned, "fmn")) == 0
    numbers = image_numbers(pruned, 3, "fmn")
    summary = pruned.correlation("fmn")
    assert numbers["cosine"] == pytest.approx(float(summary["cosine"][list(summary["positions"]).index(3)]))
    assert numbers["linf"] == pytest.approx(float(full.attack("fmn")["linf"][3])) and numbers["success"]
    assert [row["status"] for row in numbers["maps"]] == ["map kept", "map kept"]
    assert numbers["maps"][0]["steps"] == 501 and numbers["maps"][0]["non-zero entries"] > 0
    failed = image_numbers(pruned, 1, "fmn")  # FMN failed on image 1: no adversarial map, no pair
    assert failed["cosine"] is None and failed["maps"][1]["steps"] is None and not failed["success"]


@pytest.mark.parametrize("config", [
    ExperimentConfig(name="cifar10-paper", data="../shared/data/cifar10/test-1000", checkpoint="../shared/models/x.th",
                     input_norm="imagenet", attacks=("deepfool", "fmn", "pgd"), eps=(8.0,), lam=0.5, train_data=None,
                     class_batch_size=32),
    ExperimentConfig(name="demo", data="samples", lam=0.02, train_data="../shared/data/cifar10/train-4000",
                     train_limit=500, class_batch_size=16, class_min_steps=200, chunk_size=20),
    ExperimentConfig(name="custom", model="resnet18", input_norm="imagenet", image_size=224, data="my images/val",
                     attacks=("pgd",), eps=(1.0, 3.5), lam=0.01, limit=10, class_attacks=("pgd-1",)),
    ExperimentConfig(name="demo", data="samples", lam=0.02, train_data="../shared/data/cifar10/train-4000",
                     train_limit=500, class_batch_size=16, class_min_steps=200, chunk_size=20, fold_batchnorm=False),
    ExperimentConfig(name="imagenette-resnet18", model="resnet18", input_norm="imagenet", data="imagenette", split="all",
                     image_size=224, eps=(8.0,), lam=0.01, map_dtype="float16", bf16=True),
    ExperimentConfig(name="demo", data="samples", lam=0.02, train_data="../shared/data/cifar10/train-4000",
                     train_limit=500, class_batch_size=16, class_min_steps=200, chunk_size=20, bf16=True,
                     bf16_float32_steps=100),
])
def test_rebuild_command_reproduces_the_configuration(config):
    import shlex

    from experiments.rebuild import rebuild_command
    from precompute.cli import build_parser
    from precompute.run_cmd import config_from_args

    command = rebuild_command(config)
    assert command.startswith("python -m precompute run")
    rebuilt = config_from_args(build_parser("run").parse_args(shlex.split(command)[3:]))
    assert rebuilt.hashed_dict() == config.hashed_dict()  # the same experiment directory
    assert sorted(rebuilt.attacks) == sorted(config.attacks) and rebuilt.class_attacks == config.class_attacks
    if "pgd" in config.attacks:
        assert sorted(rebuilt.eps) == sorted(config.eps)
    if config.name == "demo" and config.fold_batchnorm and not config.bf16:
        assert command == "python -m precompute run --preset demo"
    if not config.fold_batchnorm:
        assert command.endswith("--fold-batchnorm off")
    if config.bf16_float32_steps != 300:
        assert "--bf16-float32-steps 100" in command and "--bf16" in command.split()


def test_live_training_leaves_the_shared_model_in_eval_mode():
    """Lab trainings share the server's cached model: a training must not switch it to train mode
    (BatchNorm would then update its statistics on every later prediction, in every session)."""
    import torch
    from torch import nn

    from core.map_training import frozen_eval
    from ui.compute import StepCounter

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    counter = StepCounter(model, lambda t: None)
    assert not counter.training
    with frozen_eval(counter):
        counter(torch.rand(1, 3, 8, 8))
    assert not model.training and not model[1].training


def test_preset_class_attacks_follow_the_run_s_attacks():
    """cifar10-paper trains class maps for Table IV's attacks only; narrowing --attacks or --eps narrows them,
    `--class-attacks all` restores every attack unit."""
    from precompute.cli import build_parser
    from precompute.run_cmd import config_from_args

    def config(*argv: str):
        return config_from_args(build_parser("run").parse_args(["run", "--preset", "cifar10-paper", *argv]))

    assert config().class_attacks == ("fmn", "pgd-8", "deepfool")
    assert config("--attacks", "fmn", "pgd").class_attacks == ("fmn", "pgd-8")
    assert config("--eps", "3").class_attacks == ("fmn", "deepfool")
    assert config("--class-attacks", "all").class_attacks is None
    assert config("--class-attacks", "pgd-1").class_attacks == ("pgd-1",)


def test_fold_batchnorm_option_is_hashed_only_when_off():
    """Existing caches keep their names (folding has been the default); `--fold-batchnorm off`, the published
    arithmetic, is another experiment (tests/test_pipeline.py checks every stage that trains or attacks
    receives it)."""
    from experiments.config import ExperimentConfig

    on, off = ExperimentConfig(), ExperimentConfig(fold_batchnorm=False)
    assert "fold_batchnorm" not in on.hashed_dict() and off.hashed_dict()["fold_batchnorm"] is False
    assert on.config_hash() != off.config_hash()
    bf16 = ExperimentConfig(bf16=True)  # other arithmetic, other maps: never the float32 cache's directory
    assert "bf16" not in on.hashed_dict() and bf16.config_hash() != on.config_hash()
