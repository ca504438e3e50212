"""Stage `<prefix>-attack-<key>`: adversarial images for every image (Foolbox, METHOD §3)."""

from __future__ import annotations

import time

import numpy as np
import torch

from core.attack_keys import attack_units  # noqa: F401  (re-exported for callers of this stage)
from core.attacks import run_attack
from precompute.stages.chunked import run_chunked
from precompute.stages.context import StageContext


def run_attack_stage(ctx: StageContext, prefix: str, key: str, name: str, eps: float | None) -> None:
    """Write `<prefix>/attacks/<key>/{adversarial, adv_pred, adv_probs, success, linf, l2}.npy`."""
    stage = f"{prefix}-attack-{key}"
    if ctx.store.stage_done(stage):
        return
    start = time.perf_counter()
    labels_all = np.asarray(ctx.store.load_array(f"{prefix}/labels.npy"))
    n = len(labels_all)

    def compute(chunk: int, positions: np.ndarray) -> dict[str, np.ndarray]:
        images = ctx.images(prefix, positions)
        labels = torch.from_numpy(labels_all[positions]).to(ctx.device)
        result = run_attack(
            ctx.model, images, labels, name, eps=eps, seed=ctx.stage_seed(prefix, key, chunk),
            batch_size=ctx.config.batch_size, steps=ctx.config.attack_steps,
            fuse_batchnorm=ctx.config.fold_batchnorm,
        )
        with torch.no_grad():
            probs = torch.softmax(ctx.model(result.adversarial.to(ctx.device)).float(), dim=1)
        return {
            "adversarial": result.adversarial.cpu().numpy().astype(np.float32),
            "adv_pred": result.adv_pred.cpu().numpy().astype(np.int64),
            "adv_probs": probs.cpu().numpy().astype(np.float32),
            "success": result.success.cpu().numpy().astype(bool),
            "linf": result.linf.cpu().numpy().astype(np.float32),
            "l2": result.l2.cpu().numpy().astype(np.float32),
        }

    parts = run_chunked(ctx.store, stage, n, ctx.config.chunk_size, compute, ctx.dist, ctx.progress)
    if parts is not None:
        pred = np.asarray(ctx.store.load_array(f"{prefix}/classify/pred.npy"))
        correct = pred == labels_all
        parts.write(f"{prefix}/attacks/{key}")  # streamed: the adversarial images never all in memory
        success = np.asarray(ctx.store.load_array(f"{prefix}/attacks/{key}/success.npy"))
        linf = np.asarray(ctx.store.load_array(f"{prefix}/attacks/{key}/linf.npy"))
        success_rate = float(success[correct].mean()) if correct.any() else 0.0
        ctx.store.mark_stage(
            stage,
            seconds=round(time.perf_counter() - start, 2),
            n=n,
            n_correct=int(correct.sum()),
            n_success=int(success.sum()),
            success_rate=success_rate,
            mean_linf=float(linf[success].mean()) if success.any() else None,
            attack=name,
            eps=eps,
        )
        ctx.store.clear_parts(stage)
        ctx.progress.note(f"{stage}: success rate {100 * success_rate:.2f}% of {int(correct.sum())} correctly classified")
    ctx.dist.barrier()
    ctx.store.reload()
