"""Stage `<prefix>-attack-<key>`: adversarial images for every image (Foolbox, METHOD §3)."""

from __future__ import annotations

import numpy as np
import torch

from core.attack_keys import attack_units  # noqa: F401  (re-exported for callers of this stage)
from core.attacks import run_attack
from experiments.format import attack_dir, attack_stage, classify_dir
from precompute.stages.base import Chunks, Outcome, run_chunked_stage
from precompute.stages.chunked import StageParts
from precompute.stages.context import StageContext


def run_attack_stage(ctx: StageContext, prefix: str, key: str, name: str, eps: float | None) -> None:
    """Write `<prefix>/attacks/<key>/{adversarial, adv_pred, adv_probs, success, linf, l2}.npy`."""
    folder = attack_dir(prefix, key)

    def plan() -> Chunks:
        labels = ctx.array(prefix, "labels")  # (N,)

        def compute(chunk: int, positions: np.ndarray) -> dict[str, np.ndarray]:
            return _attack(ctx, prefix, key, name, eps, chunk, positions, labels)

        def merge(parts: StageParts) -> Outcome:
            parts.write(folder)  # streamed: the adversarial images never all in memory
            return _summary(ctx, folder, ctx.array(classify_dir(prefix), "pred") == labels, name, eps)

        return Chunks(len(labels), ctx.config.chunk_size, compute, merge)

    run_chunked_stage(ctx, attack_stage(prefix, key), plan)


def _attack(
    ctx: StageContext, prefix: str, key: str, name: str, eps: float | None, chunk: int, positions: np.ndarray,
    labels: np.ndarray,
) -> dict[str, np.ndarray]:
    """Attack the images at `positions`, with a seed of their own chunk: rows of every array of the stage."""
    images = ctx.images(prefix, positions)
    result = run_attack(
        ctx.model, images, torch.from_numpy(labels[positions]).to(ctx.device), name, eps=eps,
        seed=ctx.stage_seed(prefix, key, chunk), batch_size=ctx.config.batch_size, steps=ctx.config.attack_steps,
        fuse_batchnorm=ctx.config.fold_batchnorm,
    )
    with torch.no_grad():
        probs = torch.softmax(ctx.model(result.adversarial.to(ctx.device)).float(), dim=1)  # (B, K)
    return {
        "adversarial": result.adversarial.cpu().numpy().astype(np.float32),
        "adv_pred": result.adv_pred.cpu().numpy().astype(np.int64),
        "adv_probs": probs.cpu().numpy().astype(np.float32),
        "success": result.success.cpu().numpy().astype(bool),
        "linf": result.linf.cpu().numpy().astype(np.float32),
        "l2": result.l2.cpu().numpy().astype(np.float32),
    }


def _summary(ctx: StageContext, folder: str, correct: np.ndarray, name: str, eps: float | None) -> Outcome:
    """Success rate among the correctly classified images (`correct`, (N,) bool) and the mean L∞ of the successes."""
    success = ctx.array(folder, "success")
    linf = ctx.array(folder, "linf")
    success_rate = float(success[correct].mean()) if correct.any() else 0.0
    summary = {
        "n": len(correct),
        "n_correct": int(correct.sum()),
        "n_success": int(success.sum()),
        "success_rate": success_rate,
        "mean_linf": float(linf[success].mean()) if success.any() else None,
        "attack": name,
        "eps": eps,
    }
    return Outcome(summary, f"success rate {100 * success_rate:.2f}% of {int(correct.sum())} correctly classified")
