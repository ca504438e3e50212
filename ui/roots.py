"""Where the app looks for experiments.

Cache roots, in order: the shipped demo (assets/demo/), the shipped results-only reproductions
(assets/results/: numbers, per-pair cosines, null distributions; no images or maps), the user's cache (./cache, the default
output of `python -m precompute run`), then every directory in FMAPS_CACHE (os.pathsep-separated).
FMAPS_ONLY=1 keeps only the FMAPS_CACHE roots (tests, and servers that show one curated cache).
No Streamlit here: plain functions, tested directly. The command that rebuilds an experiment is
experiments/rebuild.py; the weights an experiment was computed with, ui/checkpoint.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from core.paths import repo_path

DEMO_ROOT = repo_path("assets", "demo")
RESULTS_ROOT = repo_path("assets", "results")
USER_ROOT = repo_path("cache")
BUILD_COMMAND = "python -m precompute run --preset demo"
BIG_COMMAND = "python -m precompute run --preset cifar10-paper"


def cache_roots(environ: Mapping[str, str] | None = None) -> list[str]:
    """Absolute cache roots to list, without duplicates, in display order."""
    environ = os.environ if environ is None else environ
    extra = [os.path.abspath(p) for p in environ.get("FMAPS_CACHE", "").split(os.pathsep) if p.strip()]
    if environ.get("FMAPS_ONLY", "") in ("1", "true", "yes"):
        roots = extra
    else:
        roots = [DEMO_ROOT, RESULTS_ROOT, USER_ROOT, os.path.abspath("cache"), *extra]
    return list(dict.fromkeys(roots))


def roots_stamp(roots: list[str]) -> tuple:
    """Modification times of each root and each manifest under it: changes when experiments change."""
    stamp = []
    for root in roots:
        if not os.path.isdir(root):
            continue
        stamp.append((root, os.stat(root).st_mtime_ns))
        for name in sorted(os.listdir(root)):
            manifest = os.path.join(root, name, "manifest.json")
            if os.path.isfile(manifest):
                stamp.append((manifest, os.stat(manifest).st_mtime_ns))
    return tuple(stamp)


def manifest_stamp(path: str) -> int:
    """Modification time of one experiment's manifest (0 if missing): the key of its cached readers."""
    try:
        return os.stat(os.path.join(path, "manifest.json")).st_mtime_ns
    except OSError:
        return 0
