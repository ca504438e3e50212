"""Check a configuration before any work starts: every problem is one clear ValueError line.

`validate_config` checks the options themselves (cheap); `validate_data` then reads the data
sources the run will use (every image of a folder is decoded once), so a bad option or a bad
image stops the run before an experiment directory is created and nothing in the cache changes.
"""

from __future__ import annotations

import math
import os

from core.attacks import ATTACKS
from core.data.datasets import DATASETS, check_source
from core.models.registry import MODELS
from experiments.config import HASHED_ONLY_IF_SET, ExperimentConfig
from experiments.paths import resolve_path
from experiments.store import MANIFEST
from precompute.writable import check_writable_dir

# models whose architecture only accepts its own input size (torchvision's ViT asserts it)
FIXED_INPUT_SIZE = frozenset({"vit_b_16"})


def _check_source(option: str, source: str) -> None:
    if not source:
        raise ValueError(f"expected {option} to be one of {sorted(DATASETS)} or an ImageFolder directory, got an empty string")
    if source not in DATASETS and not os.path.isdir(resolve_path(source)):
        raise ValueError(f"expected {option} to be one of {sorted(DATASETS)} or an existing ImageFolder directory, got {source!r}")


def _check_split(option: str, source: str, split: str) -> None:
    if source in DATASETS and split not in DATASETS[source].splits:
        raise ValueError(f"expected {option} in {list(DATASETS[source].splits)} for {source}, got {split!r}")


def _finite(option: str, value: float, low: float, strict: bool = False) -> None:
    """value must be a finite number >= low (> low when strict)."""
    ok = math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise ValueError(f"expected {option} {'>' if strict else '>='} {low:g} (a finite number), got {value:g}")


def _enclosing_experiment(path: str) -> str | None:
    """The experiment directory `path` is (or lies inside), if any: a cache root must not be one."""
    current = os.path.abspath(path)
    while True:
        if os.path.isfile(os.path.join(current, MANIFEST)):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


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
    _check_split("--split", config.data, config.split)
    if config.train_data is not None:
        _check_source("--train-data", config.train_data)
        _check_split("the train split", config.train_data, config.train_split)
    if config.data_root is not None and not config.data_root:
        raise ValueError("expected --data-root to be a directory, got an empty string")
    if config.checkpoint is not None and not os.path.isfile(config.checkpoint):
        what = "a directory" if os.path.isdir(config.checkpoint) else "no such file"
        raise ValueError(f"expected --checkpoint to be a file, got {config.checkpoint!r} ({what})")
    if config.image_size < 1:
        raise ValueError(f"expected --image-size >= 1, got {config.image_size}")
    spec = MODELS[config.model]
    if config.model in FIXED_INPUT_SIZE and config.image_size != spec.input_size:
        raise ValueError(f"expected --image-size {spec.input_size} for {config.model} (its only input size), got {config.image_size}")
    _finite("--lam", config.lam, 0)
    _finite("--class-lam", config.class_lam, 0)
    _finite("--lr", config.lr, 0, strict=True)
    _finite("--tol", config.tol, 0)
    _finite("the class-map tol", config.class_tol, 0)
    if not 1 <= config.min_steps <= config.max_steps:
        raise ValueError(f"expected 1 <= --min-steps <= --max-steps, got {config.min_steps} and {config.max_steps}")
    if not 0 <= config.class_min_steps <= config.class_max_steps:
        raise ValueError(
            f"expected 0 <= --class-min-steps <= --class-max-steps, got {config.class_min_steps} and {config.class_max_steps}"
        )
    if config.bf16_float32_steps < 0:
        raise ValueError(f"expected --bf16-float32-steps >= 0 (0: every step in bf16), got {config.bf16_float32_steps}")
    if not config.bf16 and config.bf16_float32_steps != HASHED_ONLY_IF_SET["bf16_float32_steps"]:
        raise ValueError("expected --bf16 with --bf16-float32-steps (without --bf16 every step is float32)")
    if config.attack_steps is not None and config.attack_steps < 1:
        raise ValueError(f"expected --attack-steps >= 1 (leave it out for each attack's default), got {config.attack_steps}")
    if config.class_batch_size < 1:
        raise ValueError(f"expected --class-batch-size >= 1, got {config.class_batch_size}")
    if config.limit is not None and config.limit < 1:
        raise ValueError(f"expected --limit >= 1, got {config.limit}")
    if config.train_limit is not None and config.train_limit < 1:
        raise ValueError(f"expected --train-limit >= 1, got {config.train_limit}")
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
    if config.repairings < 0:
        raise ValueError(f"expected --repairings >= 0, got {config.repairings}")
    _check_out(out_root)


def _check_out(out_root: str) -> None:
    if not out_root:
        raise ValueError("expected --out to be a cache root directory, got an empty string")
    if os.path.exists(out_root) and not os.path.isdir(out_root):
        raise ValueError(f"expected --out to be a directory, got the file {out_root!r}")
    experiment = _enclosing_experiment(out_root)
    if experiment is not None:
        where = "the experiment directory" if experiment == os.path.abspath(out_root) else "a folder inside the experiment"
        raise ValueError(
            f"expected --out to be a cache root (the folder that holds experiments), got {where} {experiment!r}; "
            f"use {os.path.dirname(experiment)!r}"
        )
    check_writable_dir(out_root)


def validate_data(config: ExperimentConfig) -> None:
    """Read the data sources the run will use, as it will read them, and refuse bad ones (ValueError).

    Folders: every image within --limit / --train-limit is decoded once (not an image, empty,
    truncated, too large...). Registered data sets: split and files present. Training data is only
    checked when the run will use it (attacks given).
    """
    sources = [("--data", config.data, config.split, config.limit)]
    if config.train_data is not None and config.attacks:
        sources.append(("--train-data", config.train_data, config.train_split, config.train_limit))
    for option, source, split, limit in sources:
        try:
            check_source(resolve_path(source), split=split, limit=limit, root=config.data_root)
        except ValueError as err:
            raise ValueError(f"{option} {source}: {err}") from None
