"""Benchmark: batched per-image map training (core.map_training) vs the plain one-at-a-time loop.

Real data and the published setting: the first --n images of CIFAR-10 test-1000 (canonical index
order), the third-party ResNet-20 (ImageNet normalisation inside the model), λ = 0.5, lr 0.01,
500 <= steps <= 5000, tol 1e-5, targets = true labels. The batched trainer keeps --batch-size
slots full (refill); the baseline trains the first --n-single images one by one with
torch.optim.Adam, as the published code does. Reports maps/s of both and their ratio, plus
image-steps/s (which does not depend on how long the particular images take to converge) and
process CPU time, which is the fairer measure when other jobs share the cores.

    python -m bench.bench_maps                      # 256 vs 32 images, batch 64, auto device
    nice -n 19 python -m bench.bench_maps --n 64 --n-single 8 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.data.image_folder import load_image_folder
from core.devices import resolve_device
from core.map_training import MapTrainConfig, train_maps
from core.models.registry import build_model
from precompute.bf16 import Bf16Classifier

REPO = Path(__file__).resolve().parents[1]

SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))


def plain_loop(model, image, target, config):
    """One image, one map, torch.optim.Adam: the published loop (loss, step, clamp, stop test). -> steps"""
    fourier_map = torch.ones_like(image, requires_grad=True)  # (C, H, W)
    optimizer = torch.optim.Adam([fourier_map], lr=config.lr)
    losses, t = [], 0
    while True:
        t += 1
        optimizer.zero_grad()
        logits = model(torch.fft.ifft2(fourier_map * torch.fft.fft2(image)).real[None])
        loss = F.cross_entropy(logits, target[None]) + config.lam * fourier_map.abs().sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            fourier_map.clamp_(0, 1)
        losses.append(loss.item())
        if (t > config.min_steps and abs(losses[-1] - np.mean(losses[-config.window :])) < config.tol) or t > config.max_steps:
            return t


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="images for the batched trainer")
    parser.add_argument("--n-single", type=int, default=32, help="images for the one-at-a-time loop")
    parser.add_argument("--batch-size", type=int, default=64, help="slots of the batched trainer")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto", help="batched input layout")
    parser.add_argument("--compile", choices=["on", "off"], default="off", help="the batched trainer's compiled step")
    parser.add_argument("--bf16", action="store_true", help="the batched trainer as precompute run --bf16 trains")
    parser.add_argument("--lam", type=float, default=0.5)
    parser.add_argument("--min-steps", type=int, default=500)
    parser.add_argument("--max-steps", type=int, default=5000)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = MapTrainConfig(lam=args.lam, min_steps=args.min_steps, max_steps=args.max_steps)

    data = load_image_folder(str(SHARED / "data" / "cifar10" / "test-1000"))
    order = sorted(range(len(data.ids)), key=lambda i: int(Path(data.ids[i]).stem))[: max(args.n, args.n_single)]
    images = (data.images[order].float() / 255).to(device)  # (N, 3, 32, 32)
    labels = data.labels[order].to(device)
    model = build_model("resnet20", checkpoint=str(SHARED / "models" / "resnet20-akamaster.th"), input_norm="imagenet")
    model = model.to(device)
    channels_last = {"auto": None, "on": True, "off": False}[args.channels_last]
    print(f"device {device}, threads {torch.get_num_threads()}, {config}, batch {args.batch_size}", flush=True)

    def single_run():
        steps = []
        for i in range(args.n_single):
            steps.append(plain_loop(model, images[i], labels[i], config))
            print(f"  one at a time: image {i} took {steps[-1]} steps", flush=True)
        return steps

    single_steps, single_wall, single_cpu = timed(single_run, device)
    print(
        f"one at a time: {args.n_single} maps in {single_wall:.1f} s wall ({single_cpu:.1f} s CPU), "
        f"mean steps {np.mean(single_steps):.0f}",
        flush=True,
    )

    bf16_options, batched_model = {}, model
    if args.bf16:  # the classifier under bf16 autocast, each map's first 300 steps in float32 (precompute/bf16.py)
        batched_model = wrapped = Bf16Classifier(model, device.type).eval()
        bf16_options = {"early_model": wrapped.float32_model(), "early_steps": 300}

    def report_progress(done, total):
        if done % 16 == 0 or done == total:
            print(f"  batched: {done}/{total} maps", flush=True)

    result, batched_wall, batched_cpu = timed(
        lambda: train_maps(
            batched_model,
            images[: args.n],
            labels[: args.n],
            config,
            batch_size=args.batch_size,
            channels_last=channels_last,
            progress=report_progress,
            compile=args.compile == "on",
            **bf16_options,
        ),
        device,
    )
    batched_steps = int(result.steps.sum())
    print(
        f"batched: {args.n} maps in {batched_wall:.1f} s wall ({batched_cpu:.1f} s CPU), "
        f"steps min/quartiles/max {np.percentile(result.steps.numpy(), [0, 25, 50, 75, 100]).tolist()}, "
        f"kept {result.kept.double().mean():.0%}",
        flush=True,
    )
    report = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "compile": args.compile,
        "bf16": args.bf16,
        "n": args.n,
        "n_single": args.n_single,
        "batched_maps_per_s": args.n / batched_wall,
        "single_maps_per_s": args.n_single / single_wall,
        "ratio_maps_per_s": (args.n / batched_wall) / (args.n_single / single_wall),
        "ratio_image_steps_per_s": (batched_steps / batched_wall) / (sum(single_steps) / single_wall),
        "ratio_maps_per_cpu_s": (args.n / batched_cpu) / (args.n_single / single_cpu),
        "ratio_image_steps_per_cpu_s": (batched_steps / batched_cpu) / (sum(single_steps) / single_cpu),
        "batched_mean_steps": batched_steps / args.n,
        "single_mean_steps": float(np.mean(single_steps)),
    }
    print(json.dumps(report, indent=1), flush=True)


if __name__ == "__main__":
    main()
