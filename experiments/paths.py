"""Paths in configurations are kept relative where possible, so an experiment's hash (its
directory name) does not depend on where the repository was cloned."""

from __future__ import annotations

import os

from core.paths import REPO


def resolve_path(path: str) -> str:
    """An existing path as given (absolute or relative to the working directory), else relative
    to the repository root (how presets name `../shared/...`); unchanged when neither exists."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    candidate = os.path.join(REPO, path)
    return candidate if os.path.exists(candidate) else path


def recorded_path(path: str, root: str | None = None) -> str:
    """`path` as a training record keeps it: as the user gave it, except that an absolute path inside `root`
    (default: the repository) becomes relative to it, so a record does not carry where the clone was.
    recorded_path("/clone/assets/m.pt", root="/clone") -> "assets/m.pt"; "../data/x" and "/data/x" stay."""
    if not os.path.isabs(path):
        return path
    root = os.path.abspath(REPO if root is None else root)
    inside = os.path.commonpath([os.path.abspath(path), root]) == root
    return os.path.relpath(path, root) if inside else path
