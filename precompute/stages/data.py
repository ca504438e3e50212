"""Stages `test` / `train`: decode the images once and store them as uint8 in the cache."""

from __future__ import annotations

import numpy as np

from core.data.datasets import load_dataset
from core.data.image_folder import ImageSet
from core.models.registry import model_class_names
from experiments.format import data_stage, meta_path
from experiments.paths import resolve_path
from precompute.stages.base import Outcome, run_rank0_stage
from precompute.stages.context import StageContext


def run_data_stage(ctx: StageContext, prefix: str, source: str, split: str, limit: int | None) -> None:
    """Write `<prefix>/images.npy` (N, 3, S, S) uint8, `labels.npy` (N,) and `meta.json` (ids, classes)."""

    def build() -> Outcome:
        data = decode(ctx, source, split, limit)
        # the folder `prefix` holds images_path(prefix) and labels_path(prefix)
        ctx.store.write_arrays(
            prefix,
            {"images": data.images.numpy().astype(np.uint8), "labels": data.labels.numpy().astype(np.int64)},
        )
        ctx.store.write_json(meta_path(prefix), {"ids": list(data.ids), "classes": list(data.classes)})
        n = len(data.labels)
        return Outcome({"n": n, "source": source, "split": split}, f"{n} images from {source}")

    run_rank0_stage(ctx, data_stage(prefix), build)


def decode(ctx: StageContext, source: str, split: str, limit: int | None) -> ImageSet:
    """The pipeline's one read of a data set: its first `limit` images of `split`, resized to the experiment's size."""
    checkpoint = resolve_path(ctx.config.checkpoint) if ctx.config.checkpoint else None
    return load_dataset(
        resolve_path(source), split=split, limit=limit, size=ctx.config.image_size, root=ctx.config.data_root,
        classes=model_class_names(ctx.config.model, checkpoint),  # labels follow the class folders' names
    )
