"""Where the app looks for experiments, and how it finds the model an experiment was computed with.

Cache roots, in order: the shipped demo (assets/demo/), the shipped results-only reproductions
(assets/results/: numbers, per-pair cosines, null distributions; no images or maps), the user's cache (./cache, the default
output of `python -m precompute run`), then every directory in FMAPS_CACHE (os.pathsep-separated).
FMAPS_ONLY=1 keeps only the FMAPS_CACHE roots (tests, and servers that show one curated cache).
No Streamlit here: plain functions, tested directly.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Mapping

from experiments.config import ExperimentConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_ROOT = os.path.join(REPO, "assets", "demo")
RESULTS_ROOT = os.path.join(REPO, "assets", "results")
USER_ROOT = os.path.join(REPO, "cache")
BUILD_COMMAND = "python -m precompute run --preset demo"
BIG_COMMAND = "python -m precompute run --preset cifar10-paper"


# `precompute run` options that set a hashed configuration field (run settings such as --device are left out)
RUN_OPTIONS = ("model", "checkpoint", "input_norm", "data", "split", "data_root", "limit", "image_size", "attack_steps", "lam", "lr",
               "min_steps", "max_steps", "tol", "chunk_size", "train_data", "train_limit", "class_lam",
               "class_min_steps", "class_max_steps", "class_batch_size", "pool", "permutations", "repairings", "seed",
               "fold_batchnorm", "bf16_float32_steps")


def _arg(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return shlex.quote(text)


def rebuild_command(config: ExperimentConfig) -> str:
    """The `python -m precompute run` command that rebuilds an experiment in full: its preset (when its
    name is one), then every option whose value differs from what the preset alone would give."""
    from core.models.registry import MODELS
    from precompute.presets import PRESETS

    preset = PRESETS.get(config.name, {})
    base = ExperimentConfig(**{k: v for k, v in preset.items() if k in ExperimentConfig.__dataclass_fields__})
    spec = MODELS.get(config.model)
    if spec is not None:  # what `precompute run` fills in from the model when the preset leaves them open
        base.image_size = preset.get("image_size", spec.input_size)
        base.input_norm = preset.get("input_norm", spec.default_input_norm)
    parts = ["python -m precompute run"] + ([f"--preset {config.name}"] if preset else [])
    for option in RUN_OPTIONS:
        value, default = getattr(config, option), getattr(base, option)
        explicit = option == "input_norm" and config.checkpoint is not None  # a checkpoint may record its own
        if value is None and default is not None and option == "train_data":
            parts.append("--train-data none")
        elif value is not None and (value != default or explicit):
            parts.append(f"--{option.replace('_', '-')} {_arg(value)}")
    if sorted(config.attacks) != sorted(base.attacks):
        parts.append("--attacks " + (" ".join(config.attacks) or "none"))
    if "pgd" in config.attacks and sorted(config.eps) != sorted(base.eps):
        parts.append("--eps " + " ".join(_arg(float(e)) for e in config.eps))
    if config.bf16:
        parts.append("--bf16")
    if config.class_attacks != base.class_attacks:
        parts.append("--class-attacks " + (" ".join(config.class_attacks) if config.class_attacks is not None else "all"))
    return " ".join(parts)


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


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def resolve_checkpoint(config: ExperimentConfig) -> tuple[str | None, str]:
    """The weights file to load for an experiment, and a sentence about it.

    The manifest keeps the absolute path used when the experiment was built, which may not exist
    on this machine; the file is also looked for relative to the repository and in assets/ by
    name, and accepted only if its sha256 matches the one recorded. None: build the model without
    a checkpoint (resnet18 / vit_b_16 experiments built with random or backbone weights).
    """
    if config.checkpoint is None or config.checkpoint_sha256 == "random-or-backbone-weights":
        return None, "no classifier checkpoint: the backbone is rebuilt with the experiment's seed"
    name = os.path.basename(config.checkpoint)
    candidates = [config.checkpoint, os.path.join(REPO, config.checkpoint), os.path.join(REPO, "assets", name)]
    for candidate in dict.fromkeys(candidates):
        if not os.path.isfile(candidate):
            continue
        if config.checkpoint_sha256 and _sha256(candidate) != config.checkpoint_sha256:
            continue
        return candidate, f"weights {os.path.relpath(candidate, REPO) if candidate.startswith(REPO) else candidate}"
    raise FileNotFoundError(
        f"the model weights of this experiment ({name}, sha256 {config.checkpoint_sha256[:12] or '?'}) "
        f"are not on this machine; put the file in assets/ or rebuild the experiment"
    )
