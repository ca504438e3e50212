"""sha256 of a file's bytes: names a checkpoint inside an experiment's hash, and checks shipped files."""

from __future__ import annotations

import hashlib


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read `chunk` bytes at a time (checkpoints and maps can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
