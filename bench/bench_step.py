"""Benchmark: one per-image map step (filter, forward, input gradient, SlotAdam, clamp) in every arithmetic and mode.

Real data at the benchmark batch: the first --batch CIFAR-10 test-1000 images (canonical index order), the
third-party ResNet-20 with BatchNorm folded and channels-last input, as `precompute run` trains, λ = 0.5. The
variants, all in one process:

- `eager_float32`: today's step, core.map_training.map_step;
- `compiled_float32`: the same under torch.compile (core.compiled_step; `--compile on`);
- `eager_bf16`, `compiled_bf16`: the classifier under bfloat16 autocast, first convolution float32, as
  `precompute run --bf16` runs after each map's first float32 steps.

Each is timed in --rounds interleaved rounds of --steps steps (the median round counts, so that a load spike
on a shared machine hits every variant alike) after its warm-up (which compiles). The float32 ceiling: the
matrix-multiply peak (a large torch.mm, GFLOP/s) divided by the step's FLOPs per image (torch.utils.flop_counter
on one eager float32 step). The last line is one JSON object.

    python -m bench.bench_step                       # CPU, batch 64 (under 3 min on 2 cores, compile included)
    python -m bench.bench_step --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.rounds import interleaved_rounds, median_rates, pick_variants, synchronize
from core.compiled_step import compiled_map_step
from core.data.image_folder import load_image_folder
from core.devices import resolve_device
from core.fourier import apply_fourier_maps
from core.map_training import SlotAdam, fold_batchnorm, frozen_eval, map_step
from core.models.registry import build_model
from precompute.bf16 import Bf16Classifier

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))
VARIANTS = ("eager_float32", "compiled_float32", "eager_bf16", "compiled_bf16")
LAM = 0.5


def matmul_peak_gflops(device: torch.device, size: int, repeats: int = 5) -> float:
    """Best float32 torch.mm rate of `repeats` (size × size) products, in GFLOP/s (2·n³ FLOPs each)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def make_step(variant: str, network: nn.Module, images: torch.Tensor, targets: torch.Tensor,
              channels_last: bool) -> Callable[[], None]:
    """One map step of `variant` on its own maps and Adam state (maps start at ones, as in training)."""
    maps = torch.ones_like(images)  # (B, C, H, W)
    adam = SlotAdam(maps, lr=0.01)
    if variant.startswith("compiled"):
        def step() -> None:
            logits, _ = compiled_map_step([(network, None)], images, targets, maps, adam, LAM, apply_fourier_maps,
                                          channels_last)
            logits.sum().item()  # the trainer's one host sync per step
    else:
        def forward(filtered: torch.Tensor) -> torch.Tensor:
            return network(filtered.contiguous(memory_format=torch.channels_last) if channels_last else filtered)

        def step() -> None:
            logits, _ = map_step(forward, images, targets, maps, adam, LAM)
            logits.sum().item()
    return step


def step_flops(network: nn.Module, images: torch.Tensor, targets: torch.Tensor, channels_last: bool) -> int:
    """FLOPs of one eager float32 map step on the batch (forward and input gradient; the weights need none)."""
    step = make_step("eager_float32", network, images, targets, channels_last)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="images per step (the benchmark batch)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (the median counts)")
    parser.add_argument("--steps", type=int, default=4, help="steps per variant and round")
    parser.add_argument("--mm-size", type=int, default=0, help="side of the peak matmul (0: 2048 CPU, 8192 GPU)")
    args = parser.parse_args()
    variants = pick_variants(parser, args.variants, VARIANTS)
    device = resolve_device(args.device)
    channels_last = device.type == "cpu"  # as train_maps chooses

    data = load_image_folder(str(SHARED / "data" / "cifar10" / "test-1000"))
    order = sorted(range(len(data.ids)), key=lambda i: int(Path(data.ids[i]).stem))[: args.batch]
    images = (data.images[order].float() / 255).to(device)  # (B, 3, 32, 32)
    targets = data.labels[order].to(device)  # (B,)
    model = build_model("resnet20", checkpoint=str(SHARED / "models" / "resnet20-akamaster.th"), input_norm="imagenet")
    model = model.to(device).eval()

    with frozen_eval(model):
        float32_net = fold_batchnorm(model)
        bf16_net = fold_batchnorm(Bf16Classifier(model, device.type).eval())
        networks = {"float32": float32_net, "bf16": bf16_net}
        flops = step_flops(float32_net, images, targets, channels_last) / args.batch  # per image-step
        peak = matmul_peak_gflops(device, args.mm_size or (8192 if device.type == "cuda" else 2048))
        ceiling = peak * 1e9 / flops
        print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}: {flops / 1e9:.3f} GFLOP per "
              f"image-step, matmul peak {peak:.0f} GFLOP/s -> ceiling {ceiling:.0f} image-steps/s", flush=True)

        steps = {}
        for variant in variants:
            steps[variant] = make_step(variant, networks[variant.split("_")[1]], images, targets, channels_last)
            start = time.perf_counter()
            for _ in range(2):  # warm-up: compiles, autotunes, allocates
                steps[variant]()
            synchronize(device)
            print(f"  {variant}: warm-up {time.perf_counter() - start:.1f} s", flush=True)
        rounds = interleaved_rounds(steps, args.rounds, args.steps, args.batch, device)
    rates = median_rates(rounds)
    for variant, rate in rates.items():
        base = rates.get("eager_float32")
        versus = f", {rate / base:.2f}x eager_float32" if base else ""
        print(f"{variant:<17} {rate:8.0f} image-steps/s = {rate / ceiling:.0%} of the float32 ceiling{versus} "
              f"(rounds {min(rounds[variant]):.0f}-{max(rounds[variant]):.0f})", flush=True)
    print(json.dumps({"image_steps_per_s": {v: round(r, 1) for v, r in rates.items()},
                      "ceiling_image_steps_per_s": round(ceiling, 1), "gflop_per_image_step": round(flops / 1e9, 4),
                      "matmul_peak_gflops": round(peak, 1), "device": str(device), "batch": args.batch,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
