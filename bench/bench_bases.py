"""Benchmark: map-training speed per basis and layer, against Fourier amplitude maps at the input, in one run.

One map step (core.map_training.map_step: filter in the basis, forward through the rest of the network, input
gradient, SlotAdam, clamp) on real data: the first --batch CIFAR-10 test-1000 images (canonical index order),
the shipped ResNet-20 with BatchNorm folded, λ = 0.5, as `precompute run --basis B --layer L` trains. At a hidden
layer the part of the network before the layer runs once per image, outside the loop (as train_maps does), so a
step there costs the filter at that layer's size plus the rest of the network.

Every case is timed in --rounds interleaved rounds of --steps steps after two warm-up steps, and its median round
counts, so that a load spike on a shared machine hits every case alike. Reported: image-steps/s, and the ratio
to `fourier` at the input measured in the same rounds. The last line is one JSON object.

    python -m bench.bench_bases                          # CPU, batch 64, every case below (about a minute)
    python -m bench.bench_bases --device cuda --batch 256
    python -m bench.bench_bases --case dct --case fourier@layer2
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from bench.rounds import interleaved_rounds, median_rates
from core.bases import Basis, basis_from_key
from core.data.image_folder import load_image_folder
from core.devices import resolve_device
from core.hidden_layers import INPUT, layer_features, split_at
from core.map_training import SlotAdam, fold_batchnorm, frozen_eval, map_step
from core.models.registry import build_model

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))
SHIPPED_MODEL = REPO / "assets" / "resnet20-cifar10.pt"
BASELINE = "fourier"
CASES = ("fourier", "phase", "dct", "wavelet-haar-L3", "wavelet-db2-L3", "fourier@layer1", "dct@layer1",
         "wavelet-haar-L3@layer1", "fourier@layer2")
LAM = 0.5


def parse_case(case: str) -> tuple[Basis, str]:
    """'dct@layer1' -> (the dct basis, 'layer1'); a bare basis key is at the input. ValueError if unknown."""
    key, _, layer = case.partition("@")
    return basis_from_key(key), layer or INPUT


def make_step(model: torch.nn.Module, case: str, images: torch.Tensor, targets: torch.Tensor,
              channels_last: bool) -> Callable[[], None]:
    """One map step of `case` on its own maps (ones, as training starts) and Adam state; model frozen, eval."""
    basis, layer = parse_case(case)
    _, tail = split_at(model, layer)
    network = fold_batchnorm(tail)
    inputs = images if layer == INPUT else layer_features(model, layer, images, batch_size=len(images))  # (B, C', H', W')
    basis.map_shape(tuple(inputs.shape[1:]))  # ValueError on a size the basis cannot take
    maps = torch.ones_like(inputs)
    adam = SlotAdam(maps, lr=0.01)
    to_last = channels_last and layer == INPUT  # as train_maps: channels-last images into the network's stem

    def forward(filtered: torch.Tensor) -> torch.Tensor:
        return network(filtered.contiguous(memory_format=torch.channels_last) if to_last else filtered)

    def step() -> None:
        logits, _ = map_step(forward, inputs, targets, maps, adam, LAM, basis.apply)
        logits.sum().item()  # the trainer's one host sync per step

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="images per step (the benchmark batch)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--case", action="append", metavar="BASIS[@LAYER]",
                        help=f"cases to time beside {BASELINE} at the input (default: {', '.join(CASES[1:])})")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (the median counts)")
    parser.add_argument("--steps", type=int, default=4, help="steps per case and round")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = [BASELINE, *[c for c in (args.case or CASES[1:]) if c != BASELINE]]
    try:
        for case in cases:
            parse_case(case)
    except ValueError as error:
        parser.error(str(error))
    device = resolve_device(args.device)
    channels_last = device.type == "cpu"  # as train_maps chooses

    data = load_image_folder(str(SHARED / "data" / "cifar10" / "test-1000"), sort_by_canonical_index=True)
    images = (data.images[: args.batch].float() / 255).to(device)  # (B, 3, 32, 32)
    targets = data.labels[: args.batch].to(device)  # (B,)
    model = build_model("resnet20", checkpoint=str(SHIPPED_MODEL)).to(device).eval()

    with frozen_eval(model):
        steps = {}
        for case in cases:
            steps[case] = make_step(model, case, images, targets, channels_last)
            for _ in range(2):  # warm-up
                steps[case]()
        rounds = interleaved_rounds(steps, args.rounds, args.steps, args.batch, device)
    rates = median_rates(rounds)
    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, {args.rounds} rounds of "
          f"{args.steps} steps (median round)")
    for case, rate in rates.items():
        print(f"{case:<24} {rate:8.0f} image-steps/s  {rate / rates[BASELINE]:.2f}x {BASELINE} at the input "
              f"(rounds {min(rounds[case]):.0f}-{max(rounds[case]):.0f})", flush=True)
    print(json.dumps({"image_steps_per_s": {c: round(r, 1) for c, r in rates.items()},
                      "versus_fourier_input": {c: round(r / rates[BASELINE], 3) for c, r in rates.items()},
                      "device": str(device), "batch": args.batch, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
