"""Stage `<prefix>-classify`: the model's prediction and class probabilities for every image."""

from __future__ import annotations

import time

import numpy as np
import torch

from precompute.stages.chunked import run_chunked
from precompute.stages.context import StageContext


def run_classify_stage(ctx: StageContext, prefix: str) -> None:
    """Write `<prefix>/classify/pred.npy` (N,) and `probs.npy` (N, K) float32."""
    stage = f"{prefix}-classify"
    if ctx.store.stage_done(stage):
        return
    start = time.perf_counter()
    n = len(ctx.store.load_array(f"{prefix}/labels.npy"))

    @torch.no_grad()
    def compute(chunk: int, positions: np.ndarray) -> dict[str, np.ndarray]:
        probs = []
        for begin in range(0, len(positions), ctx.config.batch_size):
            batch = ctx.images(prefix, positions[begin : begin + ctx.config.batch_size])
            probs.append(torch.softmax(ctx.model(batch).float(), dim=1).cpu())
        p = torch.cat(probs).numpy().astype(np.float32)
        return {"pred": p.argmax(1).astype(np.int64), "probs": p}

    parts = run_chunked(ctx.store, stage, n, ctx.config.chunk_size, compute, ctx.dist, ctx.progress)
    if parts is not None:
        labels = np.asarray(ctx.store.load_array(f"{prefix}/labels.npy"))
        parts.write(f"{prefix}/classify")
        accuracy = float((np.asarray(ctx.store.load_array(f"{prefix}/classify/pred.npy")) == labels).mean())
        ctx.store.mark_stage(stage, seconds=round(time.perf_counter() - start, 2), n=n, accuracy=accuracy)
        ctx.store.clear_parts(stage)
        ctx.progress.note(f"{stage}: accuracy {100 * accuracy:.2f}% on {n} images")
    ctx.dist.barrier()
    ctx.store.reload()
