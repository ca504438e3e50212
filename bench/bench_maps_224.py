"""Benchmark: per-image map training at 224×224 (Imagenette) for ResNet-18 and ViT-B/16.

    python -m bench.bench_maps_224 [--data DIR] [--models resnet18 vit_b_16] [--steps 20] [--batch-size auto]

Real Imagenette images (an ImageFolder directory, e.g. the extracted
`../shared/data/imagenette/val-3925-224-jpeg-q75.tar`; random images if none is given), the
torchvision models with a 10-way head and random weights (no ImageNet weights can be had here;
speed does not depend on the weights). Every image trains for exactly --steps steps
(min_steps = max_steps), so the figure is image-steps/s, which does not depend on how soon the
particular images converge. The projection for the paper's whole experiment multiplies
13,394 images × 4 map sets (essential + FMN, PGD, DeepFool) × --mean-steps (an assumption: the
published stop rule allows 501 to 5001; pass what a real run measured) and divides by the
throughput, and by K for K GPUs (torchrun splits the images; nothing is exchanged until the merge).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from core.autobatch import auto_map_batch_size
from core.data.image_folder import load_image_folder
from core.devices import resolve_device
from core.map_training import MapTrainConfig, train_maps
from core.models.registry import build_model

FULL_EXPERIMENT_IMAGES = 13_394  # Imagenette train + val (9469 + 3925), METHOD §6
MAP_SETS = 4  # essential + one adversarial set per attack


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="ImageFolder directory of 224×224 images (default: random images)")
    parser.add_argument("--models", nargs="+", default=["resnet18", "vit_b_16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=0, help="images (0: two batches)")
    parser.add_argument("--steps", type=int, default=20, help="steps per image")
    parser.add_argument("--batch-size", default="auto", help="maps trained at once, or auto (fits the device)")
    parser.add_argument("--mean-steps", type=float, default=1000, help="assumed mean steps per map, for the projection")
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 autocast for the classifier, every step (the speed of run --bf16's bf16 steps; "
                             "run trains each map's first 300 steps in float32)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 4, 8], help="K values for the projection")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    report = {"device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
              "threads": torch.get_num_threads(), "steps": args.steps, "models": {}}
    for name in args.models:
        model = build_model(name, input_norm="imagenet").to(device).eval()
        if args.bf16:
            from precompute.bf16 import Bf16Classifier

            model = Bf16Classifier(model, device.type).eval()
        batch = auto_map_batch_size(model, (3, 224, 224), device) if args.batch_size == "auto" else int(args.batch_size)
        n = args.n or 2 * batch
        if args.data:
            data = load_image_folder(args.data, size=224, limit=n)
            reps = -(-n // len(data.labels))  # fewer images than slots: repeat them (speed is what is measured)
            images = data.images.repeat(reps, 1, 1, 1)[:n].float().div(255).to(device)  # (n, 3, 224, 224)
            labels = data.labels.repeat(reps)[:n].to(device)
        else:
            images, labels = torch.rand(n, 3, 224, 224, device=device), torch.randint(0, 10, (n,), device=device)
        config = MapTrainConfig(lam=0.01, min_steps=args.steps - 1, max_steps=args.steps - 1, tol=0.0)  # exactly --steps
        # warm-up: one short batch (cuDNN autotuning, allocator) outside the timing
        train_maps(model, images[:batch], labels[:batch], MapTrainConfig(lam=0.01, min_steps=1, max_steps=1),
                   batch_size=batch)
        sync(device)
        start = time.perf_counter()
        result = train_maps(model, images, labels, config, batch_size=batch)
        sync(device)
        wall = time.perf_counter() - start
        image_steps = int(result.steps.sum())
        rate = image_steps / wall
        hours = FULL_EXPERIMENT_IMAGES * MAP_SETS * args.mean_steps / rate / 3600
        row = {"batch_size": batch, "n": len(images), "image_steps_per_s": rate,
               "maps_per_s_at_mean_steps": rate / args.mean_steps,
               "projected_hours": {str(k): hours / k for k in args.gpus}}
        if device.type == "cuda":
            row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            torch.cuda.reset_peak_memory_stats(device)
        report["models"][name] = row
        projection = ", ".join(f"{k} GPU(s): {h:.1f} h" for k, h in row["projected_hours"].items())
        print(f"{name}: batch {batch}, {len(images)} images × {args.steps} steps in {wall:.1f} s = "
              f"{rate:.1f} image-steps/s; full experiment ({FULL_EXPERIMENT_IMAGES} images × {MAP_SETS} sets × "
              f"{args.mean_steps:.0f} steps): {projection}", flush=True)
        del model, images, labels
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
