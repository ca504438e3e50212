"""`precompute run --bf16`: the classifier under bfloat16 autocast, its first convolution kept in float32.

The maps stage also trains the first `bf16_float32_steps` steps of every map with `float32_model()`
(core.map_training.train_maps's early_model); see the README for what each part buys.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import torch
from torch import nn


class Float32Island(nn.Module):
    """Runs one module outside autocast, in float32."""

    def __init__(self, module: nn.Module, device_type: str) -> None:
        super().__init__()
        self.module = module
        self.device_type = device_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, enabled=False):
            return self.module(x.float())


def sharing_copy(model: nn.Module) -> nn.Module:
    """A copy of the module tree that shares every parameter and buffer with `model` (no weights copied)."""
    memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    return copy.deepcopy(model, memo)


def _replace_first_conv(model: nn.Module, replace: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """A sharing copy of `model` whose first Conv2d (or Float32Island) in module order is `replace(it)`."""
    model = sharing_copy(model)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, Float32Island)):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, replace(module))
            break
    return model


class Bf16Classifier(nn.Module):
    """Runs the classifier under bfloat16 autocast and returns float32 logits.

    The first convolution stays in float32: it is the one layer that reads the filtered image itself, which
    bf16 would round to 8 significant bits, and it costs ~1 % of a ResNet-20's or a ViT-B/16's work. On
    96 real CIFAR-10 images at λ = 0.5, with every map step in bf16, that kept 69 instead of 61 maps within
    cosine 0.98 of their float32 twins (with run's 300 float32 steps first: 91; float32 under another
    operation order: 85; bench/bench_precision.py). The caller's model is not changed: the wrapper holds a
    copy of its module tree that shares its weights.
    """

    def __init__(self, model: nn.Module, device_type: str) -> None:
        super().__init__()
        self.device_type = device_type

        def keep_float32(module: nn.Module) -> nn.Module:
            return module if isinstance(module, Float32Island) else Float32Island(module, device_type)

        self.model = _replace_first_conv(model, keep_float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model(x).float()

    def float32_model(self) -> nn.Module:
        """The wrapped model as it computes without autocast (a sharing copy, no island): float32 throughout.

        The same object at every call (kept outside the module tree, so no state_dict changes), so that the
        maps stages' compiled steps (core.compiled_step) find the same early network each time.
        """
        if "_float32_model" not in self.__dict__:
            self.__dict__["_float32_model"] = _replace_first_conv(self.model, lambda island: island.module)
        return self.__dict__["_float32_model"]

    def with_folded_batchnorm(self) -> Bf16Classifier:
        """The same wrapper around the BatchNorm-folded model (see core.map_training.fold_batchnorm).

        Folding traces the model with torch.fx, which records tensor operations only: traced, the float32
        island's autocast context would vanish. So the island is taken out, the plain model folded, and the
        island put back around the folded first convolution.
        """
        from core.map_training import fold_batchnorm

        return Bf16Classifier(fold_batchnorm(self.float32_model()), self.device_type).eval()
