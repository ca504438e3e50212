"""The shared stage sequence (precompute/stages/base.py) on toy stages: skip when complete, merge what the
chunks computed, record the summary, clear the parts, resume from the parts a killed run left, rank 0 alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.format import parts_name
from experiments.store import ExperimentStore
from precompute.distributed import DistContext
from precompute.progress import Progress
from precompute.stages.base import Chunks, Outcome, run_chunked_stage, run_rank0_stage
from precompute.stages.chunked import StageParts
from precompute.stages.context import StageContext


class _Notes(Progress):
    """Keeps the log lines instead of printing them."""

    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.lines: list[str] = []

    def note(self, line: str) -> None:
        self.lines.append(line)


class _SecondOfTwoRanks(DistContext):
    """Rank 1 of 2 without a process group: the barrier is a no-op."""

    def __init__(self) -> None:
        super().__init__(rank=1, world_size=2)

    def barrier(self) -> None:
        pass


def _ctx(path: Path, dist: DistContext | None = None) -> StageContext:
    store = ExperimentStore(str(path))
    if not store.exists():
        store.create("x", {}, {"config_hash": "h"})
    return StageContext(None, store, None, None, dist or DistContext(), _Notes())  # type: ignore[arg-type]


def _squares(calls: list[int], n_items: int = 10, chunk_size: int = 4, parts: str | None = None) -> Chunks:
    """A toy chunked stage: item i -> i squared, merged into `toy/squares.npy`; summary: their sum."""

    def compute(chunk: int, positions: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(chunk)
        return {"squares": positions.astype(np.int64) ** 2}

    def merge(parts_: StageParts) -> Outcome:
        merged = parts_.concatenated()
        parts_.store.write_arrays("toy", merged)
        return Outcome({"total": int(merged["squares"].sum())}, "merged")

    return Chunks(n_items, chunk_size, compute, merge, parts=parts)


def test_a_chunked_stage_merges_records_its_summary_and_clears_its_parts(tmp_path: Path) -> None:
    ctx, calls = _ctx(tmp_path / "s"), []
    run_chunked_stage(ctx, "toy-stage", lambda: _squares(calls))
    assert calls == [0, 1, 2]  # 10 items in chunks of 4
    np.testing.assert_array_equal(ctx.store.load_array("toy/squares.npy"), np.arange(10) ** 2)
    info = ctx.store.stage_info("toy-stage")
    assert info["status"] == "complete" and info["total"] == sum(i * i for i in range(10)) == 285
    assert isinstance(info["seconds"], float) and info["seconds"] >= 0
    assert not (Path(ctx.store.path) / "parts").exists()
    assert ctx.progress.lines[-1] == "toy-stage: merged"


def test_a_complete_stage_is_not_planned_again(tmp_path: Path) -> None:
    ctx, calls = _ctx(tmp_path / "s"), []
    run_chunked_stage(ctx, "toy-stage", lambda: _squares(calls))

    def must_not_run() -> Chunks:
        raise AssertionError("planned a complete stage")

    run_chunked_stage(ctx, "toy-stage", must_not_run)
    run_rank0_stage(ctx, "toy-stage", must_not_run)  # type: ignore[arg-type]
    assert calls == [0, 1, 2]


@pytest.mark.parametrize(("unit", "usual", "expected"), [(4, 4, "toy-stage"), (8, 4, "toy-stage-by8")], ids=["usual", "other"])
def test_a_resumed_stage_recomputes_only_the_missing_parts(tmp_path: Path, unit: int, usual: int, expected: str) -> None:
    """Part 1 left by a killed run is used as it is (here deliberately not the squares: proof it was read)."""
    ctx, calls = _ctx(tmp_path / "s"), []
    name = parts_name("toy-stage", unit, usual)
    assert name == expected
    ctx.store.write_part(name, 1, {"squares": np.full(min(unit, 10 - unit), -1, np.int64)})
    run_chunked_stage(ctx, "toy-stage", lambda: _squares(calls, chunk_size=unit, parts=name))
    reference = np.arange(10) ** 2
    reference[unit : 2 * unit] = -1
    assert calls == [c for c in range(-(-10 // unit)) if c != 1]
    np.testing.assert_array_equal(ctx.store.load_array("toy/squares.npy"), reference)
    assert not ctx.store.has_part(name, 1)


def test_a_rank0_stage_builds_on_rank_0_only(tmp_path: Path) -> None:
    builds: list[str] = []

    def build() -> Outcome:
        builds.append("built")
        return Outcome({"n": 3}, "three")

    run_rank0_stage(_ctx(tmp_path / "s", _SecondOfTwoRanks()), "toy-table", build)
    assert builds == []
    ctx = _ctx(tmp_path / "s")
    run_rank0_stage(ctx, "toy-table", build)
    assert builds == ["built"]
    assert ctx.store.stage_info("toy-table")["n"] == 3
    line = ctx.progress.lines[-1]
    assert line.startswith("toy-table: three (") and line.endswith("s)"), line
