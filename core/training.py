"""Classifier training (METHOD §6): SGD with the published step schedule or a one-cycle one.

Data lives on the device as uint8 (N, 3, H, W) and is augmented there per image (random crop
with zero padding, horizontal flip), so one epoch never touches the disk and needs no
DataLoader workers: on a 2-core CPU the workers would only compete with the model for cores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run. Defaults are the paper's ResNet-20 schedule."""

    epochs: int = 200  # passes over the training set
    batch_size: int = 64  # images per SGD step
    lr: float = 0.1  # initial lr (multistep) or peak lr (onecycle)
    momentum: float = 0.9
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


def train_classifier(
    model: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    config: TrainConfig,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict:
    """Train `model` in place; returns the record {config, epochs: [...], wall_s}.

    train_images: uint8 (N, C, H, W) already on the model's device; labels int64 (N,).
    Each epoch's entry holds train loss and accuracy (on augmented data) and test accuracy.
    """
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError(f"expected epochs >= 1 and batch_size >= 1, got {config.epochs}, {config.batch_size}")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = train_images.device
    params = [
        p
        for name, p in model.named_parameters()
        if not config.head_only or name.startswith(config.head_prefix)
    ]
    for p in model.parameters():
        p.requires_grad_(not config.head_only)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    # channels_last: ~15 % faster convolutions on CPU (measured on ResNet-20, batch 128)
    model.to(memory_format=torch.channels_last)
    n = len(train_images)
    steps_per_epoch = math.ceil(n / config.batch_size)
    record: dict = {"config": asdict(config), "epochs": []}
    start_time = time.perf_counter()
    step = 0
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            batch = _as_float(train_images[idx])  # (B, C, H, W) in [0, 1]
            batch = random_crop_flip(batch, config.crop_padding, config.flip, generator)
            batch = batch.contiguous(memory_format=torch.channels_last)
            labels = train_labels[idx]
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(config, step, steps_per_epoch)
            logits = model(batch)
            loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == labels).sum().item()
        entry = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / n,
            "train_acc": correct / n,
            "test_acc": evaluate_accuracy(model, test_images, test_labels),
            "lr_end": optimizer.param_groups[0]["lr"],
            "elapsed_s": time.perf_counter() - start_time,
        }
        record["epochs"].append(entry)
        if on_epoch is not None:
            on_epoch(entry)
    record["wall_s"] = time.perf_counter() - start_time
    return record
