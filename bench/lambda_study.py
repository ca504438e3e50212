"""The λ study: how sparse, and how often kept, essential maps are for a few L1 weights per basis and layer.

The L1 weight λ that gives sparse but kept maps differs by basis (the coefficients' scale and count differ) and
by layer (ResNet-20's layer1 has 16 × 32 × 32 = 16,384 entries, the image 3,072). On the first --n test-1000
images the shipped ResNet-20 classifies correctly (canonical index order), every study below trains essential
maps (targets: the true labels) with the published schedule (lr 0.01, 500 < steps <= 5000, tol 1e-5) and
reports per λ:

- kept: the share of maps whose filtered image still gets the label (the trainer's `kept`);
- non-zero entries: mean and median over all maps of the entries > 0, of C·H·W (counted like the cache's
  `nonzero`: a Fourier map's Hermitian pairs count twice);
- coarsest only: the share of maps whose non-zero entries all lie in the basis's coarsest coefficients (an
  all-zero map counts too): the zero frequency of each channel for `fourier` and `phase` (at a hidden layer:
  each feature channel's mean, so the filtered features are constant per channel), (0, 0) of each channel for
  `dct`, the level-L approximation band for `wavelet`. Such a map keeps no shape, only mean colours.

docs/BASES.md states the rule that picks λ from this table, with the figures. Prints one markdown row per run
as it finishes, writes lambda_study.md and lambda_study.json to --out after every run (so a cut-short run
keeps what it measured), and prints the JSON as its last line.

    python -m bench.lambda_study                                  # every study below, 100 images, 1 thread
    python -m bench.lambda_study --n 32 --study dct=0.1,0.3 --study wavelet-haar=0.2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.bases import Basis, get_basis
from core.data.image_folder import load_image_folder
from core.hidden_layers import INPUT, feature_shape
from core.map_training import MapTrainConfig, train_maps
from core.models.registry import build_model

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FMAPS_SHARED", REPO.parent / "shared"))
SHIPPED_MODEL = REPO / "assets" / "resnet20-cifar10.pt"


@dataclass(frozen=True)
class Study:
    """One basis at one layer and the λ values tried for it."""

    label: str  # e.g. "fourier", "wavelet-haar", "fourier@layer1"
    basis: str
    options: tuple[tuple[str, object], ...]  # get_basis options, e.g. (("wavelet", "haar"), ("levels", 3))
    layer: str
    lams: tuple[float, ...]

    def make_basis(self) -> Basis:
        return get_basis(self.basis, **dict(self.options))


# λ grids: fourier around the published 0.5; the others around where a first look at the gradient scale put
# them (the CE gradient per map entry is of the same order in the orthonormal bases as in the Fourier one)
STUDIES = (
    Study("fourier", "fourier", (), INPUT, (0.05, 0.2, 0.5)),
    Study("phase", "phase", (), INPUT, (0.05, 0.2, 0.5)),
    Study("dct", "dct", (), INPUT, (0.05, 0.2, 0.5)),
    Study("wavelet-haar", "wavelet", (("wavelet", "haar"), ("levels", 3)), INPUT, (0.05, 0.2, 0.5)),
    Study("fourier@layer1", "fourier", (), "layer1", (0.02, 0.05, 0.2)),
)


def coarsest_mask(basis: Basis, height: int, width: int) -> np.ndarray:
    """(H, W) bool in display order: the basis's coarsest coefficients (its layout's origin, or the wavelet
    approximation band)."""
    layout = basis.layout(height, width)
    mask = np.zeros((height, width), dtype=bool)
    approximation = [band for band in layout.subbands if band.orientation == "approximation"]
    if approximation:
        (band,) = approximation
        mask[band.rows[0] : band.rows[1], band.cols[0] : band.cols[1]] = True
    else:
        mask[layout.origin] = True
    return mask


def map_sparsity(maps_display: np.ndarray, coarsest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per map: non-zero entries (M,) int64, and whether they all lie in `coarsest` (H, W) (M,) bool.

    maps_display: (M, C, H, W) in the basis's display order.
    """
    nonzero_mask = maps_display > 0  # (M, C, H, W)
    nonzero = nonzero_mask.reshape(len(maps_display), -1).sum(1)
    outside = (nonzero_mask & ~coarsest).reshape(len(maps_display), -1).any(1)
    return nonzero.astype(np.int64), ~outside


def parse_study(spec: str) -> Study:
    """'LABEL=λ,λ,...' with LABEL one of STUDIES' labels -> that study with these λ."""
    label, _, values = spec.partition("=")
    known = {study.label: study for study in STUDIES}
    if label not in known or not values:
        raise ValueError(f"expected LABEL=λ,λ,... with LABEL in {sorted(known)}, got {spec!r}")
    try:
        lams = tuple(float(value) for value in values.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers after '=', got {values!r}") from None
    base = known[label]
    return Study(base.label, base.basis, base.options, base.layer, lams)


def correct_images(model: torch.nn.Module, n: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The first n test-1000 images (canonical order) the model gets right: (n, 3, 32, 32), (n,), their indices."""
    data = load_image_folder(str(SHARED / "data" / "cifar10" / "test-1000"), sort_by_canonical_index=True)
    images, labels = data.images.float() / 255, data.labels  # (1000, 3, 32, 32), (1000,)
    with torch.no_grad():
        pred = torch.cat([model(images[i : i + 250]).argmax(1) for i in range(0, len(images), 250)])
    chosen = (pred == labels).nonzero().flatten()[:n]
    return images[chosen], labels[chosen], chosen.tolist()


def run_one(model, images, labels, study: Study, lam: float, batch_size: int, schedule: MapTrainConfig) -> dict:
    """Train the essential maps of one (study, λ) with `schedule`'s steps and learning rate, and summarise them."""
    basis = study.make_basis()
    config = MapTrainConfig(lam=lam, lr=schedule.lr, min_steps=schedule.min_steps, max_steps=schedule.max_steps,
                            tol=schedule.tol)
    cpu, wall = time.process_time(), time.perf_counter()
    result = train_maps(model, images, labels, config, batch_size=batch_size, basis=basis, layer=study.layer)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    maps = basis.to_display_order(result.maps).numpy()  # (N, C, H, W)
    _, height, width = feature_shape(model, study.layer, images.shape)
    nonzero, coarsest_only = map_sparsity(maps, coarsest_mask(basis, height, width))
    return {
        "study": study.label, "basis": basis.key, "layer": study.layer, "lam": lam, "n": len(labels),
        "entries": int(np.prod(maps.shape[1:])),
        "kept": float(result.kept.double().mean()),
        "nonzero_mean": float(nonzero.mean()), "nonzero_median": float(np.median(nonzero)),
        "nonzero_kept_median": float(np.median(nonzero[result.kept.numpy()])) if result.kept.any() else None,
        "coarsest_only": float(coarsest_only.mean()),
        "steps_mean": float(result.steps.double().mean()), "steps_max": int(result.steps.max()),
        "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
    }


HEADER = ("| basis, layer | λ | kept | non-zero entries: mean / median (of C·H·W) | coarsest only | mean steps | CPU s |\n"
          "|---|---|---|---|---|---|---|")


def table_row(row: dict) -> str:
    where = row["basis"] if row["layer"] == INPUT else f"{row['basis']} at {row['layer']}"
    return (f"| {where} | {row['lam']:g} | {row['kept']:.0%} | {row['nonzero_mean']:.0f} / "
            f"{row['nonzero_median']:.0f} (of {row['entries']}) | {row['coarsest_only']:.0%} | "
            f"{row['steps_mean']:.0f} | {row['cpu_s']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="correctly classified test-1000 images (the first ones)")
    parser.add_argument("--study", action="append", type=parse_study, metavar="LABEL=λ,λ",
                        help=f"studies to run instead of the default ones ({', '.join(s.label for s in STUDIES)})")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--min-steps", type=int, default=MapTrainConfig.min_steps, help="(a quick check only)")
    parser.add_argument("--max-steps", type=int, default=MapTrainConfig.max_steps, help="(a quick check only)")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "lambda_study")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    studies = tuple(args.study or STUDIES)
    schedule = MapTrainConfig(min_steps=args.min_steps, max_steps=args.max_steps)  # published lr and tol
    model = build_model("resnet20", checkpoint=str(SHIPPED_MODEL))
    images, labels, indices = correct_images(model, args.n)
    print(f"{len(labels)} correctly classified images (test-1000 indices {indices[0]}..{indices[-1]}), "
          f"threads {torch.get_num_threads()}, batch {args.batch_size}", flush=True)
    print(HEADER, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    # one λ of every study before the next λ of any, so that a run cut short still covers every basis
    order = [(study, lam) for position in range(max(len(s.lams) for s in studies))
             for study in studies if position < len(study.lams) for lam in (study.lams[position],)]
    rows = []
    for study, lam in order:
        rows.append(run_one(model, images, labels, study, lam, args.batch_size, schedule))
        print(table_row(rows[-1]), flush=True)
        rows.sort(key=lambda row: ([s.label for s in studies].index(row["study"]), row["lam"]))
        report = {"n": len(labels), "indices": indices, "model": SHIPPED_MODEL.name,
                  "min_steps": schedule.min_steps, "max_steps": schedule.max_steps, "rows": rows}
        (args.out / "lambda_study.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / "lambda_study.md").write_text("\n".join([HEADER, *map(table_row, rows)]) + "\n")
    print(json.dumps({"n": len(labels), "rows": rows}), flush=True)


if __name__ == "__main__":
    main()
