"""Running more stages on a results-only copy (`precompute prune --drop train images maps`).

A results-only copy keeps every number but not the test images, the adversarial images, the training split or
the full-size maps. `precompute run` can still add the stages that need only the test images, the class maps and
the stored predictions (the adaptive attacks on the class-map defence, the robustness curves):

- `restore_test_images` decodes the test images again from the experiment's data (cheap and deterministic) and
  checks that they are the experiment's: the stored labels and image ids, and the model's stored predictions on
  them. `precompute prune --drop images` removes them again.
- `maps_pruned` tells the runner which stages would need maps that are gone (the statistics of a map set without
  dense, pooled or compact maps): those are skipped, and what was pruned stays absent.
"""

from __future__ import annotations

import numpy as np
import torch

from experiments.compact_maps import has_compact_maps
from experiments.format import (
    TEST,
    classify_dir,
    data_stage,
    images_path,
    map_dir,
    meta_path,
    npy_path,
    pooled_name,
)
from experiments.store import ExperimentStore
from precompute.stages.context import StageContext
from precompute.stages.data import decode

CHECK_BATCH = 256  # images per forward pass when comparing the restored images' predictions with the stored ones


def restore_test_images(ctx: StageContext) -> None:
    """Write `test/images.npy` again when a results-only copy dropped it; ValueError when the data decoded now
    are not the experiment's images (other labels, ids or model predictions)."""
    store = ctx.store
    if store.has_array(images_path(TEST)) or not store.stage_done(data_stage(TEST)):
        return
    if ctx.dist.is_main:
        config = ctx.config
        data = decode(ctx, config.data, config.split, config.limit)
        labels = np.asarray(store.load_array(npy_path(TEST, "labels")))
        ids = store.load_json(meta_path(TEST))["ids"]
        if list(data.ids) != list(ids) or not np.array_equal(data.labels.numpy(), labels):
            raise ValueError(f"expected the {len(ids)} test images of {store.path} in {config.data}, got "
                             f"{len(data.ids)} images with other ids or labels")
        images = data.images.numpy().astype(np.uint8)  # (N, 3, S, S)
        stored_pred = np.asarray(store.load_array(npy_path(classify_dir(TEST), "pred")))
        changed = int((predictions(ctx, images) != stored_pred).sum())
        if changed:
            raise ValueError(f"expected the model's stored predictions on the restored test images, got {changed} "
                             f"of {len(ids)} different")
        store.write_arrays(TEST, {"images": images})
        ctx.progress.note(f"test images restored from {config.data}: {len(ids)} images, the stored predictions")
    ctx.dist.barrier()
    store.reload()


@torch.no_grad()
def predictions(ctx: StageContext, images: np.ndarray) -> np.ndarray:
    """(N,) int64: the experiment's model on uint8 images (N, 3, S, S)."""
    preds = []
    for start in range(0, len(images), CHECK_BATCH):
        batch = torch.from_numpy(images[start : start + CHECK_BATCH]).to(ctx.device).float().div_(255)
        preds.append(ctx.model(batch).argmax(dim=1).cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros(0, np.int64)


def maps_pruned(store: ExperimentStore, *map_sets: str) -> bool:
    """Whether one of `map_sets` has none of its maps left (dense, pooled or compact): pruned from this copy."""
    dropped = store.manifest().get("dropped", [])
    if npy_path(map_dir("*"), "maps") not in dropped:
        return False
    for map_set in map_sets:
        folder = map_dir(map_set)
        pooled = [name for name in store.manifest()["arrays"] if name.startswith(f"{folder}/{pooled_name('')}")]
        if not (store.has_array(npy_path(folder, "maps")) or pooled or has_compact_maps(store, map_set)):
            return True
    return False
