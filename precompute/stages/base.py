"""The sequence every stage shares: skip, time, compute, write, mark, clear the parts, wait, reload.

A stage file holds only what its stage computes and hands it to one of two runners:

- `run_chunked_stage(ctx, stage, plan)` for work that grows with the images (classify, attacks, maps,
  class maps): `plan()` returns a `Chunks`, the number of items, the unit of resumable work and the
  per-chunk `compute`, plus `merge`, which writes the finished parts into the cache (rank 0) and returns
  the stage's `Outcome`. Every rank computes the chunks it owns (precompute/distributed.py) as part files,
  so a killed run resumes where it stopped and the arrays do not depend on the number of ranks.
- `run_rank0_stage(ctx, stage, build)` for small or sequential work (decoding the data, correlations,
  the defence table): rank 0 runs `build()`, which writes its files and returns the `Outcome`.

Either runner returns at once when the manifest says `stage` is complete, records the summary with the
seconds the stage took, removes the part files, and lets every rank wait for rank 0 and reload the
manifest, so the next stage sees what this one wrote. Names of stages and files come from
experiments/format.py.

A new stage (an adaptive attack, a noise ceiling, statistics) is one small file: a
`run_<name>_stage(ctx, ...)` that names the stage with a function of experiments/format.py and calls one
of the two runners with its compute and its summary; precompute/runner.py calls it in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from precompute.stages.chunked import StageParts, run_chunked
from precompute.stages.context import StageContext


@dataclass(frozen=True)
class Outcome:
    """What a finished stage records: its numbers in the manifest and one line for the log."""

    summary: dict[str, Any]  # the stage's entry in the manifest, after its status, completion time and seconds
    note: str  # logged as "<stage>: <note>"


@dataclass(frozen=True)
class Chunks:
    """How a chunked stage splits its work: items 0..n_items-1 in units of `chunk_size`, one part file each."""

    n_items: int
    chunk_size: int
    compute: Callable[[int, np.ndarray], dict[str, np.ndarray]]  # (chunk, item positions) -> arrays, rows first
    merge: Callable[[StageParts], Outcome]  # rank 0: write the parts into the cache, return the outcome
    parts: str | None = None  # name of the part files (experiments.format.parts_name); None: the stage's name


def run_chunked_stage(ctx: StageContext, stage: str, plan: Callable[[], Chunks]) -> None:
    """Run `stage` in resumable chunks on every rank and merge it on rank 0, unless the cache holds it."""
    if ctx.store.stage_done(stage):
        return
    start = time.perf_counter()
    chunks = plan()
    parts_name = chunks.parts or stage
    parts = run_chunked(ctx.store, parts_name, chunks.n_items, chunks.chunk_size, chunks.compute, ctx.dist, ctx.progress)
    if parts is not None:
        outcome = chunks.merge(parts)
        ctx.store.mark_stage(stage, seconds=round(time.perf_counter() - start, 2), **outcome.summary)
        ctx.store.clear_parts(parts_name)
        ctx.progress.note(f"{stage}: {outcome.note}")
    _wait_for_rank0(ctx)


def run_rank0_stage(ctx: StageContext, stage: str, build: Callable[[], Outcome]) -> None:
    """Run `stage` on rank 0 alone (the other ranks wait), unless the cache holds it."""
    if ctx.store.stage_done(stage):
        return
    if ctx.dist.is_main:
        start = time.perf_counter()
        outcome = build()
        seconds = time.perf_counter() - start
        ctx.store.mark_stage(stage, seconds=round(seconds, 2), **outcome.summary)
        ctx.progress.note(f"{stage}: {outcome.note} ({seconds:.1f}s)")
    _wait_for_rank0(ctx)


def _wait_for_rank0(ctx: StageContext) -> None:
    """Every rank waits until rank 0 has written the stage, then re-reads the manifest."""
    ctx.dist.barrier()
    ctx.store.reload()
