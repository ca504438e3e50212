"""ResNet-20 for CIFAR-10 (He et al. 2016, CIFAR variant).

3 stages x 3 basic blocks with 16/32/64 channels, "option A" shortcuts (subsample + zero-pad
channels, no parameters), global average pooling and a 64->10 linear head: 0.27 M parameters.
The module names (`conv1`, `bn1`, `layer1.0.conv1`, ..., `linear`) follow the widely used
"pytorch_resnet_cifar10" release, so its checkpoints load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OptionAShortcut(nn.Module):
    """Parameter-free shortcut: take every second pixel and zero-pad the channels."""

    def __init__(self, pad_channels: int) -> None:
        super().__init__()
        self.pad_channels = pad_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C + 2p, H/2, W/2)
        p = self.pad_channels
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn plus shortcut, then relu."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = OptionAShortcut(planes // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 on (B, 3, 32, 32) inputs, returns (B, num_classes) logits."""

    def __init__(self, num_classes: int = 10, blocks_per_stage: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._stage(16, 16, blocks_per_stage, stride=1)
        self.layer2 = self._stage(16, 32, blocks_per_stage, stride=2)
        self.layer3 = self._stage(32, 64, blocks_per_stage, stride=2)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    @staticmethod
    def _stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_planes, planes, stride)]
        layers += [BasicBlock(planes, planes, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) -> (B, classes)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # (B, 64)
        return self.linear(out)
