"""Stages `maps-essential` and `maps-adversarial-<key>`: per-image Fourier maps (METHOD §2)."""

from __future__ import annotations

import time

import numpy as np
import torch

from core.fourier import to_display_order
from core.map_training import MapTrainConfig, train_maps
from core.metrics.pooling import pool_maps
from experiments.format import (
    ESSENTIAL,
    STATUS_ATTACK_FAILED,
    STATUS_KEPT,
    STATUS_LOST,
    STATUS_MISCLASSIFIED,
    TEST,
)
from precompute.bf16 import Bf16Classifier
from precompute.stages.chunked import run_chunked
from precompute.stages.context import StageContext


def sparsity(maps_display: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per map: number of non-zero entries, and whether only zero-frequency entries are non-zero.

    maps_display: (M, C, H, W) centred maps. Returns nonzero (M,) int64 and dc_only (M,) bool.
    """
    m, _, h, w = maps_display.shape
    nonzero_mask = maps_display > 0  # (M, C, H, W)
    nonzero = nonzero_mask.reshape(m, -1).sum(1)
    dc = nonzero_mask[:, :, h // 2, w // 2].sum(1)
    return nonzero.astype(np.int64), nonzero == dc  # an all-zero map counts as degenerate too


def run_map_stage(ctx: StageContext, map_set: str, attack_key: str | None) -> None:
    """Train one map set and write `maps/<map_set>/...` (see docs/CACHE.md)."""
    stage = f"maps-{map_set}"
    if ctx.store.stage_done(stage):
        return
    start = time.perf_counter()
    store, cfg = ctx.store, ctx.config
    labels = np.asarray(store.load_array(f"{TEST}/labels.npy"))
    pred = np.asarray(store.load_array(f"{TEST}/classify/pred.npy"))
    status = np.where(pred == labels, STATUS_KEPT, STATUS_MISCLASSIFIED).astype(np.int8)
    if attack_key is None:
        targets_all = labels
        source = None
    else:
        success = np.asarray(store.load_array(f"{TEST}/attacks/{attack_key}/success.npy"))
        status[(status == STATUS_KEPT) & ~success] = STATUS_ATTACK_FAILED
        targets_all = np.asarray(store.load_array(f"{TEST}/attacks/{attack_key}/adv_pred.npy"))
        source = store.load_array(f"{TEST}/attacks/{attack_key}/adversarial.npy")
    positions_all = np.flatnonzero(status == STATUS_KEPT)  # images that get a map
    map_config = MapTrainConfig(lam=cfg.lam, lr=cfg.lr, min_steps=cfg.min_steps, max_steps=cfg.max_steps, tol=cfg.tol)

    # --bf16: every map's first bf16_float32_steps steps in float32 (see precompute/bf16.py)
    early_model = ctx.model.float32_model() if isinstance(ctx.model, Bf16Classifier) else None

    def compute(chunk: int, items: np.ndarray) -> dict[str, np.ndarray]:
        positions = positions_all[items]
        if source is None:
            images = ctx.images(TEST, positions)
        else:
            images = torch.from_numpy(np.asarray(source[positions])).to(ctx.device)
        targets = torch.from_numpy(targets_all[positions]).to(ctx.device)
        result = train_maps(ctx.model, images, targets, map_config, batch_size=cfg.batch_size,
                            fuse_batchnorm=cfg.fold_batchnorm, early_model=early_model,
                            early_steps=cfg.bf16_float32_steps)
        maps = to_display_order(result.maps).cpu()
        out = {
            "maps": maps.numpy().astype(cfg.map_dtype),
            "steps": result.steps.cpu().numpy().astype(np.int64),
            "final_loss": result.final_loss.cpu().numpy().astype(np.float32),
            "kept": result.kept.cpu().numpy().astype(bool),
            "final_pred": result.final_pred.cpu().numpy().astype(np.int64),
        }
        if maps.shape[-1] > 32:
            out[f"pooled_{cfg.pool}"] = pool_maps(maps.float(), size=32, mode=cfg.pool).numpy().astype(np.float32)
        return out

    # The resumable unit is chunk_size images, or as many whole chunks as one batch holds (a GPU trains
    # ~1000 maps at once). Part files are keyed by the unit, so a resumed run recomputes exactly the
    # same units and ends bit-identical to an uninterrupted one with the same batch size.
    unit = cfg.chunk_size * max(1, cfg.batch_size // cfg.chunk_size)
    parts = stage if unit == cfg.chunk_size else f"{stage}-by{unit}"
    finished = run_chunked(store, parts, len(positions_all), unit, compute, ctx.dist, ctx.progress)
    if finished is not None:
        prefix = f"maps/{map_set}"
        if len(positions_all):  # streamed: one unit of maps in memory at a time, never the whole set
            finished.write(prefix, derive=lambda block: dict(zip(("nonzero", "dc_only"), sparsity(block["maps"]), strict=True)))
        else:  # no image qualifies: empty arrays of the right shapes
            _, c, h, w = store.manifest()["arrays"][f"{TEST}/images.npy"]["shape"]
            empty = {
                "maps": np.zeros((0, c, h, w), cfg.map_dtype),
                "steps": np.zeros(0, np.int64),
                "final_loss": np.zeros(0, np.float32),
                "kept": np.zeros(0, bool),
                "final_pred": np.zeros(0, np.int64),
                "nonzero": np.zeros(0, np.int64),
                "dc_only": np.zeros(0, bool),
            }
            if w > 32:  # the same arrays as a non-empty set of large maps
                empty[f"pooled_{cfg.pool}"] = np.zeros((0, c, 32, 32), np.float32)
            store.write_arrays(prefix, empty)
        kept = np.asarray(store.load_array(f"{prefix}/kept.npy"))
        steps = np.asarray(store.load_array(f"{prefix}/steps.npy"))
        nonzero = np.asarray(store.load_array(f"{prefix}/nonzero.npy"))
        dc_only = np.asarray(store.load_array(f"{prefix}/dc_only.npy"))
        row = np.full(len(labels), -1, np.int64)
        row[positions_all] = np.arange(len(positions_all))
        status[positions_all[~kept]] = STATUS_LOST
        store.write_arrays(prefix, {"positions": positions_all.astype(np.int64), "row": row, "status": status})
        info = {
            "seconds": round(time.perf_counter() - start, 2),
            "n_attempted": int(len(positions_all)),
            "n_kept": int(kept.sum()),
            "mean_steps": float(steps.mean()) if len(kept) else None,
            "mean_nonzero": float(nonzero[kept].mean()) if kept.any() else None,
            "median_nonzero": float(np.median(nonzero[kept])) if kept.any() else None,
            "dc_only_share": float(dc_only[kept].mean()) if kept.any() else None,
            "map_set": map_set,
            "attack_key": attack_key,
        }
        store.mark_stage(stage, **info)
        store.clear_parts(parts)
        ctx.progress.note(
            f"{stage}: {info['n_kept']}/{info['n_attempted']} maps kept, mean {info['mean_steps'] or 0:.0f} steps, "
            f"median {info['median_nonzero'] or 0:.0f} non-zero entries"
        )
    ctx.dist.barrier()
    store.reload()


__all__ = ["ESSENTIAL", "run_map_stage", "sparsity"]
