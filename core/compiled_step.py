"""The map step under torch.compile: `core.map_training.map_step`'s tensor work as compiled kernels, for long runs.

Two compiled pieces, because `torch.autograd.grad` inside a compiled region breaks the graph:

- `map_loss(network, apply_maps, lam, channels_last, leaf, images, targets)`: filter, forward, CE + λ·Σ|M|.
  AOTAutograd compiles its backward too, so the input gradient taken outside runs compiled code.
- `adam_clamp(...)`: SlotAdam's update and the clamp to [0, 1] fused into one element-wise kernel.

Shapes stay fixed: the trainer pads its shrinking tail batch with inert slots (core.map_training), so the full
batch compiles once. A batch split between an early and a late network (`--bf16`'s float32 steps) passes
sub-batches of varying size; torch's automatic dynamic shapes then compile each network once more with a
symbolic batch size, and never again. The network is an argument (not a closure), so a fresh BatchNorm-folded
copy of the same architecture, as every call of `train_maps` makes, reuses the compiled code.

CPU: inductor's C++ kernels (a C++ compiler is needed: `compiler_problem`). CUDA: `mode="reduce-overhead"`,
inductor's CUDA graphs, which replay the step's many small kernels as one launch.

`resolve_compile` turns `--compile auto|on|off` into a yes or no: compiling costs tens of seconds on two CPU
cores, so `auto` compiles only runs long enough to win that back, and falls back to eager with a warning where
no compiler is found.
"""

from __future__ import annotations

import functools
import os
import shutil
import warnings
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from core.map_training import SlotAdam

COMPILE_CHOICES = ("auto", "on", "off")
# `auto` compiles a run of at least this many image-steps: ~2.5 min of eager float32 on two CPU cores, a few
# times the ~30-60 s that compiling the step takes there (bench/bench_step.py)
AUTO_MIN_IMAGE_STEPS = 100_000
MISSING_COMPILER_FIX = {
    "cpu": "install a C++ compiler (e.g. apt-get install g++) or set CXX to one, or use --compile off",
    "cuda": "pip install triton (and a C compiler for its launcher), or use --compile off",
}


def compiler_problem(device_type: str) -> str | None:
    """Why torch.compile cannot build kernels for `device_type` here (a sentence naming the fix), or None."""
    if device_type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return f"torch.compile on CUDA needs Triton, which is not installed: {MISSING_COMPILER_FIX['cuda']}"
        return None
    compiler = os.environ.get("CXX") or "g++"  # what inductor runs (torch._inductor.cpp_builder.get_cpp_compiler)
    if shutil.which(compiler) is None:
        return f"torch.compile on the CPU needs a C++ compiler, and {compiler!r} was not found: " \
               f"{MISSING_COMPILER_FIX['cpu']}"
    return None


def resolve_compile(setting: str, device: torch.device, image_steps: int) -> bool:
    """Whether a map trainer of about `image_steps` image-steps on `device` compiles its step.

    on: always, ValueError (one line, naming the fix) without a working compiler; off: never; auto: when
    image_steps >= AUTO_MIN_IMAGE_STEPS and a compiler is there, else eager (a warning says so when only the
    compiler is missing).
    """
    if setting not in COMPILE_CHOICES:
        raise ValueError(f"expected --compile one of {', '.join(COMPILE_CHOICES)}, got {setting!r}")
    if setting == "off" or (setting == "auto" and image_steps < AUTO_MIN_IMAGE_STEPS):
        return False
    problem = compiler_problem(device.type)
    if problem is None:
        return True
    if setting == "on":
        raise ValueError(f"--compile on: {problem}")
    warnings.warn(f"--compile auto: training the maps eagerly; {problem}", RuntimeWarning, stacklevel=2)
    return False


def map_loss(
    network: nn.Module,
    apply_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lam: float,
    channels_last: bool,
    leaf: torch.Tensor,
    images: torch.Tensor,
    targets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (S, K) and per-slot losses CE + λ·Σ|M| (S,) of maps `leaf` (S, C, H, W) on images (S, C, H, W)."""
    filtered = apply_maps(images, leaf)  # (S, C, H, W)
    if channels_last:
        filtered = filtered.contiguous(memory_format=torch.channels_last)
    logits = network(filtered)  # (S, K)
    cross_entropy = F.cross_entropy(logits, targets, reduction="none")  # (S,)
    return logits, cross_entropy + lam * leaf.abs().sum(dim=(1, 2, 3))


def adam_clamp(
    maps: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, steps: torch.Tensor,
    lr: float, beta1: float, beta2: float, eps: float,
) -> None:
    """SlotAdam's update of every slot (core.map_training.SlotAdam._update, the same formulas), then the clamp.

    maps, grad, exp_avg, exp_avg_sq: (S, C, H, W); steps (S,) int64; all but grad updated in place.
    """
    steps += 1
    shape = (-1,) + (1,) * (maps.dim() - 1)
    t64 = steps.to(torch.float64)
    step_size = (lr / (1 - beta1**t64)).to(maps.dtype).view(shape)  # (S, 1, 1, 1)
    bc2_sqrt = torch.sqrt(1 - beta2**t64).to(maps.dtype).view(shape)  # (S, 1, 1, 1)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
    maps.sub_(step_size * exp_avg / denom).clamp_(0, 1)


@functools.cache
def _compiled(device_type: str) -> tuple[Callable, Callable]:
    """The compiled `map_loss` and `adam_clamp` for one device type (compiled lazily, at their first call)."""
    mode = "reduce-overhead" if device_type == "cuda" else None  # CUDA graphs on CUDA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.compile(map_loss, mode=mode), torch.compile(adam_clamp, mode=mode)


def compiled_map_step(
    assignment: list[tuple[nn.Module, list[int] | None]],
    images: torch.Tensor,
    targets: torch.Tensor,
    maps: torch.Tensor,
    adam: SlotAdam,
    lam: float,
    apply_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    channels_last: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`core.map_training.map_step` with compiled kernels: the same inputs, effects and results.

    assignment: which network runs which slots, [(network, None)] for all slots through one network, else
    [(network, slot indices), ...] covering every slot once. adam: the trainer's SlotAdam (its moments and step
    counts are updated in place). Returns the detached logits (S, K) and per-slot losses (S,).
    """
    loss_fn, adam_fn = _compiled(maps.device.type)
    if maps.device.type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs are consumed: replay may reuse them
    leaf = maps.detach().requires_grad_(True)
    if len(assignment) == 1 and assignment[0][1] is None:
        logits, per_image = loss_fn(assignment[0][0], apply_maps, lam, channels_last, leaf, images, targets)
    else:
        parts, order = [], []
        for network, slots in assignment:
            index = torch.tensor(slots, device=maps.device)
            parts.append(loss_fn(network, apply_maps, lam, channels_last, leaf.index_select(0, index),
                                 images.index_select(0, index), targets.index_select(0, index)))
            order += slots
        back = torch.tensor(order, device=maps.device).argsort()  # rows back in slot order
        logits = torch.cat([part[0] for part in parts])[back]  # (S, K)
        per_image = torch.cat([part[1] for part in parts])[back]  # (S,)
    (grad,) = torch.autograd.grad(per_image.sum(), leaf)
    with torch.no_grad():
        adam_fn(maps, grad, adam.exp_avg, adam.exp_avg_sq, adam.steps, adam.lr, adam.beta1, adam.beta2, adam.eps)
    return logits.detach().clone(), per_image.detach().clone()  # clones: CUDA-graph outputs are overwritten


_COMPILED_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> its compiled wrapper


def compiled_network(network: nn.Module) -> nn.Module:
    """`network` under torch.compile (forward and, through AOTAutograd, backward), the same wrapper per network.

    For the class-map step (core.class_maps), whose minibatch rows vary (pools smaller than the minibatch, classes
    that stop): automatic dynamic shapes compile it once more with a symbolic batch size, then never again.
    Pass the same network object each time (core.map_training.folded_once) so nothing recompiles per call.
    """
    wrapper = _COMPILED_NETWORKS.get(network)
    if wrapper is None:
        mode = "reduce-overhead" if next(network.parameters()).device.type == "cuda" else None
        wrapper = _COMPILED_NETWORKS[network] = torch.compile(network, mode=mode)
    return wrapper
