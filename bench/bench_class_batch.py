"""Benchmark: the class-map minibatch size (METHOD §5 leaves it open; the published code trains on the full pool),
its cost, the defence it gives, and whether the averaged-loss stop rule fires on minibatch noise.

Real data: the first --train images of CIFAR-10 train-4000 (canonical index order, all classes) and
all of test-1000; the shipped ResNet-20 (or --checkpoint); PGD at --eps/255 on both splits. For each
minibatch size (an integer or `full`, the class's whole pool at every step), one map per class is trained
with the adversarial step (METHOD §5: λ = 0.001, lr 0.01, 500 < iterations <= 5000, tol 1e-3), all ten
classes as one batch of maps, from the same adversarial training images, then the defence (the model's first
prediction picks the map) is evaluated on the clean and the attacked test images: Table IV's PGD column, one
row per size. Prints seconds, seconds per iteration, iterations per class and defended accuracies per size,
and the time ratio of each size against the last one given (the baseline, run in the same process).

The stop rule (stop once e > 500 and |avg_e − mean(last 20 avg)| < 1e-3) reads the per-step losses. On a
minibatch they are estimates of the map's loss with noise; per size and class the script prints the
noise of the avg values where the class stopped (the standard deviation of avg_e minus its 20-step running
mean over the last 100 iterations) against tol, and the stopping iterations. --curves FILE saves every
class's avg_e per iteration (npz: one array per size and class) for plots.

--time-only N: time N iterations per size on the whole --train split and stop (the cost of a size at the
preset's scale without training to the end). It runs no attack: the correctly classified clean images stand in
for the adversarial pool, with labels moved to the next class, so each class's pools have the sizes a PGD 8/255
run gives (it fools 99.9 % of train-4000), and a step costs what it costs there.

    python -m bench.bench_class_batch                               # sizes 8 and 32, 1000 train images, CPU
    python -m bench.bench_class_batch --sizes 8 full --train 500 --curves curves.npz
    python -m bench.bench_class_batch --sizes 8 full --train 4000 --time-only 5
    python -m bench.bench_class_batch --sizes 8 16 32 --train 4000 --device cuda

The cifar10-paper preset's `class_batch_size` is chosen from this: docs/RESULTS.md has the figures.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from core.attacks import run_attack
from core.class_maps import FULL, ClassMapConfig, defence_accuracy, train_class_maps
from core.data.image_folder import load_image_folder
from core.devices import resolve_device
from core.models.registry import build_model, default_checkpoint_path

REPO = Path(__file__).resolve().parents[1]

SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))
NOISE_TAIL = 100  # iterations before the stop over which the noise of avg_e is measured


def load(root: Path, limit: int | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) float in [0, 1] and labels (N,), canonical index order (classes mixed)."""
    data = load_image_folder(str(root), limit=limit, sort_by_canonical_index=True)
    return (data.images.float() / 255).to(device), data.labels.to(device)


def size_word(word: str) -> int | str:
    """`full` or a positive integer."""
    return FULL if word == FULL else int(word)


size_word.__name__ = "minibatch size (full or an integer)"


def stop_noise(trace: list[float], window: int = 20, tail: int = NOISE_TAIL) -> float:
    """Standard deviation of avg_e − mean(last `window` avg) over the last `tail` iterations: what the rule
    compares with tol. Far above tol, the rule fires when noise happens to bring avg_e near its mean."""
    values = np.asarray(trace, dtype=np.float64)
    if len(values) < window + 1:
        return float("nan")
    running = np.convolve(values, np.ones(window) / window, mode="valid")  # mean of avg[e-window+1 .. e]
    gaps = values[window - 1 :] - running
    return float(gaps[-tail:].std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=size_word, nargs="+", default=[8, 32],
                        help="minibatch sizes, integers or full; the last is the baseline")
    parser.add_argument("--train", type=int, default=1000, help="first N images of train-4000")
    parser.add_argument("--eps", type=float, default=8.0, help="PGD budget in 1/255 units")
    parser.add_argument("--time-only", type=int, default=0, metavar="N",
                        help="only time N iterations per size (no defence, no stop rule)")
    parser.add_argument("--curves", help="save every class's avg_e per iteration to this .npz")
    parser.add_argument("--checkpoint", default=default_checkpoint_path())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model = build_model("resnet20", checkpoint=args.checkpoint).to(device)
    x_train, y_train = load(SHARED / "data" / "cifar10" / "train-4000", args.train, device)
    x_test, y_test = load(SHARED / "data" / "cifar10" / "test-1000", None, device)

    if args.time_only:
        with torch.no_grad():
            correct = model(x_train).argmax(dim=1) == y_train
        clean_x, clean_y = x_train[correct], y_train[correct]
        adv_x, adv_pred, adv_true = clean_x, (clean_y + 1) % 10, clean_y  # stand-ins of the pools' sizes
        test_attack = None
    else:
        start = time.perf_counter()
        train_attack = run_attack(model, x_train, y_train, "pgd", eps=args.eps / 255, seed=1, batch_size=64)
        test_attack = run_attack(model, x_test, y_test, "pgd", eps=args.eps / 255, seed=2, batch_size=64)
        print(f"PGD {args.eps:g}/255 on {len(y_train)} train and 1000 test images: {time.perf_counter() - start:.0f} s "
              f"({int(train_attack.success.sum())} train adversarials)", flush=True)
        correct, fooled = train_attack.clean_pred == y_train, train_attack.success
        clean_x, clean_y = x_train[correct], y_train[correct]
        adv_x, adv_pred, adv_true = train_attack.adversarial[fooled], train_attack.adv_pred[fooled], y_train[fooled]

    seconds, curves = {}, {}
    for size in args.sizes:
        config = ClassMapConfig(batch_size=size, seed=0)
        if args.time_only:
            config = ClassMapConfig(batch_size=size, seed=0, min_steps=0, max_steps=args.time_only - 1, tol=0.0)
        trace: list[list[float]] = []
        start = time.perf_counter()
        result = train_class_maps(model, clean_x, clean_y, adv_x, adv_pred, adv_true, 10, config, classes_at_once=10,
                                  loss_trace=trace)
        seconds[size] = time.perf_counter() - start
        iterations = result.iterations.tolist()
        per_iteration = seconds[size] / max(iterations)
        line = f"minibatch {size!s:>4}: {seconds[size]:6.0f} s, {per_iteration:.2f} s per iteration"
        if args.time_only:
            print(line, flush=True)
            continue
        curves.update({f"{size}_class{c}": np.asarray(t, dtype=np.float64) for c, t in enumerate(trace)})
        clean = defence_accuracy(model, x_test, y_test, result.maps)
        attacked = defence_accuracy(model, test_attack.adversarial, y_test, result.maps)
        noise = [stop_noise(t) for t in trace]
        print(f"{line}, iterations per class {iterations}; test accuracy clean {100 * clean.plain:.1f}% -> defended "
              f"{100 * clean.defended:.1f}%, PGD {100 * attacked.plain:.1f}% -> defended {100 * attacked.defended:.1f}% "
              f"(N = {clean.count})", flush=True)
        print(f"  stop-rule noise (std of avg_e - its 20-step mean, last {NOISE_TAIL} iterations; tol 1e-3): "
              + " ".join(f"{v:.1e}" for v in noise) + f"; final avg {[round(v, 3) for v in result.final_loss.tolist()]}",
              flush=True)
    baseline = args.sizes[-1]
    for size in args.sizes[:-1]:
        print(f"minibatch {size} vs {baseline}: {seconds[baseline] / seconds[size]:.1f}x faster")
    if args.curves and curves:
        np.savez(args.curves, **curves)
        print(f"loss curves: {args.curves}")


if __name__ == "__main__":
    main()
