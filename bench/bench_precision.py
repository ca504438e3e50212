"""Measurement: how far reduced-precision arithmetic moves per-image maps, against float32's own noise floor.

Trains essential maps (true labels) for the first --n correctly classified images of CIFAR-10 test-1000
with the third-party ResNet-20 at the published setting (λ = 0.5, 500 <= steps <= 5000), once in plain
float32 (BatchNorm folded, as `precompute run` trains), then again under each variant, and prints per
variant how many maps reach cosine ≥ 0.98 / 0.99 with their float32 twin, the median and the lowest
cosines, and how many get the same kept/failed decision. The variants:

- `reorder`: float32 with BatchNorm left unfolded: the same function, another operation order. What any
  change of arithmetic at all does to maps this sparse; the floor the others are measured against.
- `tf32`: TensorFloat-32 convolutions, which torch uses by default for float32 convolutions on Ampere and
  newer GPUs (`torch.backends.cudnn.allow_tf32`). On CUDA the real thing (the float32 reference then runs
  with TF32 off); on a CPU emulated: the inputs, weights and incoming gradients of every convolution
  truncated to TF32's 10 mantissa bits, float32 accumulation.
- `bf16`: exactly as `precompute run --bf16` trains: the classifier under bfloat16 autocast, its first
  convolution (the one that reads the filtered image) in float32, and the first --float32-steps steps of
  every map in float32 (where the map's sparse optimum is picked); it also prints the share of all map
  steps that ran in float32.
- `bf16-nowarm`: the same with every step in bf16 (`--bf16-float32-steps 0`).
- `bf16-all`: the whole classifier under bfloat16 autocast, first convolution included, every step (what
  `--bf16` did before it kept the first convolution and the first steps in float32).

    python -m bench.bench_precision --n 96                 # the README's figures (about 15 min on 2 CPU cores)
    python -m bench.bench_precision --n 12 --min-steps 150 --max-steps 300 --float32-steps 60 --variants bf16
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.rounds import pick_variants
from core.data.image_folder import load_image_folder
from core.devices import resolve_device
from core.map_training import MapTrainConfig, fold_batchnorm, train_maps
from core.models.registry import build_model
from precompute.bf16 import Bf16Classifier

REPO = Path(__file__).resolve().parents[1]

SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))
VARIANTS = ("reorder", "tf32", "bf16", "bf16-nowarm", "bf16-all")


def truncate_to_tf32(t: torch.Tensor) -> torch.Tensor:
    """float32 values with the 13 low mantissa bits cleared: TF32's 10-bit mantissa, exponent kept."""
    return (t.contiguous().view(torch.int32) & ~0x1FFF).view(torch.float32)


class _Tf32Conv2d(torch.autograd.Function):
    """conv2d as TF32 tensor cores compute it: truncated operands, float32 sums; the input gradient likewise."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv: nn.Conv2d) -> torch.Tensor:
        weight = truncate_to_tf32(weight)
        ctx.save_for_backward(weight)
        ctx.conv, ctx.shape = conv, x.shape
        return F.conv2d(truncate_to_tf32(x), weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        c = ctx.conv
        grad_x = torch.nn.grad.conv2d_input(ctx.shape, weight, truncate_to_tf32(grad), c.stride, c.padding, c.dilation, c.groups)
        return grad_x, None, None, None  # the maps need only the input gradient; weights are frozen


class Tf32Emulated(nn.Module):
    """Wraps one frozen Conv2d so that it computes as under TF32."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Tf32Conv2d.apply(x, self.conv.weight, self.conv.bias, self.conv)


class WholeModelBf16(nn.Module):
    """The whole model under bfloat16 autocast, first convolution included (`bf16-all`)."""

    def __init__(self, model: nn.Module, device_type: str) -> None:
        super().__init__()
        self.model, self.device_type = model, device_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model(x).float()


def replace_convs(model: nn.Module, wrap: Callable[[nn.Conv2d], nn.Module]) -> nn.Module:
    """A copy of `model` with every Conv2d wrapped by `wrap`."""
    model = copy.deepcopy(model)
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    for name in convs:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, wrap(getattr(parent, attr)))
    return model.eval()


@contextlib.contextmanager
def cudnn_tf32(enabled: bool) -> Iterator[None]:
    """TF32 for cuDNN convolutions on or off inside the block (no effect on a CPU)."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


def check_emulation() -> None:
    """The emulated conv is conv2d on truncated operands, and its input gradient matches autograd's."""
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1).requires_grad_(False)
    x = torch.rand(2, 3, 8, 8, generator=g, requires_grad=True)
    out = Tf32Emulated(conv)(x)
    xt = truncate_to_tf32(x.detach()).requires_grad_(True)
    ref = F.conv2d(xt, truncate_to_tf32(conv.weight), conv.bias, padding=1)
    assert torch.equal(out, ref)
    upstream = truncate_to_tf32(torch.rand(out.shape, generator=g))
    (out * upstream).sum().backward()
    (ref * upstream).sum().backward()
    assert torch.allclose(x.grad, xt.grad, atol=1e-6), (x.grad - xt.grad).abs().max()
    assert (truncate_to_tf32(torch.tensor([1 + 2**-10 + 2**-11])) == 1 + 2**-10).all()


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row cosine similarity of (N, ...) tensors, in float64."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="correctly classified images (from the first 400)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--lam", type=float, default=0.5)
    parser.add_argument("--min-steps", type=int, default=500)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--float32-steps", type=int, default=300, help="the bf16 variant's float32 steps (run's default)")
    args = parser.parse_args()
    variants = pick_variants(parser, args.variants, VARIANTS)

    check_emulation()
    device = resolve_device(args.device)
    model = build_model("resnet20", checkpoint=str(SHARED / "models" / "resnet20-akamaster.th"), input_norm="imagenet")
    model = model.to(device).eval()
    data = load_image_folder(str(SHARED / "data" / "cifar10" / "test-1000"))
    order = sorted(range(len(data.ids)), key=lambda i: int(Path(data.ids[i]).stem))
    images, labels = data.images[order].float() / 255, data.labels[order]  # (1000, 3, 32, 32), (1000,)
    with torch.no_grad():
        correct = (model(images[:400].to(device)).argmax(1).cpu() == labels[:400]).nonzero().flatten()[: args.n]
    x, y = images[correct].to(device), labels[correct].to(device)
    config = MapTrainConfig(lam=args.lam, min_steps=args.min_steps, max_steps=args.max_steps)
    folded = fold_batchnorm(model)

    def run(net: nn.Module, **kw) -> tuple:
        start = time.perf_counter()
        result = train_maps(net, x, y, config, batch_size=args.batch_size, **kw)
        return result, time.perf_counter() - start

    with cudnn_tf32(False):
        reference, seconds = run(model)
    n = len(y)
    print(f"{n} images, {device}, λ {args.lam}, steps {args.min_steps}-{args.max_steps}; float32 reference {seconds:.0f} s")
    print(f"{'variant':<10} {'≥0.98':>7} {'≥0.99':>7} {'median':>8} {'same kept':>10}  lowest cosines")
    for variant in variants:
        note = ""
        if variant == "reorder":
            with cudnn_tf32(False):
                result, seconds = run(model, fuse_batchnorm=False)
        elif variant == "tf32" and device.type == "cuda":
            with cudnn_tf32(True):
                result, seconds = run(model)
        elif variant == "tf32":
            result, seconds = run(replace_convs(folded, Tf32Emulated), fuse_batchnorm=False, channels_last=False)
        elif variant in ("bf16", "bf16-nowarm"):
            wrapped = Bf16Classifier(model, device.type).eval()
            early = args.float32_steps if variant == "bf16" else 0
            with cudnn_tf32(False):
                result, seconds = run(wrapped, early_model=wrapped.float32_model(), early_steps=early)
            share = float(result.steps.clamp(max=early).sum() / result.steps.sum())
            note = f"; {100 * share:.0f} % of the steps in float32" if early else ""
        else:  # bf16-all
            with cudnn_tf32(False):
                result, seconds = run(WholeModelBf16(folded, device.type).eval(), fuse_batchnorm=False)
        c = cosine(reference.maps, result.maps)
        lowest = ", ".join(f"{v:.3f}" for v in sorted(c.tolist())[:6])
        same = int((reference.kept == result.kept).sum())
        print(
            f"{variant:<10} {int((c >= 0.98).sum()):>4}/{n:<2} {int((c >= 0.99).sum()):>4}/{n:<2} {c.median():>8.4f} "
            f"{same:>7}/{n:<2}  {lowest}  ({seconds:.0f} s{note})",
            flush=True,
        )


if __name__ == "__main__":
    main()
