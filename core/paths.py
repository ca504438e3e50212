"""The repository root, computed once: every default path of the project (shipped assets, the user's
cache, torchvision data) is a folder under it, whatever the working directory.

No imports from the rest of the project, so any layer may use it.
"""

from __future__ import annotations

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this file is <repo>/core/paths.py


def repo_path(*parts: str) -> str:
    """An absolute path under the repository root: repo_path("assets", "demo") -> <repo>/assets/demo."""
    return os.path.join(REPO, *parts)


__all__ = ["REPO", "repo_path"]
