"""Check a configuration before any work starts: every problem is one clear ValueError line.

`validate_config` checks the options themselves and together (cheap); `validate_data` then reads the data
sources the run will use (every image of a folder is decoded once), so a bad option or a bad
image stops the run before an experiment directory is created and nothing in the cache changes.
"""

from __future__ import annotations

import os

from core.attack_keys import ADAPTIVE_ATTACKS, attack_units
from core.data.datasets import DATASETS, check_source
from core.models.registry import MODELS, model_class_names
from experiments.config import ExperimentConfig
from experiments.options import check_options
from experiments.paths import resolve_path
from experiments.store import MANIFEST
from precompute.map_space import check_map_space
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
    """Raise ValueError/PermissionError for the first problem found; returns None when all is well.

    First every option's own check (its range or choices: experiments/options.py), then what involves
    several options or the disk: splits of the chosen data, paths, the models' fixed input sizes, the map's
    basis and layer (precompute/map_space.py), step ranges, bf16 settings, class attacks within this run's
    attack units, and --out.
    """
    check_options(config)
    _check_source("--data", config.data)
    _check_split("--split", config.data, config.split)
    if config.train_data is not None:
        _check_source("--train-data", config.train_data)
        _check_split("--train-split", config.train_data, config.train_split)
    if config.data_root is not None and not config.data_root:
        raise ValueError("expected --data-root to be a directory, got an empty string")
    if config.checkpoint is not None and not os.path.isfile(config.checkpoint):
        what = "a directory" if os.path.isdir(config.checkpoint) else "no such file"
        raise ValueError(f"expected --checkpoint to be a file, got {config.checkpoint!r} ({what})")
    spec = MODELS[config.model]
    if config.model in FIXED_INPUT_SIZE and config.image_size != spec.input_size:
        raise ValueError(f"expected --image-size {spec.input_size} for {config.model} (its only input size), got {config.image_size}")
    check_map_space(config)  # basis, wavelet options and layer against the model and the image size
    if not 1 <= config.min_steps <= config.max_steps:
        raise ValueError(f"expected 1 <= --min-steps <= --max-steps, got {config.min_steps} and {config.max_steps}")
    if not 0 <= config.class_min_steps <= config.class_max_steps:
        raise ValueError(
            f"expected 0 <= --class-min-steps <= --class-max-steps, got {config.class_min_steps} and {config.class_max_steps}"
        )
    if not config.bf16 and config.bf16_float32_steps != ExperimentConfig.bf16_float32_steps:
        raise ValueError("expected --bf16 with --bf16-float32-steps (without --bf16 every step is float32)")
    if config.class_attacks is not None:
        keys = [key for key, _, _ in attack_units(config.attacks, config.eps)]
        unknown = [k for k in config.class_attacks if k not in keys]
        if unknown:
            raise ValueError(f"expected --class-attacks from this run's attack units {keys}, got {unknown[0]!r}")
    _check_defence_attacks(config)
    _check_out(out_root)


def _check_defence_attacks(config: ExperimentConfig) -> None:
    """--adaptive-attacks and --robustness-curve attack the class-map defence: the run must train class maps."""
    wanted = [flag for flag, on in (("--adaptive-attacks", config.adaptive_attacks),
                                    ("--robustness-curve", config.robustness_curve),
                                    ("--effort-check", config.effort_check)) if on]
    if not wanted:
        return
    if config.effort_check and not any(ADAPTIVE_ATTACKS[a].attack == "pgd" for a in config.adaptive_attacks):
        pgd = sorted(a for a, spec in ADAPTIVE_ATTACKS.items() if spec.attack == "pgd")
        raise ValueError(f"expected --effort-check with an adaptive PGD attack in --adaptive-attacks ({', '.join(pgd)}), "
                         f"got {list(config.adaptive_attacks) or 'none'}")
    if config.train_data is None:
        raise ValueError(f"expected --train-data with {wanted[0]} (it attacks the class-map defence, which needs "
                         "class-level maps), got --train-data none")
    if not config.attacks or config.class_attacks == ():
        raise ValueError(f"expected an attack with class-level maps (--attacks, --class-attacks) for {wanted[0]}, "
                         "got none")


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
    checkpoint = resolve_path(config.checkpoint) if config.checkpoint else None
    classes = model_class_names(config.model, checkpoint)  # a folder's labels must follow the model's classes
    sources = [("--data", config.data, config.split, config.limit)]
    if config.train_data is not None and config.attacks:
        sources.append(("--train-data", config.train_data, config.train_split, config.train_limit))
    for option, source, split, limit in sources:
        try:
            check_source(resolve_path(source), split=split, limit=limit, root=config.data_root, classes=classes)
        except ValueError as err:
            raise ValueError(f"{option} {source}: {err}") from None
