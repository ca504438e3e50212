"""Benchmark: the cifar10-paper pipeline on real images vs the published one-image-at-a-time procedure.

    python -m bench.bench_pipeline [--n 64] [--n-single 4] [--device cpu|cuda] [--checkpoint PATH] [--data DIR]

Runs `precompute run --preset cifar10-paper --limit N` (without class maps unless --class-maps)
into a temporary cache and prints each stage's time and images/s. In the same process it then
runs the published procedure on the first `--n-single` images: Foolbox attacks one image at a
time, maps trained one image at a time with torch.optim.Adam, and IdCor recomputing the joint
distance matrix for every permutation; and prints the per-image rates and the speed-up ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import numpy as np
import torch
import torch.nn.functional as F

from core.attack_keys import parse_attack_key
from core.attacks import run_attack
from core.fourier import apply_fourier_maps
from core.metrics.idcor import idcor, idcor_preprocess
from core.metrics.twonn import twonn_id
from experiments.config import ExperimentConfig
from experiments.format import ESSENTIAL, TEST, attack_stage, correlation_stage, maps_stage
from experiments.presets import get_preset
from experiments.reader import Experiment
from precompute.runner import run_experiment


def published_map(model: torch.nn.Module, image: torch.Tensor, target: torch.Tensor, lam: float,
                  min_steps: int, max_steps: int) -> int:
    """One map, the published way: a (1, C, H, W) parameter, torch Adam, the METHOD §2 stop rule."""
    m = torch.ones_like(image, requires_grad=True)
    optimizer = torch.optim.Adam([m], lr=0.01)
    losses: list[float] = []
    t = 0
    while True:
        t += 1
        loss = F.cross_entropy(model(apply_fourier_maps(image, m)), target) + lam * m.abs().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            m.clamp_(0, 1)
        losses.append(loss.item())
        if (t > min_steps and abs(losses[-1] - np.mean(losses[-20:])) < 1e-5) or t > max_steps:
            return t


def published_idcor(x: np.ndarray, y: np.ndarray, permutations: int, seed: int = 0) -> float:
    """IdCor's permutation test recomputing every distance matrix from scratch (as published)."""
    x, y = idcor_preprocess(torch.from_numpy(x)), idcor_preprocess(torch.from_numpy(y))
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(permutations):
        perm = torch.randperm(len(y), generator=generator)
        twonn_id(torch.cat([x, y[perm]], dim=1))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--n-single", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped ResNet-20")
    parser.add_argument("--input-norm", default=None)
    parser.add_argument("--class-maps", action="store_true")
    parser.add_argument("--data", default=None, help="test images, an ImageFolder directory (default: the preset's, "
                        "../shared/data/cifar10/test-1000)")
    args = parser.parse_args()

    values = get_preset("cifar10-paper")
    if not args.class_maps:
        values["train_data"] = None
    values.update(limit=args.n, device=args.device, checkpoint=args.checkpoint)
    if args.input_norm:
        values["input_norm"] = args.input_norm
    if args.data:
        values["data"] = args.data
    config = ExperimentConfig(**values)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        store = run_experiment(config, out, quiet=True)
        total = time.perf_counter() - start
        experiment = Experiment(store.path)
        print(f"pipeline, batched: {args.n} images on {args.device}, {total:.1f}s in all")
        print(f"{'stage':32s} {'seconds':>9s} {'images/s':>9s}")
        for stage, info in experiment.manifest["stages"].items():
            n = info.get("n_attempted", info.get("n", args.n)) or args.n
            print(f"{stage:32s} {info.get('seconds', 0):9.1f} {n / max(info.get('seconds', 1e-9), 1e-9):9.2f}")
        model = torch.nn.Module()
        from precompute.runner import load_classifier

        model = load_classifier(experiment.config, torch.device(args.device))
        k = args.n_single
        images = torch.from_numpy(experiment.images()[:k].astype(np.float32) / 255).to(args.device)
        labels = torch.from_numpy(experiment.labels()[:k].copy()).to(args.device)  # memory-mapped: read-only

        print(f"\npublished procedure, one image at a time, on the first {k} images:")
        for key in experiment.attack_keys:
            parsed = parse_attack_key(key)
            start = time.perf_counter()
            for i in range(k):
                run_attack(model, images[i : i + 1], labels[i : i + 1], parsed.name, eps=parsed.eps, seed=i,
                           fuse_batchnorm=False)  # the published procedure: the plain model
            single = k / (time.perf_counter() - start)
            batched_info = experiment.stage(attack_stage(TEST, key))
            batched = batched_info["n"] / batched_info["seconds"]
            print(f"attack {key:12s} single {single:7.2f} img/s   batched {batched:7.2f} img/s   ratio {batched / single:5.1f}x")

        stage = experiment.stage(maps_stage(ESSENTIAL))
        start = time.perf_counter()
        for i in range(k):
            published_map(model, images[i : i + 1], labels[i : i + 1], config.lam, config.min_steps, config.max_steps)
        single = k / (time.perf_counter() - start)
        batched = stage["n_attempted"] / stage["seconds"]
        print(f"essential maps      single {single:7.2f} maps/s  batched {batched:7.2f} maps/s  ratio {batched / single:5.1f}x")

        key = experiment.attack_keys[0]
        corr = experiment.correlation(key)
        if corr and "error" not in corr:
            from precompute.stages.correlations import paired_maps

            _, a, b = paired_maps(experiment.store, "essential", f"adversarial-{key}", "avg")
            a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
            seconds = published_idcor(a, b, config.permutations)
            x, y = torch.from_numpy(a), torch.from_numpy(b)
            idcor(x, y, config.permutations)  # warm: the stage's own first call pays one-time imports
            start = time.perf_counter()
            idcor(x, y, config.permutations)
            ours = time.perf_counter() - start
            stage = experiment.stage(correlation_stage(key))["seconds"]
            print(f"IdCor ({len(a)} pairs, {config.permutations} permutations): published {seconds:.3f}s, "
                  f"ours {ours:.3f}s, ratio {seconds / ours:.1f}x (the whole correlate-{key} stage, with SVCCA, "
                  f"cosines and re-pairings: {stage:.2f}s)")


if __name__ == "__main__":
    main()
