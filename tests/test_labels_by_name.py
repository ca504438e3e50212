"""Labels follow class names: a data folder whose class folders carry the model's class names (CIFAR-10's,
Imagenette's or their WordNet ids, or those a project checkpoint records) keeps the true label indices, also
when some classes are absent; a folder with other names and another class count is refused in one line.

Foolbox's 20 bundled CIFAR-10 images hold 8 of the 10 classes (no bird, no deer): in ImageFolder order
they would be labelled 0..7, so they are the reference case (their file names carry the true labels)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.datasets import CIFAR10_CLASSES, IMAGENETTE_CLASSES, IMAGENETTE_WNIDS, check_source, load_dataset
from core.models.checkpoints import save_checkpoint
from core.models.registry import build_model, model_class_names
from core.models.resnet20 import ResNet20
from precompute.cli import main
from tests.conftest import SHIPPED_MODEL, cifar_sample_pngs


def samples_folder(root: Path, indices=range(20)) -> Path:
    """Foolbox's samples as an ImageFolder <class name>/<index>.png; labels only in the folder names."""
    for index in indices:
        path, label = cifar_sample_pngs()[index]
        (root / CIFAR10_CLASSES[label]).mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").save(root / CIFAR10_CLASSES[label] / f"{index:05d}.png")
    return root


def coloured_folder(root: Path, names: list[str], size: int = 8) -> Path:
    """One small PNG per class folder, each a different grey (k * 20) so the label's image can be told."""
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (size, size), (k * 20,) * 3).save(root / name / f"img{k}.png")
    return root


def true_labels(indices=range(20)) -> list[int]:
    return [cifar_sample_pngs()[i][1] for i in indices]


def test_eight_of_ten_cifar_classes_keep_their_label_indices(tmp_path):
    folder = samples_folder(tmp_path)
    assert len({p.name for p in folder.iterdir()}) == 8
    data = load_dataset(str(folder), classes=CIFAR10_CLASSES)
    assert data.ids == [str(i) for i in range(20)]
    assert data.labels.tolist() == true_labels()  # reference: the labels in Foolbox's file names
    assert data.classes == list(CIFAR10_CLASSES)  # the model's names in label order, all 10
    assert torch.equal(data.images, load_dataset("samples").images)
    plain = load_dataset(str(folder))  # without the model's names: ImageFolder order, as before
    assert plain.labels.max().item() == 7 and len(plain.classes) == 8
    check_source(str(folder), classes=CIFAR10_CLASSES)  # accepted before a run


def test_wordnet_id_folders_and_spelling_variants_follow_imagenette(tmp_path):
    names = [IMAGENETTE_WNIDS[9], IMAGENETTE_WNIDS[0], "chain_saw", "english-springer"]  # parachute, tench, 3, 1
    data = load_dataset(str(coloured_folder(tmp_path, names)), classes=IMAGENETTE_CLASSES)
    by_grey = {int(img[0, 0, 0]) // 20: label for img, label in zip(data.images, data.labels.tolist(), strict=True)}
    assert by_grey == {0: 9, 1: 0, 2: 3, 3: 1}  # folder k's image (grey 20k) -> its class's index
    assert data.classes == list(IMAGENETTE_CLASSES)


def test_registered_imagenette_with_some_classes_keeps_their_indices(tmp_path):
    for wnid in (IMAGENETTE_WNIDS[2], IMAGENETTE_WNIDS[7]):
        (tmp_path / "imagenette2" / "val" / wnid).mkdir(parents=True)
        Image.new("RGB", (40, 30), (9, 9, 9)).save(tmp_path / "imagenette2" / "val" / wnid / "a.JPEG")
    data = load_dataset("imagenette", split="val", root=str(tmp_path), size=16, classes=model_class_names("resnet18", None))
    assert data.labels.tolist() == [2, 7] and data.classes == list(IMAGENETTE_CLASSES)


def test_other_names_and_another_count_are_refused_with_both_lists(tmp_path):
    folder = coloured_folder(tmp_path / "fruit", ["apple", "pear", "plum"])
    expected = (f"got 3: ['apple', 'pear', 'plum']; the model's classes: {list(CIFAR10_CLASSES)}").replace("[", r"\[")
    for call in (lambda: load_dataset(str(folder), classes=CIFAR10_CLASSES),
                 lambda: check_source(str(folder), classes=CIFAR10_CLASSES)):
        with pytest.raises(ValueError, match=r"expected the classes of .*fruit' to carry the model's class names "
                                             r"or to number 10 \(one per output\), " + expected):
            call()
    with pytest.raises(ValueError, match="to number 10"):  # a folder that is only partly the model's names
        load_dataset(str(coloured_folder(tmp_path / "mixed", ["cat", "dog", "pear"])), classes=CIFAR10_CLASSES)


def test_other_names_with_one_class_per_output_keep_imagefolder_order(tmp_path):
    names = [f"class{k}" for k in range(10)]
    data = load_dataset(str(coloured_folder(tmp_path, names)), classes=CIFAR10_CLASSES)
    assert data.labels.tolist() == list(range(10)) and data.classes == names


def test_model_class_names_from_the_registry_and_from_checkpoints(tmp_path):
    assert model_class_names("resnet20", None) == CIFAR10_CLASSES
    assert model_class_names("resnet18", None) == model_class_names("vit_b_16", None) == IMAGENETTE_CLASSES
    assert model_class_names("vgg", None) is None
    assert model_class_names("resnet20", str(SHIPPED_MODEL)) == CIFAR10_CLASSES  # records none: the registry's
    third_party = tmp_path / "third-party.th"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ResNet20(10).state_dict().items()}}, third_party)
    assert model_class_names("resnet20", str(third_party)) == CIFAR10_CLASSES
    own = tmp_path / "own.pt"
    names = [f"shape{k}" for k in range(10)]
    save_checkpoint(str(own), ResNet20(10), "resnet20", "none", {}, classes=names)
    assert model_class_names("resnet20", str(own)) == tuple(names)
    build_model("resnet20", checkpoint=str(own))  # the extra entry does not disturb loading


def test_run_refuses_a_mismatched_folder_in_one_line(tmp_path, capsys):
    folder = coloured_folder(tmp_path / "fruit", ["apple", "pear", "plum"], size=32)
    out = tmp_path / "cache"
    assert main(["run", "--data", str(folder), "--limit", "2", "--attacks", "pgd", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --data {folder}: expected the classes"), err
    assert "['apple', 'pear', 'plum']" in err[0] and str(list(CIFAR10_CLASSES)) in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_run_stores_true_labels_and_the_model_s_class_names(tmp_path):
    """A run on the 8-class folder: labels.npy holds the true labels, meta.json the model's 10 names, and the
    clean accuracy is the model's own on those images (not the 20 % that labels 0..7 gave)."""
    from experiments.config import ExperimentConfig
    from experiments.reader import Experiment
    from precompute.runner import run_experiment

    folder = samples_folder(tmp_path / "data")
    config = ExperimentConfig(data=str(folder), attacks=(), train_data=None, device="cpu", min_steps=1, max_steps=1)
    store = run_experiment(config, str(tmp_path / "cache"), quiet=True)
    experiment = Experiment(store.path)
    assert experiment.labels().tolist() == true_labels()
    assert experiment.classes == list(CIFAR10_CLASSES)
    meta = json.loads((Path(store.path) / "test" / "meta.json").read_text())
    assert meta["classes"] == list(CIFAR10_CLASSES)
    model = build_model("resnet20", checkpoint=str(SHIPPED_MODEL))
    with torch.no_grad():
        by_hand = model(load_dataset("samples").images.float() / 255).argmax(1).numpy()  # (20,)
    assert np.array_equal(experiment.pred(), by_hand)
    assert (experiment.pred() == experiment.labels()).mean() == pytest.approx((by_hand == np.array(true_labels())).mean(), abs=0)
    assert (by_hand == np.array(true_labels())).mean() > 0.8


def test_train_model_labels_by_name_and_records_the_classes(tmp_path, capsys):
    from core.models.checkpoints import read_checkpoint

    folder = samples_folder(tmp_path / "train", [0, 1, 2, 3])  # cat, ship, ship, airplane
    out = tmp_path / "m.pt"
    common = ["train-model", "--epochs", "1", "--batch-size", "4", "--device", "cpu"]
    assert main([*common, "--data", str(folder), "--out", str(out)]) == 0
    assert read_checkpoint(str(out))["classes"] == list(CIFAR10_CLASSES)
    assert model_class_names("resnet20", str(out)) == CIFAR10_CLASSES
    fruit = coloured_folder(tmp_path / "fruit", ["apple", "pear"], size=32)
    assert main([*common, "--data", str(fruit), "--out", str(tmp_path / "f.pt")]) == 2
    assert re.search(r"error: expected the classes of .*fruit' .*\['apple', 'pear'\]", capsys.readouterr().err)
    assert not (tmp_path / "f.pt").exists()
