"""Pool spatial maps to a common size and flatten them to one row per map (METHOD §4).

224×224 maps (Imagenette) are pooled to 32×32 before the correlation metrics, so that every
metric sees 3·32·32 = 3072 features as for CIFAR-10. The paper says average pooling, the
published code uses max pooling with kernel 7; adaptive pooling from 224 to 32 has exactly
kernel 7 and stride 7, so both variants are covered by `pool_maps(mode=...)`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

POOL_MODES = ("avg", "max")


def pool_maps(maps: Tensor, size: int = 32, mode: str = "avg") -> Tensor:
    """(N, C, H, W) maps -> (N, C, size, size) by adaptive avg or max pooling; identity at H == W == size."""
    if mode not in POOL_MODES:
        raise ValueError(f"expected pool mode in {list(POOL_MODES)}, got {mode!r}")
    if maps.ndim != 4:
        raise ValueError(f"expected maps of shape (N, C, H, W), got shape {tuple(maps.shape)}")
    if size < 1:
        raise ValueError(f"expected a pool size >= 1, got {size}")
    height, width = maps.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"expected maps at least {size}x{size} to pool to {size}x{size}, got {height}x{width}")
    if height == size and width == size:
        return maps
    if not maps.is_floating_point():
        maps = maps.double()  # adaptive pooling needs a float dtype
    if mode == "avg":
        return F.adaptive_avg_pool2d(maps, size)  # (N, C, size, size)
    return F.adaptive_max_pool2d(maps, size)  # (N, C, size, size)


def flatten_rows(x: Tensor) -> Tensor:
    """(N, D) or (N, C, H, W) -> (N, D): one row per map, features in C, H, W order."""
    if x.ndim not in (2, 4):
        raise ValueError(f"expected an (N, D) or (N, C, H, W) array, got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1)


__all__ = ["POOL_MODES", "pool_maps", "flatten_rows"]
