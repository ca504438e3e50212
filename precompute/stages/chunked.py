"""Run a stage in resumable chunks: compute missing parts, then merge them into the cache.

A chunk is `chunk_size` consecutive items. A finished chunk is one atomically written part
file, so a killed run recomputes at most the chunks in flight, and the merged arrays depend
only on the items, never on how many processes computed them or when they were restarted.
The merge streams the parts into the cache one at a time, so memory stays bounded by one part.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np

from experiments.store import ExperimentStore
from precompute.distributed import DistContext
from precompute.progress import Progress


class StageParts:
    """The finished parts of a chunked stage, in item order, read one at a time (rank 0).

    `write` streams them into the cache (memory: one part); `concatenated` is for stages whose
    arrays are small (predictions, class maps).
    """

    def __init__(
        self, store: ExperimentStore, stage: str, n_items: int, chunk_size: int,
        compute: Callable[[int, np.ndarray], dict[str, np.ndarray]],
    ) -> None:
        self.store, self.stage, self.n_items, self.chunk_size, self.compute = store, stage, n_items, chunk_size, compute
        self.n_chunks = (n_items + chunk_size - 1) // chunk_size

    def blocks(self) -> Iterator[dict[str, np.ndarray]]:
        """Each chunk's arrays in order; a damaged or missing part is recomputed (and saved) here."""
        for chunk in range(self.n_chunks):
            try:
                yield self.store.read_part(self.stage, chunk)
            except FileNotFoundError:
                arrays = self.compute(chunk, _positions(chunk, self.chunk_size, self.n_items))
                self.store.write_part(self.stage, chunk, arrays)
                yield arrays

    def write(
        self, prefix: str, derive: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    ) -> None:
        """All parts as `prefix/<name>.npy`, streamed; `derive(block)` adds per-row arrays computed from a block."""
        blocks = self.blocks() if derive is None else ({**b, **derive(b)} for b in self.blocks())
        self.store.write_arrays_streamed(prefix, self.n_items, blocks)

    def concatenated(self) -> dict[str, np.ndarray]:
        """All parts joined in memory (empty dict when there are no items)."""
        parts = list(self.blocks())
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else {}


def run_chunked(
    store: ExperimentStore,
    stage: str,
    n_items: int,
    chunk_size: int,
    compute: Callable[[int, np.ndarray], dict[str, np.ndarray]],
    ctx: DistContext,
    progress: Progress,
) -> StageParts | None:
    """Compute every chunk this rank owns as a part file; return the parts on rank 0 (None elsewhere).

    compute(chunk_number, item_positions) -> arrays whose first axis is len(item_positions).
    The caller writes the parts into the cache (`StageParts.write`) and marks the stage.
    Items are 0..n_items-1; the caller maps them to images.
    """
    n_chunks = (n_items + chunk_size - 1) // chunk_size
    mine = [c for c in range(n_chunks) if ctx.owns(c)]
    todo = [c for c in mine if not store.has_part(stage, c)]
    start = time.perf_counter()
    # each rank's bar counts its own items (with torchrun, the whole stage's count would show a rank at 50 %
    # when the stage is done and double its ETA); chunks already in the cache start it part-way
    own_items = sum(len(_positions(c, chunk_size, n_items)) for c in mine)
    left_items = sum(len(_positions(c, chunk_size, n_items)) for c in todo)
    bar = progress.bar(stage, total=own_items, initial=own_items - left_items)
    for chunk in todo:
        positions = _positions(chunk, chunk_size, n_items)
        arrays = compute(chunk, positions)
        store.write_part(stage, chunk, arrays)
        bar.update(len(positions))
    bar.close()
    ctx.barrier()
    if not ctx.is_main:
        return None
    progress.note(f"{stage}: {n_items} items in {time.perf_counter() - start:.1f}s")
    return StageParts(store, stage, n_items, chunk_size, compute)


def _positions(chunk: int, chunk_size: int, n_items: int) -> np.ndarray:
    """The items of one chunk: (min(chunk_size, rest),) int64."""
    return np.arange(chunk * chunk_size, min(n_items, (chunk + 1) * chunk_size))
