"""Per-image Fourier map training (METHOD §2), batched, with per-image stopping and refill.

One learnable map M per image (same shape as the image, natural FFT order, initialised to ones,
clamped to [0, 1] after every step) is trained so that the frozen classifier still predicts the
target on x_F = Re(IFFT2(M ⊙ FFT2(x))) while the L1 penalty λ·Σ|M| makes the map sparse.

Why batched: the batch loss is the *sum* of the per-image losses, so each map's gradient is its
single-image gradient, and Adam acts element-wise; with a per-slot step count (below) every map
follows the trajectory of one-at-a-time training, up to float rounding of batched convolutions.
A converged image leaves the batch and the next waiting image takes its slot, so the batch stays
full until the queue is empty (then it shrinks).

torch.optim.Adam keeps one step counter per parameter tensor, which would give a refilled slot
the bias correction of a map that started long ago; `SlotAdam` keeps one counter per slot.

The loop's parts: `_MapSlots` (which image each slot holds, refill and shrink), `map_step` (the tensor
work of one step, a candidate for compiling), `_FinishedImages` (the result as images finish); the stop
rule is core.stopping's, shared with the class maps.

Deterministic: nothing is random. On CPU two runs give identical maps; on CUDA the same holds
unless cuDNN picks non-deterministic kernels (use `torch.use_deterministic_algorithms` to forbid).
Everything lives on the images' device.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.bases import Basis, get_basis
from core.compiled_step import compiled_map_step
from core.fourier import apply_fourier_maps
from core.hidden_layers import INPUT, feature_shape, layer_features, split_at
from core.stopping import MapFitSettings, SlotHistory, StopRule


@dataclass
class MapTrainConfig(MapFitSettings):
    """Hyper-parameters of per-image map training. Defaults: the published CIFAR-10 setting.

    `validate()` and `stop_rule` come from MapFitSettings, shared with the class-map config.
    """

    lam: float = 0.5  # weight of the L1 penalty λ·Σ|M|, summed over all C·H·W entries (not a mean)
    lr: float = 0.01  # Adam learning rate (betas 0.9, 0.999, eps 1e-8: torch defaults)
    min_steps: int = 500  # the stop test is only tried once the step number t exceeds this
    max_steps: int = 5000  # stop unconditionally once t exceeds this (so at most max_steps + 1 steps)
    tol: float = 1e-5  # converged when |loss_t - mean(last `window` losses)| < tol
    window: int = 20  # how many recent losses (loss_t included) the running mean covers


@dataclass
class MapResult:
    """Maps and per-image outcome of `train_maps`, in the order of the input images.

    maps live on the images' device; the small per-image vectors on the CPU.
    """

    maps: torch.Tensor  # (N, C, H, W) float32 in [0, 1], natural FFT order (the cache stores them shifted)
    steps: torch.Tensor  # (N,) int64: Adam steps taken (= the step number t at which the image stopped)
    final_loss: torch.Tensor  # (N,) float64: loss_t of the last step (CE + λ·Σ|M|)
    kept: torch.Tensor  # (N,) bool: the last forward pass predicted the target (else: failed image)
    final_pred: torch.Tensor  # (N,) int64: that last forward pass's prediction


class SlotAdam:
    """Adam acting element-wise on a batch of parameter slots, with one step count per slot.

    Same arithmetic as torch.optim.Adam's single-tensor path (no weight decay, no amsgrad):
    m ← lerp(m, g, 1 − β1); v ← β2·v + (1 − β2)·g²; p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε),
    but t is counted per slot (dim 0), so slots that started at different times each get their own
    bias correction. `reset` starts a slot afresh (new image in that slot).
    """

    def __init__(
        self, params: torch.Tensor, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, betas[0], betas[1], eps
        self.exp_avg = torch.zeros_like(params)  # (S, ...) first moment
        self.exp_avg_sq = torch.zeros_like(params)  # (S, ...) second moment
        self.steps = torch.zeros(params.shape[0], dtype=torch.int64, device=params.device)  # (S,)

    @torch.no_grad()
    def step(self, params: torch.Tensor, grads: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Update `params` (S, ...) in place from `grads`; only the slots `rows` (int64 index) if given."""
        if rows is None:
            self._update(params, grads, self.exp_avg, self.exp_avg_sq, self.steps)
            return
        p, m, v, t = params[rows], self.exp_avg[rows], self.exp_avg_sq[rows], self.steps[rows]
        self._update(p, grads[rows], m, v, t)
        params[rows], self.exp_avg[rows], self.exp_avg_sq[rows], self.steps[rows] = p, m, v, t

    def _update(
        self, p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: torch.Tensor
    ) -> None:
        t += 1
        shape = (-1,) + (1,) * (p.dim() - 1)  # broadcast per-slot scalars over the slot's entries
        # bias corrections in float64, like torch's Python-float scalars, then cast to the parameter dtype
        t64 = t.to(torch.float64)
        step_size = (self.lr / (1 - self.beta1**t64)).to(p.dtype).view(shape)  # (S, 1, ...)
        bc2_sqrt = torch.sqrt(1 - self.beta2**t64).to(p.dtype).view(shape)  # (S, 1, ...)
        m.lerp_(g, 1 - self.beta1)
        v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
        p.sub_(step_size * m / denom)

    @torch.no_grad()
    def reset(self, slots: torch.Tensor) -> None:
        """Zero the moments and the step count of `slots` (int64 index)."""
        self.exp_avg[slots] = 0
        self.exp_avg_sq[slots] = 0
        self.steps[slots] = 0

    def keep(self, rows: torch.Tensor) -> None:
        """Drop all slots but `rows` (int64 index), in that order: the batch shrank."""
        self.exp_avg, self.exp_avg_sq, self.steps = self.exp_avg[rows], self.exp_avg_sq[rows], self.steps[rows]


@contextmanager
def frozen_eval(model: nn.Module) -> Iterator[nn.Module]:
    """Model in eval mode with no parameter requiring grad (so no weight gradient is ever built);
    the caller's train/eval mode and requires_grad flags are restored on exit."""
    was_training = model.training
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.eval()
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p in trainable:
            p.requires_grad_(True)
        model.train(was_training)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of the eval-mode `model` with every BatchNorm folded into the convolution before it.

    In eval mode a BatchNorm is a fixed per-channel affine map, so the copy computes the same
    function up to float rounding with two ops fewer per conv, forward and backward: 25 % less CPU
    time per ResNet-20 map step (batch 64, channels-last). Models torch.fx cannot trace, or
    without conv-BN pairs, are returned as they are. The copy's parameters do not require grad.
    A model with a `with_folded_batchnorm()` method returns that instead: tracing records only tensor
    operations, so a wrapper that runs its model under a context (precompute's bfloat16 autocast)
    would silently lose the context if traced.
    """
    from torch.fx.experimental.optimization import fuse

    rebuild = getattr(model, "with_folded_batchnorm", None)
    if callable(rebuild):  # a wrapper whose forward tracing would lose (autocast): it folds its inner model itself
        return rebuild()
    if model.training or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    try:
        fused = fuse(model, inplace=False)
    except Exception:  # any tracing failure just means: no folding
        return model
    for p in fused.parameters():
        p.requires_grad_(False)
    return fused.eval()


def check_images(images: torch.Tensor, labels: torch.Tensor, *, name: str = "images", label_name: str = "targets") -> None:
    """ValueError unless images is float (N, C, H, W) in [0, 1] and labels int64 (N,) >= 0 on the same device."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected {name} as a float tensor (N, C, H, W), got {shape}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype != torch.int64:
        shape = (tuple(labels.shape), labels.dtype) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"expected {label_name} as an int64 tensor (N,), got {shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"expected one {label_name[:-1]} per image ({images.shape[0]}), got {labels.shape[0]}")
    if labels.device != images.device:
        raise ValueError(f"expected {label_name} on the {name}' device {images.device}, got {labels.device}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"expected {name} in [0, 1], got values in [{images.min():.3g}, {images.max():.3g}]")
    if labels.numel() and labels.min() < 0:
        raise ValueError(f"expected non-negative {label_name}, got {labels.min().item()}")


def map_step(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    targets: torch.Tensor,
    maps: torch.Tensor,
    adam: SlotAdam,
    lam: float,
    apply_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = apply_fourier_maps,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step of every slot: filter, forward, loss, input gradient, Adam step, clamp.

    images: (S, C, H, W) float; targets: (S,) int64; maps: (S, C, H, W) in natural FFT order, updated in
    place together with `adam`'s moments and step counts. forward: filtered images (S, C, H, W) -> logits
    (S, K). Returns the logits of this step's forward pass and the per-slot losses CE + λ·Σ|M| (S,), both
    detached. Tensor work only (no host sync, no per-slot Python), so that it can later be compiled for a
    fixed batch shape; which slot stops, and which network each slot goes through, is decided outside.
    apply_maps(images, maps) -> filtered: the basis's filter (`Basis.apply`; default the Fourier amplitude mask).
    """
    leaf = maps.detach().requires_grad_(True)
    filtered = apply_maps(images, leaf)  # (S, C, H, W)
    logits = forward(filtered)  # (S, K)
    cross_entropy = F.cross_entropy(logits, targets, reduction="none")  # (S,)
    per_image = cross_entropy + lam * leaf.abs().sum(dim=(1, 2, 3))  # (S,)
    # the sum keeps each map's gradient equal to its one-image gradient
    (grad,) = torch.autograd.grad(per_image.sum(), leaf)
    with torch.no_grad():
        adam.step(maps, grad)
        maps.clamp_(0, 1)
    return logits.detach(), per_image.detach()


@dataclass
class _Networks:
    """The frozen network(s) the map steps run through."""

    model: nn.Module  # the network of every step from step early_steps + 1 on
    early_model: nn.Module | None  # the network of each image's first early_steps steps (None: model throughout)
    early_steps: int  # 0 when early_model is None
    channels_last: bool  # feed the filtered images in channels-last layout

    def run(self, network: nn.Module, filtered: torch.Tensor) -> torch.Tensor:
        """(S, C, H, W) -> logits (S, K)."""
        if self.channels_last:
            filtered = filtered.contiguous(memory_format=torch.channels_last)
        return network(filtered)

    def assignment(self, steps: list[int]) -> list[tuple[nn.Module, list[int] | None]]:
        """Which network runs which slots of a batch whose slots have taken `steps` steps so far:
        [(network, None)] when one network runs them all, else [(early_model, slots), (model, slots)]."""
        early = [slot for slot, t in enumerate(steps) if t < self.early_steps]
        if not early:
            return [(self.model, None)]
        if len(early) == len(steps):
            return [(self.early_model, None)]
        return [(self.early_model, early), (self.model, [slot for slot, t in enumerate(steps) if t >= self.early_steps])]

    def forward_for(self, steps: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
        """The forward pass of a batch whose slots have taken `steps` steps so far.

        Slots before step early_steps go through early_model, the others through model; a batch with slots
        on both sides becomes two passes whose rows are put back in slot order.
        """
        early = [slot for slot, t in enumerate(steps) if t < self.early_steps]
        if not early:
            return lambda filtered: self.run(self.model, filtered)
        if len(early) == len(steps):
            return lambda filtered: self.run(self.early_model, filtered)
        late = [slot for slot, t in enumerate(steps) if t >= self.early_steps]

        def split(filtered: torch.Tensor) -> torch.Tensor:
            device = filtered.device
            parts = [self.run(self.early_model, filtered[torch.tensor(early, device=device)]),
                     self.run(self.model, filtered[torch.tensor(late, device=device)])]
            order = torch.tensor(early + late, device=device).argsort()
            return torch.cat(parts)[order]  # (S, K)

        return split


_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (its weights' identity, folded copy)


def folded_once(model: nn.Module) -> nn.Module:
    """`fold_batchnorm(model)`, the same copy again while the model's weights are the same tensors, unchanged.

    For the compiled step: it guards on the network's type, and every torch.fx fold makes a new type, so a fresh
    fold per `train_maps` call (one per resumable unit) would recompile every time.
    """
    weights = tuple((t.data_ptr(), t._version) for t in itertools.chain(model.parameters(), model.buffers()))
    hit = _FOLDED.get(model)
    if hit is not None and hit[0] == weights:
        return hit[1]
    folded = fold_batchnorm(model)
    _FOLDED[model] = (weights, folded)
    return folded


@contextmanager
def _frozen_networks(
    model: nn.Module, early_model: nn.Module | None, early_steps: int, *, fuse_batchnorm: bool, channels_last: bool,
    reuse_folds: bool = False,
) -> Iterator[_Networks]:
    """`model` (and `early_model` when early_steps > 0) frozen in eval mode, BatchNorm folded if asked
    (`reuse_folds`: the copy folded by an earlier call, see `folded_once`)."""
    fold = folded_once if reuse_folds else fold_batchnorm
    with ExitStack() as frozen:
        network = frozen.enter_context(frozen_eval(model))
        network = fold(network) if fuse_batchnorm else network
        early_network = None
        if early_steps:
            early_network = frozen.enter_context(frozen_eval(early_model))
            early_network = fold(early_network) if fuse_batchnorm else early_network
        yield _Networks(network, early_network, early_steps, channels_last)


class _MapSlots:
    """The batch in training: which image each slot holds, its image, target, map, Adam state and stop history.

    Slots start with the first images; a finished slot takes the next waiting image (refill), and once
    the queue is empty finished slots are dropped (the batch shrinks). With `pad`, a finished slot with no image
    to take stays in the batch instead, inert (its image index -1): it keeps stepping its last map, which nothing
    reads, so a compiled step always sees the same batch shape.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, batch_size: int, lr: float, rule: StopRule,
                 *, pad: bool = False) -> None:
        self.all_images, self.all_targets = images, targets  # (N, C, H, W), (N,): the queue
        self.image = list(range(min(batch_size, images.shape[0])))  # the image index each slot holds
        self.next_image = len(self.image)  # first image not yet given a slot
        index = torch.tensor(self.image, device=images.device)
        self.images = images[index].float()  # (S, C, H, W)
        self.targets = targets[index]  # (S,)
        self.maps = torch.ones_like(self.images)  # (S, C, H, W), natural FFT order
        self.adam = SlotAdam(self.maps, lr=lr)
        self.history = SlotHistory(rule, len(self.image))
        self.pad = pad

    @property
    def training(self) -> bool:
        """Whether any slot still holds an image in training."""
        return any(image >= 0 for image in self.image)

    def record(self, losses: list[float]) -> list[int]:
        """Count one step of every slot in training with its loss; the slots whose image stops now."""
        return [slot for slot, loss in enumerate(losses) if self.image[slot] >= 0 and self.history.record(slot, loss)]

    def replace(self, done: list[int]) -> None:
        """Give the finished slots `done` the next waiting images; drop those left over once the queue is empty."""
        refill = done[: self.all_images.shape[0] - self.next_image]
        drop = done[len(refill) :]
        if refill:
            self._refill(refill)
        if drop and self.pad:
            for slot in drop:
                self.image[slot] = -1
        elif drop:
            self._drop(drop)

    def _refill(self, slots: list[int]) -> None:
        device = self.maps.device
        slot_idx = torch.tensor(slots, device=device)
        new_images = torch.arange(self.next_image, self.next_image + len(slots), device=device)
        self.next_image += len(slots)
        with torch.no_grad():
            self.images[slot_idx] = self.all_images[new_images].float()
            self.targets[slot_idx] = self.all_targets[new_images]
            self.maps[slot_idx] = 1
        self.adam.reset(slot_idx)
        for slot, image in zip(slots, new_images.tolist(), strict=True):
            self.image[slot] = image
            self.history.restart(slot)

    def _drop(self, slots: list[int]) -> None:
        dropped = set(slots)
        rows = [s for s in range(len(self.image)) if s not in dropped]
        rows_idx = torch.tensor(rows, dtype=torch.int64, device=self.maps.device)
        self.images, self.targets, self.maps = self.images[rows_idx], self.targets[rows_idx], self.maps[rows_idx]
        self.adam.keep(rows_idx)
        self.image = [self.image[s] for s in rows]
        self.history.keep(rows)


class _FinishedImages:
    """The result being filled in as images finish (maps on the images' device, the rest on the CPU)."""

    def __init__(self, images: torch.Tensor) -> None:
        total, device = images.shape[0], images.device
        self.result = MapResult(
            maps=torch.ones(images.shape, dtype=torch.float32, device=device),  # (N, C, H, W)
            steps=torch.zeros(total, dtype=torch.int64),
            final_loss=torch.zeros(total, dtype=torch.float64),
            kept=torch.zeros(total, dtype=torch.bool),
            final_pred=torch.zeros(total, dtype=torch.int64),
        )
        self.count = 0  # images finished so far

    def store(self, slots: _MapSlots, done: list[int], logits: torch.Tensor, losses: list[float]) -> None:
        """Save the maps of the finished slots `done`, with the step's logits (S, K) and losses."""
        result, device = self.result, slots.maps.device
        done_idx = torch.tensor(done, device=device)
        preds = logits[done_idx].argmax(dim=1).cpu()  # (D,)
        image_idx = torch.tensor([slots.image[s] for s in done])
        result.maps[image_idx.to(device)] = slots.maps[done_idx]
        result.steps[image_idx] = torch.tensor([slots.history.steps[s] for s in done])
        result.final_loss[image_idx] = torch.tensor([losses[s] for s in done], dtype=torch.float64)
        result.final_pred[image_idx] = preds
        result.kept[image_idx] = preds == slots.targets[done_idx].cpu()
        self.count += len(done)


def train_maps(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    config: MapTrainConfig | None = None,
    *,
    batch_size: int = 64,
    channels_last: bool | None = None,
    fuse_batchnorm: bool = True,
    progress: Callable[[int, int], None] | None = None,
    early_model: nn.Module | None = None,
    early_steps: int = 0,
    basis: str | Basis = "fourier",
    layer: str = INPUT,
    compile: bool = False,
) -> MapResult:
    """Train one Fourier map per image so that `model` keeps predicting `targets` (METHOD §2).

    images: (N, C, H, W) float in [0, 1]; targets: (N,) int64 (true labels for essential maps,
    adversarial labels for adversarial ones; selecting which images to pass is the caller's job).
    The model is used frozen in eval mode; only the maps require grad.

    Step loop, read from the published code (compute the loss, take the Adam step, then test):
    at step t = 1, 2, ... the forward pass on the current map gives loss_t = CE(f(x_F), target)
    + λ·Σ|M|; Adam steps and the map is clamped to [0, 1]; loss_t is appended to the image's
    list L; the image stops by `StopRule` (t > min_steps and |loss_t − mean(L[-window:])| < tol,
    or t > max_steps). So t counts the Adam steps taken: at least min_steps + 1, at most max_steps + 1.
    The stored map is the one after the last step; `kept` says whether the last forward pass
    (the one that gave loss_t, before that last step) predicted the target.

    batch_size: slots trained together; a finished image's slot is refilled from the queue.
    channels_last: feed the filtered images to the model in channels-last layout (None: on CPU
    only, where it measured 15 % faster for a ResNet-20 batch of 64; untested on CUDA, so off).
    fuse_batchnorm: train against `fold_batchnorm(model)`, the same function with fewer ops.
    progress(finished, total) is called whenever images finish.
    early_model, early_steps: the first `early_steps` steps of every image go through `early_model` instead
    of `model` (e.g. float32 before bfloat16: the sparse optimum an image settles into is picked early,
    where bf16 rounding moves it; see precompute run --bf16). A batch whose slots are on both sides of
    that step is split in two forward passes. Ignored when early_model is None or early_steps is 0.
    basis, layer: the map filters `layer`'s output (core.hidden_layers; `input`: the image) in `basis`
    (core.bases): same loop, loss and stop rule. At a hidden layer the maps have the layer's (C', H', W'), the
    model's part up to the layer runs once per image (all N feature tensors are kept: N·C'·H'·W' floats) and
    the steps run the rest of it; early_model is then refused. Default: the Fourier amplitude at the input.
    compile: run each step through core.compiled_step (torch.compile; the tail batch padded to batch_size so the
    shape never changes): the same maps up to float rounding, faster once the tens of seconds of compiling are
    paid (see core.compiled_step.resolve_compile for when). Default eager: this loop exactly as it always was.
    """
    config = config or MapTrainConfig()
    config.validate()
    check_images(images, targets)
    basis = get_basis(basis)
    _, tail = split_at(model, layer)
    if layer != INPUT and early_model is not None:
        raise ValueError(f"expected no early_model with maps at layer {layer!r} (only at {INPUT!r}), got one")
    basis.map_shape(feature_shape(model, layer, images.shape))  # ValueError on a size the basis cannot take
    if batch_size < 1:
        raise ValueError(f"expected batch_size >= 1, got {batch_size}")
    if early_steps < 0:
        raise ValueError(f"expected early_steps >= 0, got {early_steps}")
    if early_model is None:
        early_steps = 0
    if channels_last is None:
        channels_last = images.device.type == "cpu"
    total = images.shape[0]
    if layer != INPUT:
        images = layer_features(model, layer, images, batch_size=batch_size)  # (N, C', H', W'): what the maps filter
    finished = _FinishedImages(images)
    if total == 0:
        return finished.result

    slots = _MapSlots(images, targets, batch_size, config.lr, config.stop_rule, pad=compile)
    with _frozen_networks(
        tail, early_model, early_steps, fuse_batchnorm=fuse_batchnorm, channels_last=channels_last,
        reuse_folds=compile,
    ) as networks:
        while slots.training:
            if compile:
                logits, per_image = compiled_map_step(networks.assignment(slots.history.steps), slots.images,
                                                      slots.targets, slots.maps, slots.adam, config.lam, basis.apply,
                                                      channels_last)
            else:
                forward = networks.forward_for(slots.history.steps)
                logits, per_image = map_step(forward, slots.images, slots.targets, slots.maps, slots.adam,
                                             config.lam, basis.apply)
            losses = per_image.tolist()  # one host sync per step
            done = slots.record(losses)
            if not done:
                continue
            finished.store(slots, done, logits, losses)
            slots.replace(done)
            if progress is not None:
                progress(finished.count, total)
    return finished.result
