"""Automatic map batch size (core.autobatch): the per-image memory count and the rule built on it."""

from __future__ import annotations

import torch
from torch import nn

from core.autobatch import auto_map_batch_size, saved_bytes_per_image


class _OneConv(nn.Module):
    """conv 3->8 (3×3, padding 1) then a sum: autograd saves known tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(1).sum(1, keepdim=True)


def test_saved_bytes_grow_with_the_image_area():
    model = _OneConv().eval()
    small = saved_bytes_per_image(model, (3, 8, 8), torch.device("cpu"))
    large = saved_bytes_per_image(model, (3, 16, 16), torch.device("cpu"))
    # per image at least the conv's float32 input (3·H·W·4 bytes); 4× the pixels -> 4× the bytes
    assert small >= 3 * 8 * 8 * 4
    assert large == 4 * small


def test_batch_size_follows_free_memory(monkeypatch):
    import core.autobatch as autobatch

    model = _OneConv().eval()
    per_image = saved_bytes_per_image(model, (3, 8, 8), torch.device("cpu"))
    monkeypatch.setattr(autobatch, "free_memory_bytes", lambda device: 100 * per_image * 3 * 2)
    assert auto_map_batch_size(model, (3, 8, 8), torch.device("cpu"), cpu_cap=10_000) == 100
    monkeypatch.setattr(autobatch, "free_memory_bytes", lambda device: 0)
    assert auto_map_batch_size(model, (3, 8, 8), torch.device("cpu")) == 1  # never below one
    monkeypatch.setattr(autobatch, "free_memory_bytes", lambda device: 1 << 50)
    assert auto_map_batch_size(model, (3, 8, 8), torch.device("cpu")) == 64  # CPU cap
