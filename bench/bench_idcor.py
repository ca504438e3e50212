"""Benchmark: IdCor's permutation test, fast path vs the published approach, on real CIFAR-10 pixels.

The published code recomputes the full joint distance matrix, cdist([X | Y[perm]]), for every
permutation: N×N×(Dx+Dy) multiply-adds each time. The fast path (core/metrics/idcor.py) adds
D²(X) and a re-indexed D²(Y) instead: an N×N gather per permutation. Both draw the same
permutations from the same seeded generator, so their shuffled IDs must agree.

Data: the 1000 test-1000 images as 3072-D pixel vectors in [0, 1] (X) and noisy copies (Y).
Times are wall-clock and process CPU seconds; on a shared machine CPU seconds are the steadier
number. `--published-permutations K` times only the first K published permutations and
extrapolates the per-permutation time to all of them (the comparison of shuffled IDs then
covers those K); the published setup (preprocessing, three IDs) is timed once, not scaled.

Run (from the repository root):
    nice -n 19 python -m bench.bench_idcor --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from core.data.image_folder import load_image_folder
from core.metrics.idcor import idcor, idcor_preprocess, permutation_generator

CIFAR_TEST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "cifar10", "test-1000")


def published_twonn(points: torch.Tensor, fraction: float = 0.9) -> float:
    """TwoNN as the IdCor code computes it: cdist of the points in float64, top-3 including the point itself."""
    dist = torch.cdist(points.double(), points.double())  # (N, N)
    nearest = torch.topk(dist, 3, dim=1, largest=False).values  # (N, 3): self, r1, r2
    r1, r2 = nearest[:, 1], nearest[:, 2]
    r1, r2 = r1[r1 != 0], r2[r1 != 0]
    r1, r2 = r1[r1 != r2], r2[r1 != r2]
    n = r1.numel()
    keep = math.floor(fraction * n)
    mu = torch.sort(r2 / r1).values
    x = torch.log(mu[:-1])[:keep]
    y = -torch.log(1 - torch.arange(1, n, dtype=torch.float64) / n)[:keep]
    return float((x * y).sum() / (x * x).sum())


def published_setup(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Preprocessed X, Y and id_joint; the published code estimates ID(X) and ID(Y) here as well."""
    px, py = idcor_preprocess(x), idcor_preprocess(y)
    published_twonn(px), published_twonn(py)
    return px, py, published_twonn(torch.cat([px, py], dim=1))


def published_null(px: torch.Tensor, py: torch.Tensor, permutations: int, seed: int) -> np.ndarray:
    """Shuffled IDs, recomputing the joint distance matrix from scratch for every permutation."""
    generator = permutation_generator(seed)
    null = [published_twonn(torch.cat([px, py[torch.randperm(len(py), generator=generator)]], dim=1)) for _ in range(permutations)]
    return np.asarray(null)


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN201
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.normpath(CIFAR_TEST))
    parser.add_argument("--n", type=int, default=1000, help="paired rows")
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--published-permutations", type=int, default=None, help="time only the first K (default: all)")
    parser.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian noise added to make Y")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    images = load_image_folder(args.data, limit=args.n).images  # (N, 3, 32, 32) uint8
    x = images.flatten(1).double() / 255  # (N, 3072) pixel vectors in [0, 1]
    y = (x + args.noise * torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)).clamp(0, 1)
    n, k_pub = x.shape[0], args.published_permutations or args.permutations
    print(f"data: {n} pairs of {x.shape[1]}-D vectors ({args.data}), noise {args.noise}; {args.permutations} permutations; "
          f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}")

    fast, fast_wall, fast_cpu = timed(idcor, x, y, permutations=args.permutations, seed=args.seed)
    setup_fast_cpu = timed(idcor, x, y, permutations=0)[2]  # the same work without permutations
    print(f"fast path : IdCor {fast.idcor:.4f}, p {fast.p_value:.4f}, id_joint {fast.id_joint:.4f}; "
          f"{fast_wall:.2f} s wall, {fast_cpu:.2f} s CPU")

    (px, py, pub_joint), setup_wall, setup_cpu = timed(published_setup, x, y)
    pub_null, null_wall, null_cpu = timed(published_null, px, py, k_pub, args.seed)
    scale = args.permutations / k_pub  # only the per-permutation part is extrapolated when K < permutations
    pub_wall, pub_cpu = setup_wall + null_wall * scale, setup_cpu + null_cpu * scale
    label = "all measured" if k_pub == args.permutations else f"{k_pub} permutations timed, extrapolated to {args.permutations}"
    print(f"published : id_joint {pub_joint:.4f}; {pub_wall:.2f} s wall, {pub_cpu:.2f} s CPU ({label}); "
          f"setup {setup_cpu:.2f} s CPU, {null_cpu / k_pub:.3f} s CPU per permutation")
    fast_per_perm = (fast_cpu - setup_fast_cpu) / args.permutations
    print(f"per permutation: fast {fast_per_perm * 1000:.1f} ms CPU vs published {null_cpu / k_pub * 1000:.1f} ms CPU")

    rel = np.abs(fast.shuffled_ids[:k_pub] - pub_null) / np.abs(pub_null)
    print(f"same shuffled IDs: max relative difference {rel.max():.2e} over {k_pub} permutations "
          f"({'OK' if rel.max() < 1e-6 else 'MISMATCH'}); id_joint difference {abs(fast.id_joint - pub_joint):.2e}")
    print(f"speed-up: {pub_wall / fast_wall:.1f}x wall, {pub_cpu / fast_cpu:.1f}x CPU (target: >= 10x)")


if __name__ == "__main__":
    main()
