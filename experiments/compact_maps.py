"""Compact per-image maps for results-only copies: a float16 CSR-like triplet of arrays per map set.

`precompute prune DIR --drop images maps train --compact-maps` keeps every map set's maps in this form, so the
app and the statistics stage still read them. The maps are sparse (about 60-110 of 3072 entries non-zero), so
each set is stored as
- `compact_values.npy` (nnz,) float16: the non-zero entries, row by row, in C, H, W order;
- `compact_index.npy` (nnz,) uint16 (uint32 when C·H·W > 65535): each entry's flat position in its map;
- `compact_offsets.npy` (M + 1,) int64: row r's entries are [offsets[r], offsets[r + 1]);
- `compact_shape.npy` (4,) int64: (M, C, H, W) of the dense maps.

Decoded, a row equals the float16 value of the stored map bit for bit (a float32 map loses what float16
cannot hold: relative 2⁻¹¹, values below 6·10⁻⁸ become 0). Measured on the demo's four map sets (4 × 20 maps):
dense float16 .npy 492 kB, 27.5 kB after zlib (git's blob compression); the triplet 34 kB, 27.4 kB after zlib.
Equal in the repository's pack, 14 times smaller in a checkout, hence the triplet.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from experiments.format import map_dir, npy_path
from experiments.store import ExperimentStore

VALUES, INDEX, OFFSETS, SHAPE = "compact_values", "compact_index", "compact_offsets", "compact_shape"
COMPACT_NAMES = (VALUES, INDEX, OFFSETS, SHAPE)
BLOCK = 256  # maps encoded at a time: a 224x224 set is never decoded whole


def encode_maps(maps: np.ndarray, block: int = BLOCK) -> dict[str, np.ndarray]:
    """(M, C, H, W) dense maps (memory-mapped is fine) -> the four arrays of the module docstring."""
    if maps.ndim != 4:
        raise ValueError(f"expected maps of shape (M, C, H, W), got shape {tuple(maps.shape)}")
    m, width = maps.shape[0], int(np.prod(maps.shape[1:]))
    index_dtype = np.uint16 if width <= np.iinfo(np.uint16).max + 1 else np.uint32
    values, index, counts = [], [], []
    for start in range(0, m, block):
        rows = np.asarray(maps[start:start + block]).astype(np.float16).reshape(-1, width)  # (b, C·H·W)
        nonzero = rows.view(np.uint16) != 0  # bitwise, so a stored -0.0 survives too
        row_of, column = np.nonzero(nonzero)
        values.append(rows[row_of, column])
        index.append(column.astype(index_dtype))
        counts.append(nonzero.sum(axis=1))
    offsets = np.zeros(m + 1, np.int64)
    if m:
        offsets[1:] = np.cumsum(np.concatenate(counts))
    return {
        VALUES: np.concatenate(values) if values else np.zeros(0, np.float16),
        INDEX: np.concatenate(index) if index else np.zeros(0, index_dtype),
        OFFSETS: offsets,
        SHAPE: np.asarray(maps.shape, np.int64),
    }


class CompactMaps:
    """The dense (M, C, H, W) float16 maps of a compact set, decoded on indexing: maps[r], maps[rows], maps[a:b].

    Stands where a memory-mapped maps.npy stood (`Experiment.map_set`), so readers index it the same way.
    """

    def __init__(self, values: np.ndarray, index: np.ndarray, offsets: np.ndarray, shape: np.ndarray) -> None:
        self.values, self.index, self.offsets = values, index, np.asarray(offsets)
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 4 or len(self.offsets) != self.shape[0] + 1:
            raise ValueError(f"expected a (M, C, H, W) shape and M + 1 offsets, got {self.shape} and "
                             f"{len(self.offsets)} offsets")

    dtype = np.dtype(np.float16)
    ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        """(k,) row numbers -> (k, C, H, W) float16."""
        width = int(np.prod(self.shape[1:]))
        out = np.zeros((len(rows), width), np.float16)
        for i, r in enumerate(rows):
            lo, hi = int(self.offsets[r]), int(self.offsets[r + 1])
            out[i, np.asarray(self.index[lo:hi], np.int64)] = self.values[lo:hi]
        return out.reshape(len(rows), *self.shape[1:])

    def __getitem__(self, key: object) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            row = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= row < self.shape[0]:
                raise IndexError(f"map row {key} out of range for {self.shape[0]} maps")
            return self._rows(np.array([row]))[0]
        if isinstance(key, slice):
            return self._rows(np.arange(self.shape[0])[key])
        rows = np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if rows.ndim != 1 or rows.dtype.kind not in "iu":
            raise IndexError(f"expected an integer, a slice or 1-D row numbers, got {key!r}")
        return self._rows(np.where(rows < 0, rows + self.shape[0], rows))

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        dense = self._rows(np.arange(self.shape[0]))
        return dense if dtype is None else dense.astype(dtype)

    def blocks(self, block: int = BLOCK) -> Iterator[np.ndarray]:
        """The dense maps a block of rows at a time."""
        for start in range(0, self.shape[0], block):
            yield self[start:start + block]


def has_compact_maps(store: ExperimentStore, map_set: str) -> bool:
    """Whether map set `map_set` holds a compact copy of its maps."""
    return all(store.has_array(npy_path(map_dir(map_set), name)) for name in COMPACT_NAMES)


def load_compact_maps(store: ExperimentStore, map_set: str) -> CompactMaps:
    """The compact maps of `map_set` (its arrays memory-mapped)."""
    folder = map_dir(map_set)
    return CompactMaps(*(store.load_array(npy_path(folder, name)) for name in COMPACT_NAMES))


def load_maps(store: ExperimentStore, map_set: str) -> np.ndarray | CompactMaps:
    """A map set's maps, indexable by rows: maps.npy memory-mapped, else its compact copy (KeyError if neither)."""
    dense = npy_path(map_dir(map_set), "maps")
    if store.has_array(dense):
        return store.load_array(dense)
    if has_compact_maps(store, map_set):
        return load_compact_maps(store, map_set)
    raise KeyError(f"{store.path} holds no maps of {map_set!r} (dropped from a results-only copy)")
