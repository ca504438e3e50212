"""Check a configuration before any work starts: every problem is one clear ValueError line."""

from __future__ import annotations

import os

from core.attacks import ATTACKS
from core.data.datasets import DATASETS
from core.models.registry import MODELS
from experiments.config import ExperimentConfig
from experiments.paths import resolve_path


def _check_source(option: str, source: str) -> None:
    if source not in DATASETS and not os.path.isdir(resolve_path(source)):
        raise ValueError(f"expected {option} to be one of {sorted(DATASETS)} or an existing ImageFolder directory, got {source!r}")


def validate_config(config: ExperimentConfig, out_root: str) -> None:
    """Raise ValueError/PermissionError for the first problem found; returns None when all is well."""
    if config.model not in MODELS:
        raise ValueError(f"expected --model in {sorted(MODELS)}, got {config.model!r}")
    unknown = [a for a in config.attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"expected --attacks from {sorted(ATTACKS)} or none, got {unknown[0]!r}")
    for eps in config.eps:
        if not 0 < eps <= 255:
            raise ValueError(f"expected --eps in (0, 255] (units of 1/255), got {eps:g}")
    _check_source("--data", config.data)
    if config.train_data is not None:
        _check_source("--train-data", config.train_data)
    if config.checkpoint is not None and not os.path.isfile(config.checkpoint):
        raise ValueError(f"expected --checkpoint to be a file, got {config.checkpoint!r} (no such file)")
    if config.lam < 0 or config.class_lam < 0:
        raise ValueError(f"expected --lam >= 0, got {config.lam:g}")
    if not 1 <= config.min_steps <= config.max_steps:
        raise ValueError(f"expected 1 <= --min-steps <= --max-steps, got {config.min_steps} and {config.max_steps}")
    if config.limit is not None and config.limit < 1:
        raise ValueError(f"expected --limit >= 1, got {config.limit}")
    if config.class_attacks is not None:
        from precompute.stages.attack import attack_units

        keys = [key for key, _, _ in attack_units(config.attacks, config.eps)]
        unknown = [k for k in config.class_attacks if k not in keys]
        if unknown:
            raise ValueError(f"expected --class-attacks from this run's attack units {keys}, got {unknown[0]!r}")
    if config.batch_size < 0:  # 0 = auto
        raise ValueError(f"expected --batch-size auto or >= 1, got {config.batch_size}")
    if config.chunk_size < 1:
        raise ValueError(f"expected --chunk-size >= 1, got {config.chunk_size}")
    if config.class_chunk < 1:
        raise ValueError(f"expected --class-chunk >= 1, got {config.class_chunk}")
    if config.pool not in ("avg", "max"):
        raise ValueError(f"expected --pool avg or max, got {config.pool!r}")
    if config.map_dtype not in ("float32", "float16"):
        raise ValueError(f"expected map dtype float32 or float16, got {config.map_dtype!r}")
    if config.permutations < 1:
        raise ValueError(f"expected --permutations >= 1, got {config.permutations}")
    if os.path.exists(out_root) and not os.path.isdir(out_root):
        raise ValueError(f"expected --out to be a directory, got the file {out_root!r}")
    existing = out_root
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing or ".") or not os.access(existing or ".", os.W_OK):
        raise PermissionError(f"expected a writable directory for --out, got {out_root!r}")
