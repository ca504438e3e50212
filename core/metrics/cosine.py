"""Cosine similarity of paired maps (METHOD §4): one value per pair, summarised as mean ± std.

A zero row (a map that kept nothing) has no direction. Its cosine with anything is defined
here as 0 ("no shared direction") rather than NaN, so one empty map cannot turn the whole
mean into NaN; `cosine_similarities` documents this and the tests check it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def cosine_similarities(a: Tensor, b: Tensor) -> Tensor:
    """Per-pair cosine of rows: (N, D), (N, D) -> (N,) float64; pairs with a zero row give 0."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"expected two (N, D) arrays of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a = a.double()
    b = b.double().to(a.device)
    dots = (a * b).sum(dim=1)  # (N,)
    norms = a.norm(dim=1) * b.norm(dim=1)  # (N,)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    return torch.where(norms > 0, dots / safe, torch.zeros_like(dots))  # (N,)


def cosine_summary(values: Tensor) -> tuple[float, float]:
    """(mean, population standard deviation) of per-pair cosines (the paper's "mean ± std")."""
    if values.ndim != 1 or values.numel() == 0:
        raise ValueError(f"expected a non-empty 1-D tensor of cosines, got shape {tuple(values.shape)}")
    values = values.double()
    return float(values.mean()), float(values.std(correction=0))
