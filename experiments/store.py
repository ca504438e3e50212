"""The on-disk experiment directory (format in docs/CACHE.md): atomic writes, manifest, checksums.

Every file is written to a temporary name in the same directory and renamed into place, so a
killed process leaves either the old file or the new one, never half of one. The manifest lists
every array with its sha256, shape and dtype, and carries a checksum of itself, so a truncated
array, an altered array or an edited manifest is detected by `verify`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from stat import S_ISREG
from typing import Any

import numpy as np

from experiments.file_hash import sha256_file
from experiments.verified import VerifiedFiles

FORMAT_NAME = "fmaps-cache"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")


class CacheError(Exception):
    """A cache directory that is missing, damaged or not ours; the message says what to do."""


def safe_relpath(relpath: str) -> str:
    """Refuse paths that could leave the experiment directory ('..', absolute, odd characters)."""
    if not isinstance(relpath, str) or not _SAFE_PATH.match(relpath) or any(
        part in (".", "..") for part in relpath.split("/")
    ):
        raise CacheError(f"expected a relative path inside the experiment (letters, digits, . _ -), got {relpath!r}")
    return relpath


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` via a temporary file + fsync + rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON, without its own checksum field."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return _sha256_bytes(json.dumps(body, sort_keys=True).encode())


class ExperimentStore:
    """One experiment directory. Writers hold `lock()`; readers only need `verify()` and `load_*`."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._manifest: dict | None = None

    # ---------- manifest ----------
    @property
    def manifest_path(self) -> str:
        return os.path.join(self.path, MANIFEST)

    def exists(self) -> bool:
        return os.path.isfile(self.manifest_path)

    def create(self, experiment_id: str, config: dict, provenance: dict) -> None:
        """Start a new experiment directory (or keep an existing one with the same config)."""
        if self.exists():
            manifest = self.manifest()
            if manifest["config_hash"] != provenance["config_hash"]:
                raise CacheError(
                    f"{self.path} holds experiment {manifest['config_hash']}, not {provenance['config_hash']}: "
                    "choose another --out or remove that directory"
                )
            return
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "id": experiment_id,
            "config": config,
            "created": _now(),
            "updated": _now(),
            "stages": {},
            "arrays": {},
            "files": {},
            **provenance,
        }
        self._write_manifest(manifest)

    def manifest(self) -> dict:
        """The manifest, read once and then kept (writers update it through this object)."""
        if self._manifest is None:
            self._manifest = read_manifest(self.path)
        return self._manifest

    def reload(self) -> None:
        """Forget the kept manifest (another rank may have written a newer one)."""
        self._manifest = None

    def _write_manifest(self, manifest: dict) -> None:
        manifest["updated"] = _now()
        manifest["manifest_sha256"] = manifest_checksum(manifest)
        atomic_write_bytes(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode())
        self._manifest = manifest

    def update_manifest(self, **changes: Any) -> None:
        manifest = self.manifest()
        manifest.update(changes)
        self._write_manifest(manifest)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock: a second run of the same experiment fails instead of interleaving."""
        os.makedirs(self.path, exist_ok=True)
        fh = open(os.path.join(self.path, ".lock"), "w")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CacheError(f"another process is writing {self.path}; wait for it to finish") from None
            yield
        finally:
            fh.close()

    # ---------- stages ----------
    def stage_done(self, stage: str) -> bool:
        return self.manifest()["stages"].get(stage, {}).get("status") == "complete"

    def stage_info(self, stage: str) -> dict:
        return self.manifest()["stages"].get(stage, {})

    def mark_stage(self, stage: str, **info: Any) -> None:
        """Record a stage as complete with its timing and summary numbers."""
        manifest = self.manifest()
        manifest["stages"][stage] = {"status": "complete", "completed": _now(), **info}
        self._write_manifest(manifest)

    # ---------- arrays and JSON ----------
    def full(self, relpath: str) -> str:
        return os.path.join(self.path, safe_relpath(relpath))

    def _put_array(self, relpath: str, array: np.ndarray) -> None:
        """Write one .npy atomically and note it in the in-memory manifest."""
        array = np.ascontiguousarray(array)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        data = buffer.getvalue()
        atomic_write_bytes(self.full(relpath), data)
        self.manifest()["arrays"][relpath] = {
            "sha256": _sha256_bytes(data),
            "shape": list(array.shape),
            "dtype": str(array.dtype),
            "bytes": len(data),
        }

    def write_array(self, relpath: str, array: np.ndarray) -> None:
        """Atomically write one .npy and record its checksum, shape and dtype in the manifest."""
        self._put_array(relpath, array)
        self._write_manifest(self.manifest())

    def write_arrays(self, prefix: str, arrays: dict[str, np.ndarray]) -> None:
        """Several arrays as `prefix/<name>.npy`, then one manifest write."""
        for name, array in arrays.items():
            self._put_array(f"{prefix}/{name}.npy", array)
        self._write_manifest(self.manifest())

    def write_arrays_streamed(self, prefix: str, n_rows: int, blocks: Iterable[dict[str, np.ndarray]]) -> None:
        """Arrays as `prefix/<name>.npy`, written block by block along the first axis (then one manifest write).

        Each block holds the same names; the rows of all blocks add up to `n_rows`. Only one block is
        in memory at a time, so a stage can merge thousands of 3x224x224 maps into the cache with
        bounded memory. The files are byte-identical to `write_arrays` on the concatenated arrays.
        If anything fails, no file and no manifest entry changes.
        """
        writers: dict[str, _StreamedNpy] = {}
        try:
            for block in blocks:
                for name, array in block.items():
                    if name not in writers:
                        writers[name] = _StreamedNpy(self.full(f"{prefix}/{name}.npy"), n_rows, array)
                    writers[name].write(array)
                if set(block) != set(writers):
                    raise ValueError(f"expected every block to hold {sorted(writers)}, got {sorted(block)}")
            if not writers:
                raise ValueError(f"{prefix}: no blocks to write ({n_rows} rows expected)")
            entries = {name: writer.finish() for name, writer in writers.items()}
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        for name, writer in writers.items():
            writer.commit()
            self.manifest()["arrays"][f"{prefix}/{name}.npy"] = entries[name]
        self._write_manifest(self.manifest())

    def write_json(self, relpath: str, obj: Any) -> None:
        data = json.dumps(obj, indent=1, sort_keys=True).encode()
        atomic_write_bytes(self.full(relpath), data)
        manifest = self.manifest()
        manifest["files"][relpath] = {"sha256": _sha256_bytes(data), "bytes": len(data)}
        self._write_manifest(manifest)

    def has_array(self, relpath: str) -> bool:
        return relpath in self.manifest()["arrays"]

    def load_array(self, relpath: str, mmap: bool = True) -> np.ndarray:
        """A recorded array, memory-mapped by default (reading one row reads only that row)."""
        if relpath not in self.manifest()["arrays"]:
            raise CacheError(f"{self.path} has no array {relpath!r}")
        return np.load(self.full(relpath), mmap_mode="r" if mmap else None, allow_pickle=False)

    def load_json(self, relpath: str) -> Any:
        if relpath not in self.manifest()["files"]:
            raise CacheError(f"{self.path} has no file {relpath!r}")
        with open(self.full(relpath)) as fh:
            return json.load(fh)

    def drop(self, pattern: str) -> list[str]:
        """Delete every recorded file under the folder `pattern` or matching the glob `pattern`
        (e.g. "train": the training images of a shipped demo; "maps/*/maps.npy": the full-size
        maps of a results-only copy) and its manifest entries; the manifest lists the pattern
        under "dropped", so readers know the files are gone on purpose."""
        manifest = self.manifest()
        removed = []
        for table in ("arrays", "files"):
            for relpath in [k for k in manifest[table] if k.startswith(pattern + "/") or fnmatch.fnmatchcase(k, pattern)]:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.full(relpath))
                del manifest[table][relpath]
                removed.append(relpath)
        manifest["dropped"] = sorted(set(manifest.get("dropped", [])) | {pattern})
        self._write_manifest(manifest)
        if not any(ch in pattern for ch in "*?["):
            shutil.rmtree(self.full(pattern), ignore_errors=True)
        return removed

    # ---------- resumable chunks ----------
    def part_path(self, stage: str, chunk: int) -> str:
        return self.full(f"parts/{stage}/{chunk:05d}.npz")

    def has_part(self, stage: str, chunk: int) -> bool:
        return os.path.isfile(self.part_path(stage, chunk))

    def write_part(self, stage: str, chunk: int, arrays: dict[str, np.ndarray]) -> None:
        """One finished chunk of a stage (not in the manifest until the stage is merged)."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.part_path(stage, chunk), buffer.getvalue())

    def read_part(self, stage: str, chunk: int) -> dict[str, np.ndarray]:
        try:
            with np.load(self.part_path(stage, chunk), allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as err:  # a damaged part: drop it, it is recomputed
            os.remove(self.part_path(stage, chunk))
            raise FileNotFoundError(f"damaged part {stage}/{chunk} removed: {err}") from None

    def clear_parts(self, stage: str) -> None:
        shutil.rmtree(self.full(f"parts/{stage}"), ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(self.full("parts"))

    # ---------- integrity ----------
    def verify(self, deep: bool = True, verified: VerifiedFiles | None = None) -> list[str]:
        """Problems found, one readable line each (empty list: all good).

        deep=True re-hashes every file; deep=False checks presence and sizes only. `verified` (deep only):
        skip the files it knows matched their sha256 and have not changed since, and remember the ones
        hashed now (experiments/verified.py says what "not changed" means).
        """
        try:
            manifest = read_manifest(self.path)
        except CacheError as err:
            return [str(err)]
        problems = []
        entries = list(manifest.get("arrays", {}).items()) + list(manifest.get("files", {}).items())
        for relpath, info in entries:
            try:
                full = self.full(relpath)
                stat = os.stat(full)
            except CacheError as err:
                problems.append(str(err))
                continue
            except OSError:
                stat = None
            if stat is None or not S_ISREG(stat.st_mode):
                problems.append(f"{relpath}: missing")
            elif stat.st_size != info["bytes"]:
                problems.append(f"{relpath}: {stat.st_size} bytes, the manifest says {info['bytes']} (truncated?)")
            elif deep and not (verified is not None and verified.matches(full, stat, info["sha256"])):
                if sha256_file(full) != info["sha256"]:
                    problems.append(f"{relpath}: checksum differs from the manifest (file altered)")
                    if verified is not None:
                        verified.forget(full)
                elif verified is not None:
                    verified.record(full, stat, info["sha256"])
        return problems


class _StreamedNpy:
    """One .npy written row block by row block to a temporary file, hashed on the way, renamed at commit."""

    def __init__(self, path: str, n_rows: int, first_block: np.ndarray) -> None:
        self.path, self.tmp = path, f"{path}.tmp-{os.getpid()}"
        self.shape = (n_rows, *first_block.shape[1:])
        self.dtype = first_block.dtype
        self.rows = 0
        self.digest = hashlib.sha256()
        self.bytes = 0
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.fh = open(self.tmp, "wb")
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        )
        self._put(header.getvalue())

    def _put(self, data: bytes | memoryview) -> None:
        self.fh.write(data)
        self.digest.update(data)
        self.bytes += len(data)

    def write(self, block: np.ndarray) -> None:
        if block.shape[1:] != self.shape[1:] or block.dtype != self.dtype:
            raise ValueError(f"{self.path}: expected blocks of (n, {self.shape[1:]}) {self.dtype}, got {block.shape} {block.dtype}")
        if self.rows + len(block) > self.shape[0]:
            raise ValueError(f"{self.path}: more than the {self.shape[0]} rows announced")
        self._put(memoryview(np.ascontiguousarray(block)).cast("B"))
        self.rows += len(block)

    def finish(self) -> dict:
        """Flush and fsync the temporary file; the manifest entry it will get."""
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.path}: {self.rows} rows written, {self.shape[0]} announced")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        return {"sha256": self.digest.hexdigest(), "shape": list(self.shape), "dtype": str(self.dtype), "bytes": self.bytes}

    def commit(self) -> None:
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.fh.close()
        with contextlib.suppress(OSError):
            os.remove(self.tmp)


def read_manifest(path: str) -> dict:
    """Read and check a manifest: ours, a known version, and its own checksum intact."""
    manifest_path = os.path.join(path, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise CacheError(f"{path}: no {MANIFEST}; not an experiment directory (build one with python -m precompute run)")
    try:
        with open(manifest_path) as fh:
            manifest = json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CacheError(f"{manifest_path}: unreadable ({err}); rebuild the experiment with python -m precompute run") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CacheError(f"{manifest_path}: not a {FORMAT_NAME} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CacheError(
            f"{manifest_path}: format version {manifest.get('format_version')}, this code reads {FORMAT_VERSION}"
        )
    if manifest.get("manifest_sha256") != manifest_checksum(manifest):
        raise CacheError(
            f"{manifest_path}: the manifest was edited by hand (its checksum does not match); "
            "restore it or rebuild the experiment with python -m precompute run"
        )
    return manifest
