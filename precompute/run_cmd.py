"""`python -m precompute run`: compute an experiment (a preset, options, or both) into the cache.

Examples:
    python -m precompute run --preset demo
    python -m precompute run --preset cifar10-paper --limit 64 --device cuda
    torchrun --nproc-per-node 4 -m precompute run --preset cifar10-paper
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from core.models.checkpoints import CheckpointError, read_checkpoint
from core.models.registry import MODELS
from experiments.config import ExperimentConfig
from precompute.presets import PRESETS, get_preset
from precompute.runner import run_experiment
from precompute.validate import validate_config, validate_data

DEFAULT_OUT = "cache"

def batch_size_option(value: str) -> int:
    """`--batch-size auto|N`: 0 stands for auto (as many maps as fit; see core.autobatch)."""
    return 0 if value == "auto" else int(value)


batch_size_option.__name__ = "batch size (auto or a positive integer)"  # argparse names it in errors


def on_off(value: str) -> bool:
    """`on` | `off` -> True | False."""
    if value not in ("on", "off"):
        raise ValueError(value)
    return value == "on"


on_off.__name__ = "on or off"

# option name -> (config field, type); None values mean "not given" so presets keep theirs
_OVERRIDES = {
    "model": ("model", str),
    "checkpoint": ("checkpoint", str),
    "input_norm": ("input_norm", str),
    "data": ("data", str),
    "split": ("split", str),
    "data_root": ("data_root", str),
    "limit": ("limit", int),
    "image_size": ("image_size", int),
    "attack_steps": ("attack_steps", int),
    "lam": ("lam", float),
    "lr": ("lr", float),
    "min_steps": ("min_steps", int),
    "max_steps": ("max_steps", int),
    "tol": ("tol", float),
    "batch_size": ("batch_size", batch_size_option),
    "chunk_size": ("chunk_size", int),
    "train_data": ("train_data", str),
    "train_limit": ("train_limit", int),
    "class_lam": ("class_lam", float),
    "class_min_steps": ("class_min_steps", int),
    "class_max_steps": ("class_max_steps", int),
    "class_batch_size": ("class_batch_size", int),
    "pool": ("pool", str),
    "permutations": ("permutations", int),
    "repairings": ("repairings", int),
    "device": ("device", str),
    "class_chunk": ("class_chunk", int),
    "seed": ("seed", int),
    "fold_batchnorm": ("fold_batchnorm", on_off),
    "bf16_float32_steps": ("bf16_float32_steps", int),
}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="compute an experiment into the cache (resumable)")
    p.add_argument("--preset", help=f"one of {', '.join(PRESETS)}")
    for option, (_, kind) in _OVERRIDES.items():
        p.add_argument("--" + option.replace("_", "-"), dest=option, type=kind, default=None)
    p.add_argument("--attacks", nargs="+", help="any of fmn pgd deepfool, or none (essential maps only)")
    p.add_argument("--eps", nargs="+", type=float, help="PGD budgets in 1/255 units (default 8)")
    p.add_argument(
        "--class-attacks", nargs="+",
        help="attack units that get class-level maps and the defence, e.g. fmn pgd-8 deepfool, or all "
             "(default: the preset's, else all)",
    )
    p.add_argument(
        "--bf16", action="store_true",
        help="bfloat16 autocast for the classifier, its first convolution in float32, and the first "
             "--bf16-float32-steps (default 300) steps of every per-image map in float32 (for GPUs; faster, but "
             "single maps may differ from float32 ones: see the README)",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="cache root directory (default: ./cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summaries")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Preset values, then the options given on the command line."""
    values: dict = get_preset(args.preset) if args.preset else {}
    for option, (field, _) in _OVERRIDES.items():
        if getattr(args, option) is not None:
            values[field] = getattr(args, option)
    if args.attacks is not None:
        values["attacks"] = () if args.attacks == ["none"] else tuple(dict.fromkeys(args.attacks))
    if args.eps is not None:
        values["eps"] = tuple(args.eps)
    if args.class_attacks is not None:
        values["class_attacks"] = None if args.class_attacks == ["all"] else tuple(dict.fromkeys(args.class_attacks))
    elif values.get("class_attacks") is not None:  # the preset's choice, narrowed to the attacks this run has
        from precompute.stages.attack import attack_units

        try:
            units = attack_units(values.get("attacks", ExperimentConfig.attacks), values.get("eps", ExperimentConfig.eps))
        except ValueError:  # a bad --eps: validate_config reports it
            units = []
        values["class_attacks"] = tuple(k for k in values["class_attacks"] if k in {key for key, _, _ in units})
    if values.get("train_data") == "none":  # --train-data none: no class-level maps
        values["train_data"] = None
    if args.bf16:
        values["bf16"] = True
    if values.get("model", "resnet20") in MODELS:
        spec = MODELS[values.get("model", "resnet20")]
        values.setdefault("image_size", spec.input_size)
        values.setdefault("input_norm", _checkpoint_norm(values.get("checkpoint")) or spec.default_input_norm)
    known = {f.name for f in dataclasses.fields(ExperimentConfig)}
    return ExperimentConfig(**{k: v for k, v in values.items() if k in known})


def _checkpoint_norm(path: str | None) -> str | None:
    """The input normalisation a project checkpoint records (third-party files record none)."""
    if path is None or not os.path.isfile(path):
        return None
    try:
        return read_checkpoint(path).get("input_norm")
    except CheckpointError:
        return None  # reported properly when the model is built


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    validate_config(config, args.out)
    validate_data(config)  # decodes the data folders once: a bad image stops the run before the cache is touched
    store = run_experiment(config, args.out, quiet=args.quiet)
    print(store.path)
    return 0
