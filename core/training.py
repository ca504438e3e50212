"""Classifier training (METHOD §6): SGD with the published step schedule or a one-cycle one.

Optionally with stochastic weight averaging (SWA, Izmailov et al. 2018; torch.optim.swa_utils): the
model returned is the average of the weights at the end of the last epochs, with its BatchNorm
statistics recomputed over the training images. Not part of METHOD: an option for CPU schedules
too short to reach the published accuracy (`average_from`).

Data lives on the device as uint8 (N, 3, H, W) and is augmented there per image (random crop
with zero padding, horizontal flip), so one epoch never touches the disk and needs no
DataLoader workers: on a 2-core CPU the workers would only compete with the model for cores.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run. Defaults are the paper's ResNet-20 schedule."""

    epochs: int = 200  # passes over the training set
    batch_size: int = 64  # images per SGD step
    lr: float = 0.1  # initial lr (multistep) or peak lr (onecycle)
    momentum: float = 0.9
    optimizer: str = "sgd"  # "sgd" (the ResNet-20 schedule) or "adam" (METHOD §6: the Imagenette heads)
    nesterov: bool = False
    weight_decay: float = 1e-4  # L2 penalty, applied by SGD to every parameter
    schedule: str = "multistep"  # "multistep" (lr / 10 at milestones) or "onecycle"
    milestones: tuple[int, ...] = (100, 150)  # epochs at which multistep divides lr by gamma
    gamma: float = 0.1
    warmup_fraction: float = 0.15  # onecycle: share of steps spent rising to the peak lr
    label_smoothing: float = 0.0  # 0 is plain cross-entropy, as published
    crop_padding: int = 4  # random crop of the original size from a zero-padded image; 0 = off
    flip: bool = True  # random horizontal flip
    seed: int = 0
    head_only: bool = False  # train only parameters whose name starts with `head_prefix`
    head_prefix: str = "fc."
    cuda_graph: bool = False  # CUDA only: replay each step as a captured CUDA graph (drops the last partial batch)
    average_from: int = 0  # SWA: average the weights at the end of epochs average_from..epochs (1-based); 0 = off
    extra: dict = field(default_factory=dict)  # free-form notes saved with the record


def random_crop_flip(
    images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Per-image random crop (zero padding) and horizontal flip. (B, C, H, W) -> (B, C, H, W)."""
    batch, channels, height, width = images.shape
    device = images.device
    out = images
    if padding > 0:
        padded = F.pad(images, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
        dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(device)
        dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(device)
        rows = dy[:, None] + torch.arange(height, device=device)  # (B, H)
        cols = dx[:, None] + torch.arange(width, device=device)  # (B, W)
        b = torch.arange(batch, device=device)[:, None, None, None]
        c = torch.arange(channels, device=device)[None, :, None, None]
        out = padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]
    if flip:
        mask = (torch.rand(batch, generator=generator) < 0.5).to(device)
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500
) -> float:
    """Top-1 accuracy of `model` on uint8 or float images (N, C, H, W) in [0, 255] / [0, 1]."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        batch = _as_float(images[start : start + batch_size].to(device))
        correct += (model(batch).argmax(1).cpu() == labels[start : start + batch_size]).sum().item()
    return correct / max(len(images), 1)


def _as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float input is passed through."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


def _lr_at(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate for optimiser step `step` (0-based)."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "multistep":
        epoch = step // steps_per_epoch
        return config.lr * config.gamma ** sum(epoch >= m for m in config.milestones)
    if config.schedule == "onecycle":
        warm = max(1, int(config.warmup_fraction * total))
        if step < warm:  # linear rise from lr/25 to lr
            return config.lr * (0.04 + 0.96 * step / warm)
        frac = (step - warm) / max(1, total - warm)
        return config.lr * 0.5 * (1 + math.cos(math.pi * frac))  # cosine decay to 0
    raise ValueError(f"expected schedule 'multistep' or 'onecycle', got {config.schedule!r}")


def _check_config(config: TrainConfig) -> None:
    """ValueError on a schedule `train_classifier` cannot run."""
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError(f"expected epochs >= 1 and batch_size >= 1, got {config.epochs}, {config.batch_size}")
    if not 0 <= config.average_from <= config.epochs:
        raise ValueError(f"expected average_from between 0 (off) and epochs={config.epochs}, got {config.average_from}")
    if config.average_from and config.head_only:
        raise ValueError("expected average_from=0 with head_only (weight averaging is for whole-model training)")


def _trained_parameters(model: nn.Module, config: TrainConfig) -> list[nn.Parameter]:
    """The parameters the optimiser updates (all, or the head's with head_only); only they require grad."""
    params = [
        p
        for name, p in model.named_parameters()
        if not config.head_only or name.startswith(config.head_prefix)
    ]
    for p in model.parameters():
        p.requires_grad_(not config.head_only)
    for p in params:
        p.requires_grad_(True)
    return params


def _optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or Adam, both with the config's weight decay."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"expected optimizer 'sgd' or 'adam', got {config.optimizer!r}")


def _augmented(images: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float, randomly cropped and flipped, channels-last: a batch as training sees it."""
    batch = _as_float(images)  # (B, C, H, W) in [0, 1]
    batch = random_crop_flip(batch, config.crop_padding, config.flip, generator)
    return batch.contiguous(memory_format=torch.channels_last)


def _resume(
    resume: dict, model: nn.Module, averaged: AveragedModel | None, optimizer: torch.optim.Optimizer,
    generator: torch.Generator, config: TrainConfig,
) -> tuple[dict, int, float]:
    """Load a state saved by `on_state` -> (record so far, first epoch to run, seconds already spent)."""
    model.load_state_dict(resume["model"])
    if averaged is not None:
        averaged.load_state_dict(resume["averaged"])
    optimizer.load_state_dict(resume["optimizer"])
    generator.set_state(resume["generator"])
    record = resume["record"]
    first_epoch, earlier_s = len(record["epochs"]), float(record["epochs"][-1]["elapsed_s"]) if record["epochs"] else 0.0
    if record["config"] != asdict(config):
        raise ValueError("expected the saved state to come from the same training configuration (--restart ignores it)")
    return record, first_epoch, earlier_s


def _state(
    model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator, record: dict,
    averaged: AveragedModel | None,
) -> dict:
    """Everything `resume` needs to continue after this epoch."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "generator": generator.get_state(), "record": record}
    if averaged is not None:
        state["averaged"] = averaged.state_dict()
    return state


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step_fn: _GraphedStep | None,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
    first_step: int,
    steps_per_epoch: int,
) -> tuple[float, float, float]:
    """One pass over the shuffled training images -> (train loss, train accuracy, lr of the last step).

    Loss and accuracy are on the augmented batches, summed on the device (no host sync per step).
    step_fn: the captured CUDA graph step, or None for eager steps.
    """
    device = train_images.device
    model.train()
    order = torch.randperm(len(train_images), generator=generator).to(device)
    if step_fn is not None:  # augment the whole epoch at once: one launch sequence instead of one per step
        epoch_images = random_crop_flip(_as_float(train_images[order]), config.crop_padding, config.flip, generator)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for k in range(steps_per_epoch):
        rows = slice(k * config.batch_size, (k + 1) * config.batch_size)
        idx = order[rows]
        labels = train_labels[idx]
        lr = _lr_at(config, first_step + k, steps_per_epoch)
        if step_fn is not None:
            logits, loss = step_fn.run(epoch_images[rows], labels, lr)
        else:
            batch = _augmented(train_images[idx], config, generator)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits, loss = _eager_step(model, optimizer, batch, labels, config.label_smoothing)
        seen += len(idx)
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == labels).sum()
    return loss_sum.item() / seen, correct.item() / seen, lr


def train_classifier(
    model: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    config: TrainConfig,
    on_epoch: Callable[[dict], None] | None = None,
    *,
    resume: dict | None = None,
    on_state: Callable[[dict], None] | None = None,
) -> dict:
    """Train `model` in place; returns the record {config, epochs: [...], wall_s}.

    on_state(state) is called after every epoch with everything needed to continue (model and
    optimiser state, the data-order generator, the record so far); `resume=state` continues from
    it, and the result equals an uninterrupted run (same batches, same augmentations). The CLI
    saves it to a file so that a killed run loses at most one epoch.

    train_images: uint8 (N, C, H, W) already on the model's device; labels int64 (N,).
    Each epoch's entry holds train loss and accuracy (on augmented data) and test accuracy.
    """
    _check_config(config)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = train_images.device
    optimizer = _optimizer(_trained_parameters(model, config), config)
    # channels_last: ~15 % faster convolutions on CPU (measured on ResNet-20, batch 128)
    model.to(memory_format=torch.channels_last)
    n = len(train_images)
    graphed = config.cuda_graph and device.type == "cuda"
    if config.cuda_graph and not graphed:
        raise ValueError(f"expected a CUDA device for cuda_graph=True, got {device}")
    if graphed and n < config.batch_size:
        raise ValueError(f"expected at least batch_size={config.batch_size} images for cuda_graph, got {n}")
    # a captured graph has static shapes, so graph mode drops the last partial batch of each epoch
    steps_per_epoch = n // config.batch_size if graphed else math.ceil(n / config.batch_size)
    step_fn = _GraphedStep(model, optimizer, config, train_images.shape[1:], device) if graphed else None
    record: dict = {"config": asdict(config), "epochs": []}
    averaged = AveragedModel(model) if config.average_from else None  # a copy holding the running mean
    first_epoch, earlier_s = 0, 0.0
    if resume is not None:
        record, first_epoch, earlier_s = _resume(resume, model, averaged, optimizer, generator, config)
    start_time = time.perf_counter() - earlier_s
    for epoch in range(first_epoch, config.epochs):
        train_loss, train_acc, lr = _train_epoch(model, optimizer, step_fn, train_images, train_labels, config,
                                                 generator, epoch * steps_per_epoch, steps_per_epoch)
        if averaged is not None and epoch + 1 >= config.average_from:
            averaged.update_parameters(model)  # running mean of the epoch-end weights
        entry = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_acc": evaluate_accuracy(model, test_images, test_labels),
            "lr_end": lr,
            "elapsed_s": time.perf_counter() - start_time,
        }
        record["epochs"].append(entry)
        if on_epoch is not None:
            on_epoch(entry)
        if on_state is not None:
            on_state(_state(model, optimizer, generator, record, averaged))
    if averaged is not None:
        record["averaged"] = _finish_average(model, averaged, train_images, test_images, test_labels, config)
    record["wall_s"] = time.perf_counter() - start_time
    return record


def _finish_average(model: nn.Module, averaged: AveragedModel, train_images: torch.Tensor, test_images: torch.Tensor,
                    test_labels: torch.Tensor, config: TrainConfig) -> dict:
    """Put the averaged weights into `model` and recompute its BatchNorm statistics -> the record's entry.

    The averaged weights never ran forward, so their statistics come from one pass over the training
    images as training sees them: shuffled (an image folder is sorted by class, and single-class
    batches would give each layer within-class variances and the next layers inputs unlike any training
    batch) and augmented, in batches of batch_size (update_bn: train mode, no gradients, momentum None,
    so each statistic is the plain mean over the batches). Seeded from config.seed: reproducible.
    """
    model.load_state_dict(averaged.module.state_dict())
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(train_images), generator=generator).to(train_images.device)

    def batches() -> Iterator[torch.Tensor]:
        for start in range(0, len(order), config.batch_size):
            yield _augmented(train_images[order[start:start + config.batch_size]], config, generator)  # (B, C, H, W)

    update_bn(batches(), model)
    return {"from_epoch": config.average_from, "epochs_averaged": int(averaged.n_averaged.item()),
            "test_acc": evaluate_accuracy(model, test_images, test_labels)}


def _eager_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor, label_smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One plain training step on a (B, C, H, W) batch; returns (logits, loss)."""
    optimizer.zero_grad(set_to_none=True)
    logits = model(images)
    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    loss.backward()
    optimizer.step()
    return logits, loss


class _GraphedStep:
    """One SGD step (forward, loss, backward, update) captured once as a CUDA graph and replayed.

    At batch 64 a ResNet-20 step is ~200 tiny kernels, so on a GPU the launch overhead, not the
    arithmetic, sets the speed; replaying a captured graph removes it. The recipe is PyTorch's
    whole-network capture: a few eager warm-up steps on a side stream (these are real training
    steps on real batches, so momentum buffers and cuDNN's choices exist), then capture with the
    gradients set to None so backward allocates them in the graph's pool. SGD's lr is a Python
    float baked into the captured kernels, so the graph is captured again whenever the schedule
    changes the lr (three captures for the multistep schedule); a per-step schedule (onecycle)
    would recapture every step, so graph mode accepts only piecewise-constant schedules.
    """

    warmup_steps = 3

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig,
        image_shape: torch.Size, device: torch.device,
    ) -> None:
        if config.schedule != "multistep" or config.optimizer != "sgd":
            raise ValueError(
                f"expected SGD with schedule 'multistep' for cuda_graph (lr changes rarely), got {config.optimizer} "
                f"with {config.schedule!r}"
            )
        self.model, self.optimizer, self.label_smoothing = model, optimizer, config.label_smoothing
        shape = (config.batch_size, *image_shape)
        self.x = torch.zeros(shape, device=device).contiguous(memory_format=torch.channels_last)  # (B, C, H, W)
        self.y = torch.zeros(config.batch_size, dtype=torch.int64, device=device)  # (B,)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.lr: float | None = None
        self.warm = 0
        self.failed = False
        self.logits = self.loss = torch.zeros((), device=device)

    def _eager(self) -> tuple[torch.Tensor, torch.Tensor]:
        return _eager_step(self.model, self.optimizer, self.x, self.y, self.label_smoothing)

    def run(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on `images` (B, C, H, W) float and `labels` (B,) at `lr`; returns (logits, loss) of the step."""
        self.x.copy_(images)
        self.y.copy_(labels)
        if lr != self.lr:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.lr, self.graph = lr, None
        if self.graph is None and self.warm < self.warmup_steps:  # warm-up: real steps, eager, side stream
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                logits, loss = self._eager()
            torch.cuda.current_stream().wait_stream(side)
            self.warm += 1
            return logits, loss
        if self.failed:
            return self._eager()
        if self.graph is None:
            self.optimizer.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    self.logits = self.model(self.x)
                    self.loss = F.cross_entropy(self.logits, self.y, label_smoothing=self.label_smoothing)
                    self.loss.backward()
                    self.optimizer.step()
            except RuntimeError as err:  # capture unsupported here: same steps, eagerly (slower, same result)
                warnings.warn(f"CUDA graph capture failed ({err}); training eagerly", stacklevel=2)
                self.failed = True
                return self._eager()
            self.graph = graph  # capture records the step without running it: replay below runs it
        self.graph.replay()
        return self.logits, self.loss
