"""What every stage needs: the config, the store, the model, the device, ranks and progress."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from experiments.config import ExperimentConfig
from experiments.format import images_path, npy_path
from experiments.store import ExperimentStore
from precompute.distributed import DistContext
from precompute.progress import Progress


@dataclass
class StageContext:
    config: ExperimentConfig
    store: ExperimentStore
    model: nn.Module  # frozen classifier on `device`, takes [0, 1] images
    device: torch.device
    dist: DistContext
    progress: Progress

    def images(self, prefix: str, positions: np.ndarray) -> torch.Tensor:
        """Rows of `<prefix>/images.npy` (uint8) as float (B, 3, H, W) in [0, 1] on the device."""
        rows = np.asarray(self.store.load_array(images_path(prefix))[positions])
        return torch.from_numpy(rows).to(self.device).float().div_(255)

    def array(self, folder: str, name: str) -> np.ndarray:
        """Array `name` of a cache folder (experiments.format), e.g. array(classify_dir(TEST), "pred")."""
        return np.asarray(self.store.load_array(npy_path(folder, name)))

    def stage_seed(self, *parts: object) -> int:
        """A seed that depends only on the experiment seed and the named unit of work."""
        import zlib

        key = "/".join(str(p) for p in parts).encode()
        return (self.config.seed * 1_000_003 + zlib.crc32(key)) % (2**31 - 1)
