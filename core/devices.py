"""Device selection: 'auto' picks CUDA when present."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device, with a clear error when CUDA is absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"expected a CUDA device for --device {name}, but torch sees none (use cpu or auto)")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"expected device auto, cpu, cuda or cuda:N, got {name!r}")
    return torch.device(name)
