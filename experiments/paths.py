"""Paths in configurations are kept relative where possible, so an experiment's hash (its
directory name) does not depend on where the repository was cloned."""

from __future__ import annotations

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resolve_path(path: str) -> str:
    """An existing path as given (absolute or relative to the working directory), else relative
    to the repository root (how presets name `../shared/...`); unchanged when neither exists."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    candidate = os.path.join(REPO, path)
    return candidate if os.path.exists(candidate) else path
