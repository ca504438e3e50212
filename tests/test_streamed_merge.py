"""Merging a chunked stage into the cache: byte-identical to writing the whole arrays, bounded memory.

The Imagenette map sets hold thousands of 3x224x224 maps (13,394 x 301 kB in float16 = 4 GB), so the
merge must stream the part files into the cache one at a time, never concatenate them in memory.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from experiments.store import ExperimentStore
from precompute.distributed import DistContext
from precompute.progress import Progress
from precompute.stages.chunked import run_chunked
from precompute.stages.maps import sparsity


def _store(path: Path) -> ExperimentStore:
    store = ExperimentStore(str(path))
    store.create("x", {}, {"config_hash": "h"})
    return store


def _maps(rows: np.ndarray, size: int = 16) -> dict[str, np.ndarray]:
    """Deterministic fake map-stage output for the item rows: float16 maps (B, 3, size, size) and per-row numbers."""
    rng = np.random.default_rng(rows[0] if len(rows) else 0)
    maps = np.maximum(rng.standard_normal((len(rows), 3, size, size)), 0).astype(np.float16)
    return {"maps": maps, "steps": rows.astype(np.int64) * 3, "kept": rows % 2 == 0}


def test_streamed_arrays_equal_whole_arrays_byte_for_byte(tmp_path: Path) -> None:
    whole = _maps(np.arange(23))
    streamed_store, whole_store = _store(tmp_path / "a"), _store(tmp_path / "b")
    whole_store.write_arrays("maps/x", whole)
    cuts = [0, 5, 6, 20, 23]
    blocks = [{k: v[a:b] for k, v in whole.items()} for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    streamed_store.write_arrays_streamed("maps/x", 23, blocks)
    assert streamed_store.manifest()["arrays"] == whole_store.manifest()["arrays"]
    for name in whole:
        relpath = f"maps/x/{name}.npy"
        assert Path(streamed_store.full(relpath)).read_bytes() == Path(whole_store.full(relpath)).read_bytes()
    assert streamed_store.verify() == []


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([{"maps": np.zeros((2, 3), np.float16)}, {"maps": np.zeros((2, 4), np.float16)}], "expected blocks of"),
        ([{"maps": np.zeros((2, 3), np.float16)}, {"maps": np.zeros((2, 3), np.float32)}], "expected blocks of"),
        ([{"maps": np.zeros((2, 3)), "k": np.zeros(2)}, {"maps": np.zeros((2, 3))}], "expected every block to hold"),
        ([{"maps": np.zeros((3, 3))}], "3 rows written, 4 announced"),
        ([{"maps": np.zeros((3, 3))}, {"maps": np.zeros((3, 3))}], "more than the 4 rows"),
        ([], "no blocks"),
    ],
)
def test_a_failed_streamed_write_changes_nothing(tmp_path: Path, blocks: list, message: str) -> None:
    store = _store(tmp_path / "s")
    store.write_arrays("maps/x", {"maps": np.ones((4, 3))})
    before = Path(store.full("maps/x/maps.npy")).read_bytes()
    manifest_before = Path(store.manifest_path).read_bytes()
    with pytest.raises(ValueError, match=message):
        store.write_arrays_streamed("maps/x", 4, blocks)
    assert Path(store.full("maps/x/maps.npy")).read_bytes() == before
    assert Path(store.manifest_path).read_bytes() == manifest_before
    assert not list(Path(store.path).rglob("*.tmp-*"))  # no temporary file left behind


def test_stage_merge_holds_one_part_in_memory_not_the_whole_set(tmp_path: Path) -> None:
    """64 parts of 16 maps at 3x64x64 float16 (25 MB in all): the merge's peak is about one part (393 kB)."""
    store = _store(tmp_path / "s")
    n_items, unit = 1024, 16
    parts = run_chunked(store, "maps-x", n_items, unit, lambda c, rows: _maps(rows, 64), DistContext(), Progress(quiet=True))
    assert parts is not None
    part_bytes = unit * 3 * 64 * 64 * 2
    tracemalloc.start()
    try:
        parts.write("maps/x", derive=lambda b: dict(zip(("nonzero", "dc_only"), sparsity(b["maps"]), strict=True)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * part_bytes, f"merge peaked at {peak} bytes; one part is {part_bytes}, all parts {n_items // unit * part_bytes}"
    expected = _concatenate([_maps(np.arange(a, a + unit), 64) for a in range(0, n_items, unit)])
    np.testing.assert_array_equal(store.load_array("maps/x/maps.npy"), expected["maps"])
    np.testing.assert_array_equal(store.load_array("maps/x/steps.npy"), expected["steps"])
    nonzero, dc_only = sparsity(expected["maps"])
    np.testing.assert_array_equal(store.load_array("maps/x/nonzero.npy"), nonzero)
    np.testing.assert_array_equal(store.load_array("maps/x/dc_only.npy"), dc_only)


def test_a_damaged_part_is_recomputed_during_the_merge(tmp_path: Path) -> None:
    store = _store(tmp_path / "s")
    calls: list[int] = []

    def compute(chunk: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(chunk)
        return _maps(rows)

    parts = run_chunked(store, "maps-x", 10, 4, compute, DistContext(), Progress(quiet=True))
    assert parts is not None and calls == [0, 1, 2]
    Path(store.part_path("maps-x", 1)).write_bytes(b"not an npz")
    parts.write("maps/x")
    assert calls == [0, 1, 2, 1]
    expected = _concatenate([_maps(np.arange(0, 4)), _maps(np.arange(4, 8)), _maps(np.arange(8, 10))])
    np.testing.assert_array_equal(store.load_array("maps/x/maps.npy"), expected["maps"])


def _concatenate(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}


class _CountingBars(Progress):
    """Records each bar's total, starting count and final count instead of drawing it."""

    def __init__(self) -> None:
        super().__init__(quiet=False, rank=1)
        self.bars: list[dict[str, int]] = []

    def bar(self, stage: str, total: int, initial: int = 0) -> object:
        record = {"total": total, "count": initial, "initial": initial}
        self.bars.append(record)

        class _Bar:
            def update(self, n: int = 1) -> None:
                record["count"] += n

            def close(self) -> None:
                pass

        return _Bar()


class _SecondOfTwoRanks(DistContext):
    """Rank 1 of 2 without a process group: the barrier is a no-op, rank 0 never returns here."""

    def __init__(self) -> None:
        super().__init__(rank=1, world_size=2)

    def barrier(self) -> None:
        pass


def test_a_ranks_progress_bar_counts_its_own_items(tmp_path: Path) -> None:
    """With torchrun, rank 1 of 2 owns chunks 1 and 3 of 23 items in chunks of 5 (10 items): its bar ends
    full at 10, not at 10 of 23; a chunk already in the cache starts it part-way."""
    store = _store(tmp_path / "s")
    bars = _CountingBars()
    assert run_chunked(store, "maps-x", 23, 5, lambda c, rows: _maps(rows), _SecondOfTwoRanks(), bars) is None
    assert bars.bars == [{"total": 10, "count": 10, "initial": 0}]
    Path(store.part_path("maps-x", 3)).unlink()
    run_chunked(store, "maps-x", 23, 5, lambda c, rows: _maps(rows), _SecondOfTwoRanks(), bars)
    assert bars.bars[1] == {"total": 10, "count": 10, "initial": 5}
