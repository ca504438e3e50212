"""Run a stage in resumable chunks: compute missing parts, then merge them into the cache.

A chunk is `chunk_size` consecutive items. A finished chunk is one atomically written part
file, so a killed run recomputes at most the chunks in flight, and the merged arrays depend
only on the items, never on how many processes computed them or when they were restarted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from experiments.store import ExperimentStore
from precompute.distributed import DistContext
from precompute.progress import Progress


def run_chunked(
    store: ExperimentStore,
    stage: str,
    n_items: int,
    chunk_size: int,
    compute: Callable[[int, np.ndarray], dict[str, np.ndarray]],
    ctx: DistContext,
    progress: Progress,
) -> dict[str, np.ndarray] | None:
    """Compute every chunk this rank owns, then (rank 0) concatenate all parts in order.

    compute(chunk_number, item_positions) -> arrays whose first axis is len(item_positions).
    Returns the merged arrays on rank 0 (None elsewhere); the caller writes them and marks
    the stage. Items are 0..n_items-1; the caller maps them to images.
    """
    n_chunks = (n_items + chunk_size - 1) // chunk_size
    mine = [c for c in range(n_chunks) if ctx.owns(c)]
    todo = [c for c in mine if not store.has_part(stage, c)]
    start = time.perf_counter()
    bar = progress.bar(stage, total=n_items, initial=n_items - sum(_chunk_len(c, chunk_size, n_items) for c in todo) if ctx.world_size == 1 else 0)
    for chunk in todo:
        positions = np.arange(chunk * chunk_size, min(n_items, (chunk + 1) * chunk_size))
        arrays = compute(chunk, positions)
        store.write_part(stage, chunk, arrays)
        bar.update(len(positions))
    bar.close()
    ctx.barrier()
    if not ctx.is_main:
        return None
    parts = []
    for chunk in range(n_chunks):
        try:
            parts.append(store.read_part(stage, chunk))
        except FileNotFoundError:  # damaged or missing part: recompute it here
            positions = np.arange(chunk * chunk_size, min(n_items, (chunk + 1) * chunk_size))
            parts.append(compute(chunk, positions))
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else {}
    progress.note(f"{stage}: {n_items} items in {time.perf_counter() - start:.1f}s")
    return merged


def _chunk_len(chunk: int, chunk_size: int, n_items: int) -> int:
    return min(n_items, (chunk + 1) * chunk_size) - chunk * chunk_size
