"""Stage `defence`: the Table IV matrix, picking each image's class map by the model's own prediction.

Rows: the test images as they are ("clean") and attacked by each attack; columns: no map, and
the class maps trained against each attack. A cell is top-1 accuracy against the true labels
over all N test images. An extra row reproduces the published evaluation, which filtered clean
images with the map of their *true* label (a defence cannot know it): labelled as such.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from core.class_maps import defended_predict
from core.fourier import apply_fourier_maps, to_natural_order
from experiments.format import TEST
from precompute.stages.context import StageContext


def run_defence_stage(ctx: StageContext, attack_keys: list[str]) -> None:
    """Write `defence/table.json` and `defence/<row>__<column>.npy` (defended predictions)."""
    stage = "defence"
    if ctx.store.stage_done(stage):
        return
    if ctx.dist.is_main:
        start = time.perf_counter()
        store = ctx.store
        labels = np.asarray(store.load_array(f"{TEST}/labels.npy"))
        n = len(labels)
        rows = {"clean": None, **{key: key for key in attack_keys}}
        columns = ["none", *attack_keys]
        table: dict[str, dict[str, float]] = {}
        arrays: dict[str, np.ndarray] = {}
        class_maps = {
            column: to_natural_order(torch.from_numpy(np.array(store.load_array(f"class_maps/{column}/maps.npy")))).to(ctx.device)
            for column in attack_keys
        }  # column -> (K, C, H, W)
        batches = [np.arange(b, min(n, b + ctx.config.batch_size)) for b in range(0, n, ctx.config.batch_size)]
        for row, key in rows.items():
            if key is None:
                first = np.asarray(store.load_array(f"{TEST}/classify/pred.npy"))
            else:
                first = np.asarray(store.load_array(f"{TEST}/attacks/{key}/adv_pred.npy"))
            table[row] = {"none": float((first == labels).mean())}
            defended = {column: [] for column in attack_keys}
            for positions in batches:  # one batch of images in memory at a time (224x224 sets are large)
                images = _row_images(ctx, key, positions)
                for column in attack_keys:
                    _, pred = defended_predict(ctx.model, images, class_maps[column])
                    defended[column].append(pred.cpu().numpy().astype(np.int64))
            for column in attack_keys:
                arrays[f"{row}__{column}"] = np.concatenate(defended[column]) if n else np.zeros(0, np.int64)
                table[row][column] = float((arrays[f"{row}__{column}"] == labels).mean())
        published = {}
        for column in attack_keys:
            correct = 0
            for positions in batches:
                with torch.no_grad():
                    chosen = class_maps[column][torch.from_numpy(labels[positions]).to(ctx.device)]
                    filtered = apply_fourier_maps(ctx.images(TEST, positions), chosen)
                    correct += int((ctx.model(filtered).argmax(1).cpu().numpy() == labels[positions]).sum())
            published[column] = correct / n if n else 0.0
        store.write_arrays("defence", arrays)
        result = {"rows": list(rows), "columns": columns, "accuracy": table, "n": n,
                  "clean_true_label_map": published}
        store.write_json("defence/table.json", result)
        store.mark_stage(stage, seconds=round(time.perf_counter() - start, 2), n=n)
        ctx.progress.note("defence: " + "; ".join(
            f"{r}: " + " ".join(f"{c}={table[r][c]:.2f}" for c in columns) for r in table))
    ctx.dist.barrier()
    ctx.store.reload()


def _row_images(ctx: StageContext, attack_key: str | None, positions: np.ndarray) -> torch.Tensor:
    """Test images at `positions` (B, C, H, W) in [0, 1]: clean, or attacked by `attack_key`."""
    if attack_key is None:
        return ctx.images(TEST, positions)
    adversarial = ctx.store.load_array(f"{TEST}/attacks/{attack_key}/adversarial.npy")  # memory-mapped
    return torch.from_numpy(np.asarray(adversarial[positions])).to(ctx.device)
