"""Remembered checksums: a listing re-reads only files that changed, and still finds every kind of damage."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from experiments import store as store_module
from experiments import verified as verified_module
from experiments.config import ExperimentConfig
from experiments.reader import find_experiments
from experiments.store import ExperimentStore
from experiments.verified import ENV, VerifiedFiles, default_path


def _new_store(root: Path) -> ExperimentStore:
    config = ExperimentConfig()
    store = ExperimentStore(str(root / config.experiment_id()))
    store.create(config.experiment_id(), config.to_dict(), {"config_hash": config.config_hash()})
    store.write_arrays("test", {"images": np.arange(96, dtype=np.uint8).reshape(2, 3, 4, 4), "labels": np.array([1, 2])})
    store.write_json("test/meta.json", {"ids": ["a", "b"], "classes": ["x", "y", "z"]})
    return store


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The relative names of the files the store reads to hash them, in order (the real hash still runs)."""
    names: list[str] = []
    real = store_module.sha256_file

    def counting(path: str) -> str:
        names.append("/".join(Path(path).parts[-2:]))
        return real(path)

    monkeypatch.setattr(store_module, "sha256_file", counting)
    return names


def _listing(root: Path, record: Path, racy_s: float = 0.0) -> list[str]:
    """One app-style listing with a record file -> the problems of the single experiment under `root`."""
    verified = VerifiedFiles(str(record), racy_s=racy_s)
    (listing,) = find_experiments([str(root)], deep=True, verified=verified)
    verified.save()
    return listing.problems


ALL = ["test/images.npy", "test/labels.npy", "test/meta.json"]


def test_second_listing_reads_nothing_and_a_rewrite_is_read_again(tmp_path: Path, hashed: list[str]) -> None:
    store = _new_store(tmp_path / "cache")
    record = tmp_path / "home" / "verified.json"
    assert _listing(tmp_path / "cache", record) == []
    assert sorted(hashed) == ALL and record.is_file()
    hashed.clear()
    assert _listing(tmp_path / "cache", record) == []
    assert hashed == []  # nothing changed: nothing read
    Path(store.full("test/labels.npy")).write_bytes(Path(store.full("test/labels.npy")).read_bytes())  # same bytes
    assert _listing(tmp_path / "cache", record) == []
    assert hashed == ["test/labels.npy"]  # rewritten: read again, still fine


def test_same_size_change_with_its_mtime_put_back_is_found(tmp_path: Path, hashed: list[str]) -> None:
    """The case an (size, mtime) check alone would miss: the change time cannot be set back."""
    store = _new_store(tmp_path / "cache")
    record = tmp_path / "verified.json"
    assert _listing(tmp_path / "cache", record) == []
    path = Path(store.full("test/images.npy"))
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    hashed.clear()
    (problem,) = _listing(tmp_path / "cache", record)
    assert "test/images.npy" in problem and "altered" in problem and hashed == ["test/images.npy"]
    hashed.clear()
    assert len(_listing(tmp_path / "cache", record)) == 1 and hashed == ["test/images.npy"]  # stays damaged


def test_truncation_missing_file_and_copies(tmp_path: Path, hashed: list[str]) -> None:
    store = _new_store(tmp_path / "cache")
    record = tmp_path / "verified.json"
    assert _listing(tmp_path / "cache", record) == []
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "cache", copy, copy_function=shutil.copy2)  # times kept, inodes new
    hashed.clear()
    assert _listing(copy, record) == []
    assert sorted(hashed) == ALL  # a copy is read in full once
    path = Path(store.full("test/images.npy"))
    path.write_bytes(path.read_bytes()[:-5])
    Path(store.full("test/meta.json")).unlink()
    problems = _listing(tmp_path / "cache", record)
    assert any("truncated" in p for p in problems) and any("meta.json: missing" in p for p in problems)


def test_new_files_are_not_remembered_until_they_are_old_enough(tmp_path: Path, hashed: list[str]) -> None:
    _new_store(tmp_path / "cache")
    record = tmp_path / "verified.json"
    assert _listing(tmp_path / "cache", record, racy_s=3600) == []
    hashed.clear()
    assert _listing(tmp_path / "cache", record, racy_s=3600) == []
    assert sorted(hashed) == ALL  # written within the racy window: read every time
    assert not record.exists()  # nothing to remember, nothing written


def test_damaged_or_unwritable_record_only_costs_rehashing(tmp_path: Path, hashed: list[str]) -> None:
    _new_store(tmp_path / "cache")
    record = tmp_path / "verified.json"
    record.write_text("{not json")
    assert _listing(tmp_path / "cache", record) == []
    assert json.loads(record.read_text())["version"] == 1  # replaced by a good one
    blocked = tmp_path / "a-file" / "verified.json"  # its directory cannot be created: a file is in the way
    (tmp_path / "a-file").write_text("")
    hashed.clear()
    assert _listing(tmp_path / "cache", blocked) == []
    assert sorted(hashed) == ALL and not blocked.exists()


def test_a_changed_manifest_checksum_is_not_trusted(tmp_path: Path, hashed: list[str]) -> None:
    store = _new_store(tmp_path / "cache")
    verified = VerifiedFiles(None, racy_s=0)
    full = store.full("test/labels.npy")
    stat = os.stat(full)
    verified.record(full, stat, "a" * 64)
    assert verified.matches(full, stat, "a" * 64) and not verified.matches(full, stat, "b" * 64)


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == str(tmp_path / "fmaps" / "verified.json")
    monkeypatch.setenv(ENV, "")
    assert default_path() is None
    monkeypatch.setenv(ENV, str(tmp_path / "x.json"))
    assert default_path() == str(tmp_path / "x.json")


def test_the_apps_listing_remembers_across_server_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         hashed: list[str]) -> None:
    from ui.loaders import list_experiments

    _new_store(tmp_path / "cache")
    monkeypatch.setenv(ENV, str(tmp_path / "home" / "verified.json"))
    monkeypatch.setattr(verified_module, "RACY_S", 0.0)
    roots = (str(tmp_path / "cache"),)
    for _start in range(2):  # a server start: an empty st.cache_data
        list_experiments.clear()
        (listing,) = list_experiments(roots, ("stamp",))
        assert listing.ok
        assert sorted(hashed) == ALL  # read at the first start only
    assert (tmp_path / "home" / "verified.json").is_file()
