"""Input normalisation as a layer inside the model, so maps and attacks see [0, 1] images."""

from __future__ import annotations

import torch
from torch import nn

NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]] | None] = {
    "none": None,
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class NormalizedClassifier(nn.Module):
    """`net((x - mean) / std)`; x: (B, 3, H, W) in [0, 1]. With input_norm 'none' it is `net(x)`."""

    def __init__(self, net: nn.Module, input_norm: str = "none") -> None:
        super().__init__()
        if input_norm not in NORMALIZATIONS:
            raise ValueError(f"expected input_norm in {sorted(NORMALIZATIONS)}, got {input_norm!r}")
        self.net = net
        self.input_norm = input_norm
        stats = NORMALIZATIONS[input_norm]
        mean, std = stats if stats is not None else ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, classes)
        if self.input_norm != "none":
            x = (x - self.mean) / self.std
        return self.net(x)
