"""Benchmark: one update of the Lab's mask editor per basis, at 32×32 on the CPU with the shipped ResNet-20.

One update is what a slider move or a click costs the server (ui/editor_compute.py update_editor): the mask
operation (a low-pass band, or a subband unticked for wavelets, plus one clicked coefficient), the filter in
the basis, the model's softmax on the filtered image, and the clickable heat map's Plotly figure. The target is
under 300 ms per update (what feels live); the browser's drawing comes on top and is not timed here.
The image is the first of Foolbox's bundled CIFAR-10 samples when available, else a seeded random one.

Run (from the repository root):
    python -m bench.bench_editor --repeats 20 --threads 2
The last line is JSON: {"target_ms": 300, "median_ms": {basis: ms}, "max_median_ms": ms, "ok": bool}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from core.models.registry import build_model
from ui.basis_figures import map_layout
from ui.editor_compute import update_editor
from ui.mask_editor import LOW_PASS, Edit, band_region, subband_labels, subband_region

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "assets", "resnet20-cifar10.pt")
BASES = ("fourier", "phase", "dct", "wavelet-haar-L3", "wavelet-db2-L3")
TARGET_MS = 300.0


def _image() -> np.ndarray:
    """(3, 32, 32) float32 in [0, 1]: the first of Foolbox's CIFAR-10 samples when installed, else random pixels."""
    try:
        from core.data.datasets import load_dataset

        return load_dataset("samples", limit=1).images[0].numpy().astype(np.float32) / 255
    except (ImportError, OSError, ValueError):
        return np.random.default_rng(0).uniform(0, 1, (3, 32, 32)).astype(np.float32)


def _edit(basis: str) -> Edit:
    layout = map_layout(basis, 32, 32)
    if layout.subbands:
        labels = subband_labels(layout)
        region = subband_region(layout, labels[:-1], (32, 32))  # the finest diagonal removed
    else:
        region = band_region(layout, LOW_PASS, 6.0)
    return Edit(region=region, clicks=[(3, 5)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed updates per basis (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model("resnet20", checkpoint=MODEL)
    image = _image()
    medians = {}
    for basis in BASES:
        start, edit = np.ones((3, 32, 32), np.float32), _edit(basis)
        update_editor(model, image, start, basis, edit)  # warm-up: Plotly's validators, the basis matrices
        times = []
        for _ in range(args.repeats):
            begin = time.perf_counter()
            view = update_editor(model, image, start, basis, edit)
            times.append(1000 * (time.perf_counter() - begin))
        medians[basis] = round(statistics.median(times), 1)
        top = int(np.argmax(view.probs))
        print(f"{basis:16s} median {medians[basis]:7.1f} ms  max {max(times):7.1f} ms  kept {100 * view.kept:5.1f} %  "
              f"top class {top} ({100 * view.probs[top]:.0f} %)")
    worst = max(medians.values())
    print(json.dumps({"target_ms": TARGET_MS, "median_ms": medians, "max_median_ms": worst, "ok": worst < TARGET_MS,
                      "threads": args.threads, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
