"""Run one experiment stage by stage, skipping what the cache already holds (see README).

Order: data -> classify -> attacks (per attack and eps) -> essential maps -> adversarial maps
-> correlations -> statistics (intervals, within-class nulls, CKA, half spectrum, power) -> the noise ceiling
(optional) -> class-level maps (train split) -> defence evaluation -> adaptive attacks on the defence and the
robustness curves (optional).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import fields

import numpy as np
import torch
from torch import nn

from core.compiled_step import resolve_compile
from core.devices import resolve_device
from core.models.registry import build_model, default_checkpoint_path
from core.paths import REPO
from experiments.config import ExperimentConfig
from experiments.file_hash import sha256_file
from experiments.format import ESSENTIAL, TEST, TRAIN, adversarial_set, classify_dir, npy_path
from experiments.option_spec import STAGES
from experiments.paths import resolve_path
from experiments.store import ExperimentStore
from precompute.bf16 import Bf16Classifier
from precompute.distributed import DistContext, init_distributed
from precompute.map_space import map_shape, map_space_record
from precompute.progress import Progress
from precompute.stages.adaptive import run_adaptive_stages
from precompute.stages.attack import attack_units, run_attack_stage
from precompute.stages.class_maps import run_class_map_stage
from precompute.stages.classify import run_classify_stage
from precompute.stages.context import StageContext
from precompute.stages.correlations import run_correlation_stage
from precompute.stages.data import run_data_stage
from precompute.stages.defence import run_defence_stage
from precompute.stages.maps import run_map_stage
from precompute.stages.noise_ceiling import run_noise_ceiling_stages
from precompute.stages.pruned import maps_pruned, restore_test_images
from precompute.stages.statistics import run_statistics_stage


def provenance(config: ExperimentConfig, device: torch.device) -> dict:
    """Versions, git commit and machine, saved in the manifest beside the results."""
    import foolbox
    import torchvision

    try:
        commit = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "config_hash": config.config_hash(),
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "foolbox": foolbox.__version__,
            "numpy": np.__version__,
        },
        "git_commit": commit,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "machine": f"{platform.node()} {platform.machine()}",
        "cpu": cpu_description(),
        "float32_arithmetic": float32_arithmetic(device),
        "map_order": map_order(config),
        "map_dtype": config.map_dtype,
        **map_space_record(config),  # "basis", "layer", "map_shape": where the maps act (precompute/map_space.py)
    }


def map_order(config: ExperimentConfig) -> str:
    """How the stored maps are ordered: the basis's display order (core.bases), e.g. Fourier's fftshift."""
    basis = config.map_basis()
    _, height, width = map_shape(config)
    layout = basis.layout(height, width)
    if layout.name == "centred spectrum":  # fourier and phase
        return "fftshift (zero frequency at [H//2, W//2])"
    return f"{layout.name} ({basis.key}: origin at [{layout.origin[0]}, {layout.origin[1]}])"


def float32_arithmetic(device: torch.device) -> str:
    """What float32 computation meant for this run, e.g. 'float32' or 'convolutions TF32, matmuls float32'.

    Why it is recorded: on Ampere and newer GPUs torch computes float32 convolutions with TF32 tensor cores
    by default (`torch.backends.cudnn.allow_tf32`), 10 mantissa bits instead of 23. Emulated on a CPU that
    moved about as many λ = 0.5 maps as float32 under another operation order (15 and 11 of 96,
    bench/bench_precision.py), but a GPU cache and a CPU one are then not the same arithmetic. The GPU may
    lack TF32; these are the flags.
    """
    if device.type != "cuda":
        return "float32"
    conv = "TF32" if torch.backends.cudnn.allow_tf32 else "float32"
    matmul = "TF32" if torch.backends.cuda.matmul.allow_tf32 else "float32"
    return f"convolutions {conv}, matmuls {matmul}"


def cpu_description() -> str:
    """The CPU's model name and the instruction set torch's kernels use, e.g. 'AMD EPYC, AVX512'.

    Why it is recorded: a rebuild is bit-for-bit only on the same kind of CPU. Another CPU's kernels round
    differently (1e-7 in the demo's probabilities), and minimum-norm attacks and sparse maps amplify that.
    """
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}"


def prepare_config(config: ExperimentConfig) -> ExperimentConfig:
    """Fill in the default checkpoint and its hash (the hash, not the path, names the experiment)."""
    if config.checkpoint is None:
        if config.model != "resnet20":
            config.checkpoint_sha256 = "random-or-backbone-weights"
            return config
        config.checkpoint = os.path.relpath(default_checkpoint_path(), REPO)  # relative: see experiments/paths.py
        if not os.path.isfile(resolve_path(config.checkpoint)):
            raise ValueError(f"the shipped model {config.checkpoint!r} is missing; pass --checkpoint PATH")
    config.checkpoint_sha256 = sha256_file(resolve_path(config.checkpoint))
    return config


def load_classifier(config: ExperimentConfig, device: torch.device) -> nn.Module:
    checkpoint = resolve_path(config.checkpoint) if config.checkpoint else None
    model = build_model(config.model, checkpoint=checkpoint, input_norm=config.input_norm).to(device)
    return Bf16Classifier(model, device.type).eval() if config.bf16 else model


def run_experiment(config: ExperimentConfig, out_root: str, quiet: bool = False) -> ExperimentStore:
    """Compute every missing stage of `config` under `out_root/<experiment id>`; returns the store."""
    dist_ctx: DistContext = init_distributed()
    try:
        return _run(config, out_root, quiet, dist_ctx)
    finally:
        dist_ctx.close()


def _run(config: ExperimentConfig, out_root: str, quiet: bool, dist_ctx: DistContext) -> ExperimentStore:
    config = prepare_config(config)
    device = resolve_device(dist_ctx.device_for(config.device))
    resolve_compile(config.compile, device, 0)  # --compile on without a compiler: stop before any work
    torch.manual_seed(config.seed)
    model = load_classifier(config, device)
    if config.batch_size == 0:  # --batch-size auto: as many maps as fit half the free memory
        from core.autobatch import auto_map_batch_size

        config.batch_size = auto_map_batch_size(model, (3, config.image_size, config.image_size), device)
    store = ExperimentStore(os.path.join(out_root, config.experiment_id()))
    progress = Progress(quiet=quiet, rank=dist_ctx.rank)
    if dist_ctx.is_main:
        store.create(config.experiment_id(), config.to_dict(), provenance(config, device))
        _record_map_space(store, config)
    dist_ctx.barrier()
    store.reload()
    ctx = StageContext(config, store, model, device, dist_ctx, progress)
    start = time.perf_counter()
    progress.note(f"experiment {store.path} (maps trained {config.batch_size} at a time on {device})")
    run_stages(ctx)
    if dist_ctx.is_main:
        _record_run(store, config, time.perf_counter() - start)
        progress.note(f"done in {time.perf_counter() - start:.1f}s: {store.path}")
    return store


def run_stages(ctx: StageContext) -> None:
    """Every stage of the experiment in order; each returns at once when the cache already holds it."""
    config = ctx.config
    run_data_stage(ctx, TEST, config.data, config.split, config.limit)
    run_classify_stage(ctx, TEST)
    units = attack_units(config.attacks, config.eps)
    for key, name, eps in units:
        run_attack_stage(ctx, TEST, key, name, eps)
    run_map_stage(ctx, ESSENTIAL, None)
    for key, _, _ in units:
        run_map_stage(ctx, adversarial_set(key), key)
    for key, _, _ in units:
        run_correlation_stage(ctx, key)
    for key, _, _ in units:
        if not maps_pruned(ctx.store, ESSENTIAL, adversarial_set(key)):  # a results-only copy without its maps
            run_statistics_stage(ctx, key)
    if config.noise_ceiling:
        run_noise_ceiling_stages(ctx)
    if config.train_data is None or not units:
        return
    run_data_stage(ctx, TRAIN, config.train_data, config.train_split, config.train_limit)
    run_classify_stage(ctx, TRAIN)
    num_classes = int(ctx.store.manifest()["arrays"][npy_path(classify_dir(TEST), "probs")]["shape"][1])
    class_units = [u for u in units if config.class_attacks is None or u[0] in config.class_attacks]
    for key, name, eps in class_units:
        run_attack_stage(ctx, TRAIN, key, name, eps)
        run_class_map_stage(ctx, key, num_classes)
    if class_units:
        run_defence_stage(ctx, [key for key, _, _ in class_units])
        if config.adaptive_attacks or config.robustness_curve:
            restore_test_images(ctx)  # a results-only copy: the adaptive stages attack the test images
        run_adaptive_stages(ctx, [key for key, _, _ in class_units])


def _record_map_space(store: ExperimentStore, config: ExperimentConfig) -> None:
    """Give a manifest written before map bases its "basis", "layer" and "map_shape" (Fourier at the input)."""
    record = map_space_record(config)
    manifest = store.manifest()
    if any(key not in manifest for key in record):
        store.update_manifest(**{key: manifest.get(key, value) for key, value in record.items()})


def _record_run(store: ExperimentStore, config: ExperimentConfig, seconds: float) -> None:
    """Add this run's stage options (hash policy STAGES: attacks, budgets, class attacks, adaptive attacks, the noise
    ceiling, the robustness curve) to the manifest's config, since runs of one experiment may add stages."""
    done = merged_stage_options(store.manifest()["config"], config)
    store.update_manifest(config=done, last_run_seconds=round(seconds, 2))


def merged_stage_options(done: dict, config: ExperimentConfig) -> dict:
    """The manifest's config `done` with every STAGES option of `config` merged in: tuples as the sorted union
    (None, "every unit", wins), switches as "on in any run". An option a manifest from before it lacks is added
    only when this run sets it to other than its default."""
    done = dict(done)
    for field in fields(ExperimentConfig):
        if field.metadata["option"].hash != STAGES:
            continue
        name, value, default = field.name, getattr(config, field.name), field.default
        if name not in done and value == default:
            continue
        before = done.get(name, default)
        if isinstance(value, bool):
            done[name] = bool(before) or value
        elif not isinstance(value, tuple) and value is not None:  # a number (--adaptive-limit): this run's
            done[name] = value
        elif value is None or before is None:
            done[name] = None
        else:
            done[name] = sorted(set(before) | set(value))
    return done
