"""Stage `data` / `train-data`: decode the images once and store them as uint8 in the cache."""

from __future__ import annotations

import time

import numpy as np

from core.data.datasets import load_dataset
from experiments.paths import resolve_path
from precompute.stages.context import StageContext


def run_data_stage(ctx: StageContext, prefix: str, source: str, split: str, limit: int | None) -> None:
    """Write `<prefix>/images.npy` (N, 3, S, S) uint8, `labels.npy` (N,), `ids.json`, `classes.json`."""
    stage = prefix
    if ctx.store.stage_done(stage):
        return
    if ctx.dist.is_main:
        start = time.perf_counter()
        data = load_dataset(
            resolve_path(source), split=split, limit=limit, size=ctx.config.image_size, root=ctx.config.data_root
        )
        ctx.store.write_arrays(
            prefix,
            {"images": data.images.numpy().astype(np.uint8), "labels": data.labels.numpy().astype(np.int64)},
        )
        ctx.store.write_json(f"{prefix}/meta.json", {"ids": list(data.ids), "classes": list(data.classes)})
        seconds = time.perf_counter() - start
        ctx.store.mark_stage(stage, seconds=round(seconds, 2), n=len(data.labels), source=source, split=split)
        ctx.progress.note(f"{stage}: {len(data.labels)} images from {source} ({seconds:.1f}s)")
    ctx.dist.barrier()
    ctx.store.reload()
