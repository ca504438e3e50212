"""Stage `<prefix>-classify`: the model's prediction and class probabilities for every image."""

from __future__ import annotations

import numpy as np
import torch

from experiments.format import classify_dir, classify_stage, labels_path
from precompute.stages.base import Chunks, Outcome, run_chunked_stage
from precompute.stages.chunked import StageParts
from precompute.stages.context import StageContext


def run_classify_stage(ctx: StageContext, prefix: str) -> None:
    """Write `<prefix>/classify/pred.npy` (N,) and `probs.npy` (N, K) float32."""

    def plan() -> Chunks:
        return Chunks(len(ctx.store.load_array(labels_path(prefix))), ctx.config.chunk_size, compute, merge)

    @torch.no_grad()
    def compute(chunk: int, positions: np.ndarray) -> dict[str, np.ndarray]:
        probs = []
        for begin in range(0, len(positions), ctx.config.batch_size):
            batch = ctx.images(prefix, positions[begin : begin + ctx.config.batch_size])
            probs.append(torch.softmax(ctx.model(batch).float(), dim=1).cpu())
        p = torch.cat(probs).numpy().astype(np.float32)  # (B, K)
        return {"pred": p.argmax(1).astype(np.int64), "probs": p}

    def merge(parts: StageParts) -> Outcome:
        labels = ctx.array(prefix, "labels")
        parts.write(classify_dir(prefix))
        accuracy = float((ctx.array(classify_dir(prefix), "pred") == labels).mean())
        n = len(labels)
        return Outcome({"n": n, "accuracy": accuracy}, f"accuracy {100 * accuracy:.2f}% on {n} images")

    run_chunked_stage(ctx, classify_stage(prefix), plan)
