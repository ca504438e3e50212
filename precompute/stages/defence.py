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
        for row, key in rows.items():
            if key is None:
                images = ctx.images(TEST, np.arange(n))
                first = np.asarray(store.load_array(f"{TEST}/classify/pred.npy"))
            else:
                images = torch.from_numpy(np.asarray(store.load_array(f"{TEST}/attacks/{key}/adversarial.npy"))).to(ctx.device)
                first = np.asarray(store.load_array(f"{TEST}/attacks/{key}/adv_pred.npy"))
            table[row] = {"none": float((first == labels).mean())}
            for column in attack_keys:
                maps = torch.from_numpy(np.asarray(store.load_array(f"class_maps/{column}/maps.npy")))
                _, defended = defended_predict(ctx.model, images, to_natural_order(maps).to(ctx.device))
                defended = defended.cpu().numpy().astype(np.int64)
                arrays[f"{row}__{column}"] = defended
                table[row][column] = float((defended == labels).mean())
        published = {}
        clean = ctx.images(TEST, np.arange(n))
        for column in attack_keys:
            maps = to_natural_order(torch.from_numpy(np.asarray(store.load_array(f"class_maps/{column}/maps.npy"))))
            with torch.no_grad():
                filtered = apply_fourier_maps(clean, maps.to(ctx.device)[torch.from_numpy(labels).to(ctx.device)])
                pred = ctx.model(filtered).argmax(1).cpu().numpy()
            published[column] = float((pred == labels).mean())
        store.write_arrays("defence", arrays)
        result = {"rows": list(rows), "columns": columns, "accuracy": table, "n": n,
                  "clean_true_label_map": published}
        store.write_json("defence/table.json", result)
        store.mark_stage(stage, seconds=round(time.perf_counter() - start, 2), n=n)
        ctx.progress.note("defence: " + "; ".join(
            f"{r}: " + " ".join(f"{c}={table[r][c]:.2f}" for c in columns) for r in table))
    ctx.dist.barrier()
    ctx.store.reload()
