"""Pick how many maps to train at once so that one step fits the device's memory.

The memory of a map step is dominated by the activations autograd saves for the backward pass,
and those grow linearly with the batch. So: run one forward pass at batch 1 and at batch 2 under
`torch.autograd.graph.saved_tensors_hooks`, count the bytes saved (their difference is the cost
of one more image, independent of the weights), multiply by a safety factor for the backward
pass's temporaries and the FFT buffers, and divide the free memory by it. No trial-and-error
out-of-memory probing, and the same rule on CPU (free RAM) and CUDA (free device memory).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from core.fourier import apply_fourier_maps


def saved_bytes_per_image(model: nn.Module, image_shape: tuple[int, ...], device: torch.device) -> int:
    """Bytes autograd saves for one more image in a map step of `model` on images of `image_shape` (C, H, W)."""
    totals = [_saved_bytes(model, batch, image_shape, device) for batch in (1, 2)]
    return max(1, totals[1] - totals[0])


def _saved_bytes(model: nn.Module, batch: int, image_shape: tuple[int, ...], device: torch.device) -> int:
    """Bytes of the distinct storages autograd saves in one map-step forward pass at `batch` images."""
    sizes: dict[int, int] = {}  # storage address -> bytes: storages, not tensors, as views share one allocation

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        sizes[storage.data_ptr()] = storage.nbytes()
        return t

    images = torch.rand(batch, *image_shape, device=device)
    maps = torch.ones_like(images, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(apply_fourier_maps(images, maps)).sum()
    del out  # the saved tensors live only while counting
    return sum(sizes.values())


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on `device`: CUDA's free device memory, or the machine's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 4 GiB
        return 4 << 30


def auto_map_batch_size(
    model: nn.Module,
    image_shape: tuple[int, ...],
    device: torch.device,
    *,
    fraction: float = 0.5,
    safety: float = 3.0,
    cap: int = 1024,
    cpu_cap: int = 64,
) -> int:
    """Maps per step that use at most `fraction` of the free memory (at least 1, at most `cap`).

    On a CPU the batch is also capped at `cpu_cap`: beyond a few dozen images a CPU step gains
    nothing from a larger batch, while the machine's other work loses memory.
    """
    per_image = saved_bytes_per_image(model, image_shape, device) * safety
    batch = int(fraction * free_memory_bytes(device) // per_image)
    return max(1, min(batch, cap if device.type == "cuda" else min(cap, cpu_cap)))
