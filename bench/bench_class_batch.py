"""Benchmark: the class-map minibatch size (METHOD §5 leaves it open), its cost and the defence it gives.

Real data: the first --train images of CIFAR-10 train-4000 (canonical index order, all classes) and
all of test-1000; the shipped ResNet-20 (or --checkpoint); PGD at --eps/255 on both splits. For each
minibatch size, one map per class is trained with the adversarial step (METHOD §5: λ = 0.001, lr
0.01, 500 < iterations <= 5000, tol 1e-3), all ten classes as one batch of maps, then the defence
(the model's first prediction picks the map) is evaluated on the clean and the attacked test images.
Prints seconds, iterations per class and defended accuracies per size, and the time ratio of each
size against the last one given (the baseline, run in the same process).

    python -m bench.bench_class_batch                          # sizes 8 and 32, 1000 train images, CPU
    python -m bench.bench_class_batch --sizes 8 16 32 --train 4000 --device cuda

The cifar10-paper preset's `class_batch_size` is chosen from this: docs/RESULTS.md has the figures.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from core.attacks import run_attack
from core.class_maps import ClassMapConfig, defence_accuracy, train_class_maps
from core.data.image_folder import load_image_folder
from core.devices import resolve_device
from core.models.registry import build_model, default_checkpoint_path

REPO = Path(__file__).resolve().parents[1]

SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))


def load(root: Path, limit: int | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) float in [0, 1] and labels (N,), canonical index order (classes mixed)."""
    data = load_image_folder(str(root), limit=limit, sort_by_canonical_index=True)
    return (data.images.float() / 255).to(device), data.labels.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32], help="minibatch sizes; the last is the baseline")
    parser.add_argument("--train", type=int, default=1000, help="first N images of train-4000")
    parser.add_argument("--eps", type=float, default=8.0, help="PGD budget in 1/255 units")
    parser.add_argument("--checkpoint", default=default_checkpoint_path())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model = build_model("resnet20", checkpoint=args.checkpoint).to(device)
    x_train, y_train = load(SHARED / "data" / "cifar10" / "train-4000", args.train, device)
    x_test, y_test = load(SHARED / "data" / "cifar10" / "test-1000", None, device)

    start = time.perf_counter()
    train_attack = run_attack(model, x_train, y_train, "pgd", eps=args.eps / 255, seed=1, batch_size=64)
    test_attack = run_attack(model, x_test, y_test, "pgd", eps=args.eps / 255, seed=2, batch_size=64)
    print(f"PGD {args.eps:g}/255 on {len(y_train)} train and {len(y_test)} test images: {time.perf_counter() - start:.0f} s "
          f"({int(train_attack.success.sum())} train adversarials)")
    correct, fooled = train_attack.clean_pred == y_train, train_attack.success

    seconds = {}
    for size in args.sizes:
        start = time.perf_counter()
        result = train_class_maps(
            model, x_train[correct], y_train[correct], train_attack.adversarial[fooled], train_attack.adv_pred[fooled],
            y_train[fooled], 10, ClassMapConfig(batch_size=size, seed=0), classes_at_once=10,
        )
        seconds[size] = time.perf_counter() - start
        clean = defence_accuracy(model, x_test, y_test, result.maps)
        attacked = defence_accuracy(model, test_attack.adversarial, y_test, result.maps)
        print(f"minibatch {size:4d}: {seconds[size]:6.0f} s, iterations per class {result.iterations.tolist()}; "
              f"test accuracy clean {100 * clean.plain:.1f}% -> defended {100 * clean.defended:.1f}%, "
              f"PGD {100 * attacked.plain:.1f}% -> defended {100 * attacked.defended:.1f}% (N = {clean.count})")
    baseline = args.sizes[-1]
    for size in args.sizes[:-1]:
        print(f"minibatch {size} vs {baseline}: {seconds[baseline] / seconds[size]:.1f}x faster")


if __name__ == "__main__":
    main()
