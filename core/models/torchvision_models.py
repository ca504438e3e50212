"""torchvision ResNet-18 and ViT-B/16 with a 10-way head (METHOD §6).

Weights come from a local file when given (a torchvision state dict for the 1000-class model,
e.g. `resnet18-f37072fd.pth` from torchvision's cache), else the backbone is random. Nothing is
downloaded here: `core.models.weights.fetch_torchvision_weights` does that explicitly.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision import models as tv_models

from core.models.checkpoints import load_state_into, read_checkpoint


def _load_backbone(net: nn.Module, weights_path: str | None) -> None:
    if weights_path is not None:
        load_state_into(net, read_checkpoint(weights_path)["state_dict"], weights_path)


def build_resnet18(num_classes: int, weights_path: str | None) -> nn.Module:
    """ResNet-18; ImageNet weights from `weights_path` if given; head replaced by Linear(512, classes)."""
    net = tv_models.resnet18(weights=None)
    _load_backbone(net, weights_path)
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net


def build_vit_b_16(num_classes: int, weights_path: str | None) -> nn.Module:
    """ViT-B/16 at 224 px; ImageNet weights from `weights_path` if given; new 10-way head."""
    net = tv_models.vit_b_16(weights=None)
    _load_backbone(net, weights_path)
    # torchvision's own naming (heads.head.weight), so fine-tuned torchvision-layout state dicts load as they are
    net.heads = nn.Sequential(OrderedDict(head=nn.Linear(net.hidden_dim, num_classes)))
    return net
