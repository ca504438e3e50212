"""The cache store: atomic writes, checksums that catch damage, path safety, one writer at a time."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from experiments import store as store_module
from experiments.config import ExperimentConfig
from experiments.reader import Experiment, find_experiments
from experiments.store import CacheError, ExperimentStore, read_manifest


def _new_store(tmp_path: Path) -> ExperimentStore:
    config = ExperimentConfig()
    store = ExperimentStore(str(tmp_path / config.experiment_id()))
    store.create(config.experiment_id(), config.to_dict(), {"config_hash": config.config_hash()})
    store.write_arrays("test", {"images": np.zeros((2, 3, 4, 4), np.uint8), "labels": np.array([1, 2])})
    store.write_json("test/meta.json", {"ids": ["a", "b"], "classes": ["x", "y", "z"]})
    return store


def test_round_trip_and_clean_verify(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    assert store.verify() == []
    np.testing.assert_array_equal(store.load_array("test/labels.npy"), [1, 2])
    assert store.load_array("test/images.npy").shape == (2, 3, 4, 4)
    assert not list(Path(store.path).rglob("*.tmp-*"))


def test_truncated_array_is_detected(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    path = Path(store.full("test/images.npy"))
    path.write_bytes(path.read_bytes()[:-5])
    (problem,) = store.verify()
    assert "test/images.npy" in problem and "truncated" in problem


def test_altered_array_is_detected(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    path = Path(store.full("test/labels.npy"))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    (problem,) = store.verify()
    assert "test/labels.npy" in problem and "altered" in problem
    assert store.verify(deep=False) == []  # sizes alone cannot see it; the checksum does


def test_edited_manifest_is_detected(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    manifest = json.loads(Path(store.manifest_path).read_text())
    manifest["config"]["lam"] = 123.0
    Path(store.manifest_path).write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match="edited by hand"):
        read_manifest(store.path)
    (listing,) = find_experiments([str(tmp_path)])
    assert not listing.ok and "edited by hand" in listing.problems[0]


def test_damaged_experiment_is_skipped_but_others_listed(tmp_path: Path) -> None:
    good = _new_store(tmp_path / "a")
    bad = _new_store(tmp_path / "b")
    Path(bad.full("test/labels.npy")).unlink()
    listings = find_experiments([str(tmp_path / "a"), str(tmp_path / "b")])
    assert [item.ok for item in listings] == [True, False]
    assert "missing" in listings[1].problems[0]
    with pytest.raises(CacheError, match="damaged: test/labels.npy"):
        Experiment(bad.path)
    assert Experiment(good.path).n == 2


@pytest.mark.parametrize("relpath", ["../escape.npy", "/etc/passwd", "a/../../b.npy", "a b.npy", "", "./x.npy"])
def test_paths_cannot_leave_the_experiment(tmp_path: Path, relpath: str) -> None:
    store = _new_store(tmp_path)
    with pytest.raises(CacheError, match="relative path inside the experiment"):
        store.write_array(relpath, np.zeros(1))


def test_second_writer_is_refused(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    with store.lock(), pytest.raises(CacheError, match="another process is writing"):
        with ExperimentStore(store.path).lock():
            pass


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk in the middle of a write leaves the previous file and manifest untouched."""
    store = _new_store(tmp_path)
    before = Path(store.full("test/labels.npy")).read_bytes()
    manifest_before = Path(store.manifest_path).read_bytes()

    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.write_array("test/labels.npy", np.array([7, 7, 7]))
    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    assert Path(store.full("test/labels.npy")).read_bytes() == before
    assert Path(store.manifest_path).read_bytes() == manifest_before
    assert not list(Path(store.path).rglob("*.tmp-*"))
    assert ExperimentStore(store.path).verify() == []


def test_config_hash_ignores_run_settings_only() -> None:
    base = ExperimentConfig()
    assert ExperimentConfig(device="cuda", batch_size=7, attacks=("fmn",), eps=(1.0,)).config_hash() == base.config_hash()
    assert ExperimentConfig(lam=0.1).config_hash() != base.config_hash()
    assert ExperimentConfig.from_dict(base.to_dict()) == base


def test_attack_steps_change_the_hash_only_when_set() -> None:
    """A field added after caches were shipped: unset, the hash is the one those caches were named by."""
    base = ExperimentConfig()
    assert "attack_steps" not in base.hashed_dict()
    assert ExperimentConfig(attack_steps=None).config_hash() == base.config_hash()
    assert ExperimentConfig(attack_steps=5).config_hash() != base.config_hash()
    shipped = {k: v for k, v in base.to_dict().items() if k != "attack_steps"}  # a manifest written before the field
    assert ExperimentConfig.from_dict(shipped).config_hash() == base.config_hash()


def test_other_experiment_in_directory_is_refused(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    other = ExperimentConfig(lam=0.3)
    with pytest.raises(CacheError, match="holds experiment"):
        store.create(other.experiment_id(), other.to_dict(), {"config_hash": other.config_hash()})
