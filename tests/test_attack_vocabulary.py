"""One attack vocabulary and one cache format for every reader: keys grouped by attack (core/attack_keys.py),
stage names and paths from experiments/format.py against the layout of docs/CACHE.md typed out here, and no reader
that builds either by hand."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from core.attack_keys import attack_name, keys_of_attack
from experiments.format import (
    DEFENCE_TABLE,
    ESSENTIAL,
    TEST,
    TRAIN,
    adversarial_set,
    attack_dir,
    attack_stage,
    class_maps_dir,
    class_maps_stage,
    classify_dir,
    classify_stage,
    correlation_dir,
    correlation_json,
    correlation_stage,
    data_stage,
    images_path,
    keys_of_stages,
    labels_path,
    map_dir,
    maps_stage,
    meta_path,
    npy_path,
)
from tests.fake_experiment import write_fake_experiment

REPO = Path(__file__).resolve().parents[1]
KEYS = ["fmn", "pgd-1", "pgd-8", "pgd-8+bpda", "deepfool", "pgd-x", "newattack-2"]


def test_attack_name_and_keys_of_attack():
    assert [attack_name(k) for k in KEYS] == ["fmn", "pgd", "pgd", "pgd", "deepfool", "pgd-x", "newattack"]
    assert keys_of_attack(KEYS, "pgd") == ["pgd-1", "pgd-8", "pgd-8+bpda"]  # 'pgd-x' does not parse: not PGD
    assert keys_of_attack(KEYS, "pgd", plain=True) == ["pgd-1", "pgd-8"]
    assert keys_of_attack(KEYS, "fmn") == ["fmn"] and keys_of_attack(KEYS, "cw") == []


@pytest.mark.parametrize(("built", "layout"), [
    (data_stage(TEST), "test"),
    (classify_stage(TEST), "test-classify"),
    (attack_stage(TEST, "pgd-8"), "test-attack-pgd-8"),
    (attack_stage(TRAIN, "fmn"), "train-attack-fmn"),
    (maps_stage(ESSENTIAL), "maps-essential"),
    (maps_stage(adversarial_set("pgd-8")), "maps-adversarial-pgd-8"),
    (correlation_stage("deepfool"), "correlate-deepfool"),
    (class_maps_stage("fmn"), "class-maps-fmn"),
    (images_path(TEST), "test/images.npy"),
    (labels_path(TRAIN), "train/labels.npy"),
    (meta_path(TEST), "test/meta.json"),
    (npy_path(classify_dir(TEST), "probs"), "test/classify/probs.npy"),
    (npy_path(attack_dir(TEST, "pgd-8"), "adv_pred"), "test/attacks/pgd-8/adv_pred.npy"),
    (npy_path(map_dir(ESSENTIAL), "status"), "maps/essential/status.npy"),
    (npy_path(correlation_dir("fmn"), "null_ids"), "correlations/fmn/null_ids.npy"),
    (correlation_json("fmn"), "correlations/fmn.json"),
    (npy_path(class_maps_dir("pgd-8"), "maps"), "class_maps/pgd-8/maps.npy"),
    (DEFENCE_TABLE, "defence/table.json"),
], ids=lambda v: v)
def test_format_builds_the_documented_layout(built, layout):
    assert built == layout


def test_keys_of_stages_reads_back_the_keys_of_each_kind():
    stages = {"test": {"status": "complete"}, "test-attack-fmn": {"status": "complete"},
              "test-attack-pgd-8": {"status": "running"}, "train-attack-fmn": {"status": "complete"},
              "maps-essential": {"status": "complete"}, "maps-adversarial-fmn": {"status": "complete"},
              "class-maps-fmn": {"status": "complete"}, "correlate-fmn": {"status": "complete"}}
    assert keys_of_stages(stages, lambda k: attack_stage(TEST, k)) == ["fmn"]
    assert keys_of_stages(stages, lambda k: attack_stage(TEST, k), complete_only=False) == ["fmn", "pgd-8"]
    assert keys_of_stages(stages, maps_stage) == ["essential", "adversarial-fmn"]
    assert keys_of_stages(stages, class_maps_stage) == ["fmn"] == keys_of_stages(stages, correlation_stage)


def test_reader_finds_what_the_fake_experiment_wrote(tmp_path):
    """The reader's keys, map sets and arrays against the manifest read by plain string handling."""
    import json

    from experiments.reader import Experiment

    path = write_fake_experiment(str(tmp_path))
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    experiment = Experiment(path)
    complete = [name for name, info in manifest["stages"].items() if info.get("status") == "complete"]
    assert experiment.attack_keys == [n[len("test-attack-"):] for n in complete if n.startswith("test-attack-")]
    assert experiment.map_set_names() == [n[len("maps-"):] for n in complete if n.startswith("maps-")]
    for name in experiment.map_set_names():
        stored = sorted(p.split("/")[2][:-len(".npy")] for p in manifest["arrays"] if p.startswith(f"maps/{name}/"))
        assert sorted(experiment.map_set(name)) == stored
    for key in experiment.attack_keys:
        on_disk = np.load(Path(path) / "test" / "attacks" / key / "adv_pred.npy")
        np.testing.assert_array_equal(experiment.attack(key)["adv_pred"], on_disk)
        assert experiment.correlation(key)["n"] == json.loads((Path(path) / "correlations" / f"{key}.json").read_text())["n"]
    np.testing.assert_array_equal(experiment.pred(), np.load(Path(path) / "test" / "classify" / "pred.npy"))


# Readers of the cache: the app, the report and the other commands that open an experiment.
READERS = ["app.py", "experiments/reader.py", "ui/*.py", "pages/*.py",
           *[f"precompute/{name}_cmd.py" for name in ("report", "export", "prune", "list")]]
HAND_MADE = [
    re.compile(r"""["'](test|train)-(attack|classify)-?"""),  # stage names
    re.compile(r"""["'](maps|correlate|class-maps)-"""),
    re.compile(r"""f?["'](\{TEST\}|\{TRAIN\}|\{prefix\}|test|train|maps|correlations|class_maps|defence)/"""),  # paths
    re.compile(r"""(startswith|removeprefix|partition)\(["'](pgd|-)"""),  # attack keys parsed by hand
]


def test_no_reader_builds_stage_names_paths_or_attack_keys_by_hand():
    found = []
    for pattern in READERS:
        for file in sorted(REPO.glob(pattern)):
            for number, line in enumerate(file.read_text().splitlines(), start=1):
                found += [f"{file.relative_to(REPO)}:{number}: {line.strip()}" for rule in HAND_MADE if rule.search(line)]
    assert found == []
