"""The paths a `train-model` record keeps (--data, --test-data, --init): as the user gave them, an absolute path
inside the repository relative to it, so a checkpoint's embedded record does not carry where the clone was."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.paths import recorded_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/clone/assets/m.pt", "assets/m.pt", id="absolute-inside"),
        pytest.param("/clone", ".", id="the-root-itself"),
        pytest.param("/clone/a/../b/data", "b/data", id="absolute-inside-with-dots"),
        pytest.param("/clone-other/data", "/clone-other/data", id="absolute-sibling-with-the-same-prefix"),
        pytest.param("/data/train", "/data/train", id="absolute-outside"),
        pytest.param("../shared/data/test-1000", "../shared/data/test-1000", id="relative-stays"),
        pytest.param("./train", "./train", id="relative-verbatim"),
    ],
)
def test_recorded_path_against_hand_written_table(path, expected):
    assert recorded_path(path, root="/clone") == expected


def test_train_model_record_keeps_paths_as_given(tmp_path, monkeypatch):
    """One tiny run with the three kinds of path; the checkpoint's embedded record and the .train.json beside it
    must both hold the strings below, written out by hand."""
    from PIL import Image

    import experiments.paths
    from core.models.checkpoints import read_checkpoint, save_checkpoint
    from core.models.resnet20 import ResNet20
    from precompute.cli import main

    repo, outside = tmp_path / "repo", tmp_path / "elsewhere"
    monkeypatch.setattr(experiments.paths, "REPO", str(repo))  # the repository root, as recorded_path reads it
    for folder in (repo / "data" / "train", repo / "data" / "test"):
        for k, cls in enumerate(["cat", "dog"]):
            (folder / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (32, 32), (60 * k + 20, 40 * i, 90)).save(folder / cls / f"{i}.png")
    outside.mkdir()
    start = outside / "start.pt"
    torch.manual_seed(0)
    save_checkpoint(str(start), ResNet20(10), "resnet20", "none", {"note": "the earlier run"})
    monkeypatch.chdir(repo / "data")
    out = repo / "out" / "m.pt"
    out.parent.mkdir()
    argv = ["train-model", "--data", str(repo / "data" / "train"), "--test-data", "./test", "--init", str(start),
            "--epochs", "1", "--batch-size", "4", "--lr", "1e-9", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0

    expected = {"train_data": "data/train", "test_data": "./test", "checkpoint": str(start)}
    for record in (read_checkpoint(str(out))["record"], json.loads((repo / "out" / "m.train.json").read_text())):
        got = {"train_data": record["train_data"], "test_data": record["test_data"],
               "checkpoint": record["init"]["checkpoint"]}
        assert got == expected
