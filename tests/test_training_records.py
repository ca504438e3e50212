"""The shipped model's training records (assets/resnet20-cifar10.train.json, .train.log) name data and files
relative to the repository or by name: no paths of the machine that trained it, no notes about its development.

The checkpoint's own embedded record keeps the absolute paths the trainer wrote (rewriting the .pt would change
its sha256, which names every experiment built with it); the .json is that record with those paths shortened,
and the test holds it to that, field by field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"
MACHINE_PATH = re.compile(r"(?<![\w.])/(tmp|work|home|root|mnt|Users|var)/")
NOTES = re.compile(r"\b(sessions?|issues?|to[d]ay)\b", re.I)  # [d]: this file names no such note itself


def _leaves(record: object, path: str = "") -> dict[str, object]:
    """Every value of a nested record by its path, e.g. '.init.record.test_data'."""
    if isinstance(record, dict):
        return {k: v for key, value in record.items() for k, v in _leaves(value, f"{path}.{key}").items()}
    if isinstance(record, list):
        return {k: v for i, value in enumerate(record) for k, v in _leaves(value, f"{path}[{i}]").items()}
    return {path: record}


def test_the_checks_catch_what_they_look_for():
    assert MACHINE_PATH.search('"test_data": "/home/alice/data/cifar10/test-1000"')
    assert MACHINE_PATH.search("resuming from /tmp/r20/m.pt.state.pt")
    assert not MACHINE_PATH.search("../shared/data/cifar10/test-1000 and assets/resnet20-cifar10.pt")
    assert NOTES.search("(resumed across sessions)") and NOTES.search("fixed in advance (SESSION 2)")
    assert NOTES.search("as of TODAY") and not NOTES.search("obsessions, issued, TODAYs")  # whole words only


def test_the_records_name_no_machine_path_and_no_development_notes():
    for name in ("resnet20-cifar10.train.json", "resnet20-cifar10.train.log"):
        text = (ASSETS / name).read_text()
        assert not MACHINE_PATH.findall(text), name
        assert not NOTES.findall(text), (name, NOTES.findall(text))


def test_the_json_is_the_checkpoints_record_with_its_paths_shortened():
    embedded = _leaves(torch.load(ASSETS / "resnet20-cifar10.pt", weights_only=True, map_location="cpu")["record"])
    shipped = _leaves(json.loads((ASSETS / "resnet20-cifar10.train.json").read_text()))
    assert shipped.keys() == embedded.keys()
    differ = {key for key in shipped if shipped[key] != embedded[key]}
    assert differ and all(key.endswith(("_data", ".checkpoint")) for key in differ), sorted(differ)
    for key in differ:  # the same file: the recorded path ends with the shipped name (less a leading ../)
        assert embedded[key].endswith("/" + shipped[key].removeprefix("../")), (key, shipped[key], embedded[key])
