"""Stage `class-maps-<key>`: one adversarially trained map per class (METHOD §5), on the train split, in the
experiment's basis and at its layer (as the per-image maps), stored in the basis's display order.

Each `class_chunk` classes (default 1) form one resumable unit (a part file), trained together as
one batch of maps: a killed run loses at most one unit. On a GPU, all classes in one unit keep it
busy (10 maps per step instead of 1); the maps are the same up to float rounding (core.class_maps).
"""

from __future__ import annotations

import numpy as np
import torch

from core.class_maps import FULL, ClassMapConfig, train_class_maps
from core.compiled_step import resolve_compile
from experiments.format import TRAIN, attack_dir, class_maps_dir, class_maps_stage, classify_dir, npy_path, parts_name
from precompute.stages.base import Chunks, Outcome, run_chunked_stage
from precompute.stages.chunked import StageParts
from precompute.stages.context import StageContext


def run_class_map_stage(ctx: StageContext, attack_key: str, num_classes: int) -> None:
    """Write `class_maps/<key>/{maps, iterations, final_loss, n_clean, n_adversarial}.npy`."""
    stage = class_maps_stage(attack_key)

    def plan() -> Chunks:
        cfg = ctx.config
        labels = ctx.array(TRAIN, "labels")  # (N,)
        pred = ctx.array(classify_dir(TRAIN), "pred")
        attack = attack_dir(TRAIN, attack_key)
        success, adv_pred = ctx.array(attack, "success"), ctx.array(attack, "adv_pred")
        adversarial = ctx.store.load_array(npy_path(attack, "adversarial"))  # memory-mapped (N, C, H, W)
        class_config = ClassMapConfig(
            lam=cfg.class_lam, lr=cfg.lr, min_steps=cfg.class_min_steps, max_steps=cfg.class_max_steps,
            tol=cfg.class_tol, batch_size=cfg.class_batch_size, adversarial_step=True, seed=cfg.seed,
        )
        per_class = len(labels) if cfg.class_batch_size == FULL else cfg.class_batch_size  # rows per class and step
        rows = min(int((pred == labels).sum()), num_classes * per_class) + min(int(success.sum()), num_classes * per_class)
        compiled = resolve_compile(cfg.compile, ctx.device, cfg.class_min_steps * rows)  # image-steps, at least

        basis = cfg.map_basis()

        def compute(chunk: int, classes: np.ndarray) -> dict[str, np.ndarray]:
            chosen = classes.astype(np.int64)  # the classes of this resumable unit, trained as one batch of maps
            clean_pos = np.flatnonzero((pred == labels) & np.isin(labels, chosen))
            adv_pos = np.flatnonzero(success & np.isin(adv_pred, chosen))
            result = train_class_maps(
                ctx.model,
                ctx.images(TRAIN, clean_pos),
                torch.from_numpy(labels[clean_pos]).to(ctx.device),
                torch.from_numpy(np.asarray(adversarial[adv_pos])).to(ctx.device),
                torch.from_numpy(adv_pred[adv_pos]).to(ctx.device),
                torch.from_numpy(labels[adv_pos]).to(ctx.device),
                num_classes=num_classes,
                config=class_config,
                fuse_batchnorm=cfg.fold_batchnorm,
                basis=basis,
                layer=cfg.layer,
                compile=compiled,
            )  # only the chosen classes have data, so only their maps train (seeded per class: same as one at a time)
            rows = torch.from_numpy(chosen)
            return {
                "maps": basis.to_display_order(result.maps[rows.to(result.maps.device)]).cpu().numpy().astype(np.float32),
                "iterations": result.iterations[rows].cpu().numpy().astype(np.int64),
                "final_loss": result.final_loss[rows].cpu().numpy().astype(np.float32),
                "n_clean": np.bincount(labels[clean_pos], minlength=num_classes)[chosen].astype(np.int64),
                "n_adversarial": np.bincount(adv_pred[adv_pos], minlength=num_classes)[chosen].astype(np.int64),
            }

        per_unit = max(1, min(cfg.class_chunk, num_classes))
        return Chunks(num_classes, per_unit, compute, merge, parts=parts_name(stage, per_unit, 1))

    def merge(parts: StageParts) -> Outcome:
        merged = parts.concatenated()  # (K, C, H, W) maps: small
        ctx.store.write_arrays(class_maps_dir(attack_key), merged)
        summary = {
            "mean_iterations": float(merged["iterations"].mean()),
            "n_clean": int(merged["n_clean"].sum()),
            "n_adversarial": int(merged["n_adversarial"].sum()),
        }
        return Outcome(summary, f"{num_classes} class maps, mean {merged['iterations'].mean():.0f} iterations")

    run_chunked_stage(ctx, stage, plan)
