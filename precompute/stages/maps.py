"""Stages `maps-essential` and `maps-adversarial-<key>`: per-image maps (METHOD §2) in the experiment's basis
and at its layer (--basis, --layer: core/bases, core/hidden_layers.py), stored in the basis's display order.

Which images get a map (`map_targets`), how a chunk of them is trained (`train_chunk`), how the parts become
the map set's arrays (`write_map_set`, `write_index`) and what the manifest records (`summarize`) are
separate steps; `run_map_stage` wires them into the shared stage sequence (precompute/stages/base.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.compiled_step import resolve_compile
from core.map_training import MapTrainConfig, train_maps
from core.metrics.pooling import pool_maps
from experiments.config import ExperimentConfig
from experiments.format import (
    ESSENTIAL,
    STATUS_ATTACK_FAILED,
    STATUS_KEPT,
    STATUS_LOST,
    STATUS_MISCLASSIFIED,
    TEST,
    attack_dir,
    classify_dir,
    map_dir,
    map_space,
    maps_stage,
    npy_path,
    parts_name,
    pooled_name,
)
from precompute.bf16 import Bf16Classifier
from precompute.stages.base import Chunks, Outcome, run_chunked_stage
from precompute.stages.chunked import StageParts
from precompute.stages.context import StageContext


def sparsity(maps_display: np.ndarray, origin: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per map: number of non-zero entries, and whether only the entries at `origin` are non-zero.

    maps_display: (M, C, H, W) maps in display order. origin: the display index of the zero frequency (DCT: the
    (0, 0) coefficient, wavelet: the first coarsest approximation coefficient), `MapLayout.origin`; None: the
    centre [H // 2, W // 2] of fftshift-ed Fourier maps. Returns nonzero (M,) int64 and dc_only (M,) bool.
    """
    m, _, h, w = maps_display.shape
    row, col = origin if origin is not None else (h // 2, w // 2)
    nonzero_mask = maps_display > 0  # (M, C, H, W)
    nonzero = nonzero_mask.reshape(m, -1).sum(1)
    dc = nonzero_mask[:, :, row, col].sum(1)
    return nonzero.astype(np.int64), nonzero == dc  # an all-zero map counts as degenerate too


@dataclass(frozen=True)
class MapTargets:
    """Which test images get a map in one map set, of which images, towards which label."""

    status: np.ndarray  # (N,) int8 STATUS_* before training: KEPT for every image that gets a map
    targets: np.ndarray  # (N,) int64: the label its filtered image must keep (true label, or the attack's)
    adversarial: np.ndarray | None  # memory-mapped (N, C, H, W) adversarial images; None: the clean images

    @property
    def positions(self) -> np.ndarray:
        """(M,) int64 positions of the images that get a map, in order."""
        return np.flatnonzero(self.status == STATUS_KEPT)


def run_map_stage(ctx: StageContext, map_set: str, attack_key: str | None) -> None:
    """Train one map set and write `maps/<map_set>/...` (see docs/CACHE.md)."""
    stage = maps_stage(map_set)
    folder = map_dir(map_set)

    def plan() -> Chunks:
        chosen = map_targets(ctx, attack_key)
        positions = chosen.positions
        unit = map_unit(ctx.config)
        # --bf16: every map's first bf16_float32_steps steps in float32 (see precompute/bf16.py)
        early_model = ctx.model.float32_model() if isinstance(ctx.model, Bf16Classifier) else None
        compiled = resolve_compile(ctx.config.compile, ctx.device, len(positions) * ctx.config.min_steps)

        def compute(chunk: int, items: np.ndarray) -> dict[str, np.ndarray]:
            return train_chunk(ctx, chosen, positions[items], early_model, compiled)

        def merge(parts: StageParts) -> Outcome:
            write_map_set(ctx, folder, parts, len(positions))
            write_index(ctx, folder, chosen.status, positions)
            return summarize(ctx, folder, positions, map_set, attack_key)

        return Chunks(len(positions), unit, compute, merge, parts=parts_name(stage, unit, ctx.config.chunk_size))

    run_chunked_stage(ctx, stage, plan)


def map_targets(ctx: StageContext, attack_key: str | None) -> MapTargets:
    """Essential maps (attack_key None) for the correctly classified images, towards their label; adversarial
    maps for those the attack also fooled, of the adversarial image, towards the adversarial label."""
    labels = ctx.array(TEST, "labels")
    pred = ctx.array(classify_dir(TEST), "pred")
    status = np.where(pred == labels, STATUS_KEPT, STATUS_MISCLASSIFIED).astype(np.int8)
    if attack_key is None:
        return MapTargets(status, labels, None)
    attack = attack_dir(TEST, attack_key)
    status[(status == STATUS_KEPT) & ~ctx.array(attack, "success")] = STATUS_ATTACK_FAILED
    adversarial = ctx.store.load_array(npy_path(attack, "adversarial"))  # memory-mapped
    return MapTargets(status, ctx.array(attack, "adv_pred"), adversarial)


def map_unit(cfg: ExperimentConfig) -> int:
    """Images per resumable unit: chunk_size, or as many whole chunks as one batch holds.

    A GPU trains ~1000 maps at once. Part files are keyed by the unit, so a resumed run recomputes exactly the
    same units and ends bit-identical to an uninterrupted one with the same batch size.
    """
    return cfg.chunk_size * max(1, cfg.batch_size // cfg.chunk_size)


def train_chunk(
    ctx: StageContext, chosen: MapTargets, positions: np.ndarray, early_model: nn.Module | None,
    compiled: bool = False,
) -> dict[str, np.ndarray]:
    """Train the maps of the images at `positions` (B,): one part's rows of every array of the map set.

    early_model: the float32 model for the first bf16_float32_steps steps under --bf16, else None.
    compiled: train through the compiled step (--compile, core.compiled_step.resolve_compile).
    """
    cfg = ctx.config
    if chosen.adversarial is None:
        images = ctx.images(TEST, positions)
    else:
        images = torch.from_numpy(np.asarray(chosen.adversarial[positions])).to(ctx.device)  # (B, C, H, W)
    targets = torch.from_numpy(chosen.targets[positions]).to(ctx.device)
    map_config = MapTrainConfig(lam=cfg.lam, lr=cfg.lr, min_steps=cfg.min_steps, max_steps=cfg.max_steps, tol=cfg.tol)
    basis = cfg.map_basis()
    result = train_maps(ctx.model, images, targets, map_config, batch_size=cfg.batch_size,
                        fuse_batchnorm=cfg.fold_batchnorm, early_model=early_model,
                        early_steps=cfg.bf16_float32_steps, basis=basis, layer=cfg.layer, compile=compiled)
    maps = basis.to_display_order(result.maps).cpu()  # (B, C, H, W) display order (Fourier: zero frequency centred)
    out = {
        "maps": maps.numpy().astype(cfg.map_dtype),
        "steps": result.steps.cpu().numpy().astype(np.int64),
        "final_loss": result.final_loss.cpu().numpy().astype(np.float32),
        "kept": result.kept.cpu().numpy().astype(bool),
        "final_pred": result.final_pred.cpu().numpy().astype(np.int64),
    }
    if maps.shape[-1] > 32:
        out[pooled_name(cfg.pool)] = pool_maps(maps.float(), size=32, mode=cfg.pool).numpy().astype(np.float32)
    return out


def write_map_set(ctx: StageContext, folder: str, parts: StageParts, n_maps: int) -> None:
    """The per-map arrays (M rows) and their sparsity, streamed one unit of maps at a time, never the whole set."""
    if n_maps:
        origin = map_origin(ctx)
        parts.write(folder, derive=lambda block: dict(zip(("nonzero", "dc_only"), sparsity(block["maps"], origin),
                                                          strict=True)))
    else:  # no image qualifies: empty arrays of the right shapes
        ctx.store.write_arrays(folder, empty_map_set(ctx))


def map_origin(ctx: StageContext) -> tuple[int, int]:
    """Display index of the basis's zero frequency / coarsest coefficient in this experiment's maps."""
    _, height, width = map_space(ctx.store.manifest())[2]
    return ctx.config.map_basis().layout(height, width).origin


def empty_map_set(ctx: StageContext) -> dict[str, np.ndarray]:
    """The arrays of a map set without maps: the same names, dtypes and trailing shapes as a non-empty one."""
    cfg = ctx.config
    c, h, w = map_space(ctx.store.manifest())[2]
    empty = {
        "maps": np.zeros((0, c, h, w), cfg.map_dtype),
        "steps": np.zeros(0, np.int64),
        "final_loss": np.zeros(0, np.float32),
        "kept": np.zeros(0, bool),
        "final_pred": np.zeros(0, np.int64),
        "nonzero": np.zeros(0, np.int64),
        "dc_only": np.zeros(0, bool),
    }
    if w > 32:
        empty[pooled_name(cfg.pool)] = np.zeros((0, c, 32, 32), np.float32)
    return empty


def write_index(ctx: StageContext, folder: str, status: np.ndarray, positions: np.ndarray) -> None:
    """Per image (N): `status` (LOST where the trained map failed) and `row` into the maps (-1: none); and the
    maps' `positions` (M,)."""
    kept = ctx.array(folder, "kept")
    row = np.full(len(status), -1, np.int64)
    row[positions] = np.arange(len(positions))
    status = status.copy()
    status[positions[~kept]] = STATUS_LOST
    ctx.store.write_arrays(folder, {"positions": positions.astype(np.int64), "row": row, "status": status})


def summarize(ctx: StageContext, folder: str, positions: np.ndarray, map_set: str, attack_key: str | None) -> Outcome:
    """How many maps were kept, their mean steps and their sparsity (over the kept maps)."""
    kept = ctx.array(folder, "kept")
    steps = ctx.array(folder, "steps")
    nonzero = ctx.array(folder, "nonzero")
    dc_only = ctx.array(folder, "dc_only")
    summary = {
        "n_attempted": int(len(positions)),
        "n_kept": int(kept.sum()),
        "mean_steps": float(steps.mean()) if len(kept) else None,
        "mean_nonzero": float(nonzero[kept].mean()) if kept.any() else None,
        "median_nonzero": float(np.median(nonzero[kept])) if kept.any() else None,
        "dc_only_share": float(dc_only[kept].mean()) if kept.any() else None,
        "map_set": map_set,
        "attack_key": attack_key,
    }
    note = (f"{summary['n_kept']}/{summary['n_attempted']} maps kept, mean {summary['mean_steps'] or 0:.0f} steps, "
            f"median {summary['median_nonzero'] or 0:.0f} non-zero entries")
    return Outcome(summary, note)


__all__ = ["ESSENTIAL", "run_map_stage", "sparsity"]
