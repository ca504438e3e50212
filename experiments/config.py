"""One experiment's configuration: a dataclass whose hash names its cache directory.

Every field is an experiment option declared once, with `option(...)` (experiments/option_spec.py): its
help, parser, check, hash policy and an example value. Fields that change results are hashed; fields that
only change how fast they are computed (device, batch sizes) are not, and neither are `attacks` and `eps`:
adding an attack to an experiment adds stages to the same directory instead of recomputing the essential maps.

To add an option: add a field here with its `option(...)` and use it where it matters. The
`precompute run` flag, its per-field check, the hash and the app's rebuild command follow from the field
(experiments/options.py), and tests/test_options_roundtrip.py covers it through its example value.
A hashed field added after caches were shipped takes `hash=HASHED_IF_SET` with a default that keeps the
old arithmetic, so every existing experiment keeps its directory name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from experiments.option_spec import (
    HASHED,
    HASHED_IF_SET,
    RUN,
    STAGES,
    at_least,
    batch_size_or_auto,
    check_adaptive_attacks,
    check_attacks,
    check_batch_size,
    check_eps,
    check_input_norm,
    check_model,
    check_size_or_full,
    finite_at_least,
    on_off,
    one_of,
    option,
    size_or_full,
)

if TYPE_CHECKING:  # core.bases imports torch: only map_basis() needs it
    from core.bases import Basis

TRAIN_DATA = "../shared/data/cifar10/train-4000"  # an example value: the class-map data of the presets


def check_basis(value: str, flag: str) -> None:
    """A key of core.bases.BASES (imported here: the registry imports torch)."""
    from core.bases import BASES

    if value not in BASES:
        raise ValueError(f"expected {flag} {' | '.join(BASES)}, got {value!r}")


def check_wavelet(value: str, flag: str) -> None:
    """A key of core.bases.WAVELETS."""
    from core.bases import WAVELETS

    if value not in WAVELETS:
        raise ValueError(f"expected {flag} {' | '.join(WAVELETS)}, got {value!r}")


@dataclass
class ExperimentConfig:
    """Everything that defines one experiment. Units in the help texts."""

    name: str = option("custom", "readable prefix of the directory name: a preset's name, else custom",
                       example="mine")
    model: str = option("resnet20", "classifier, a key of core.models.registry.MODELS", check=check_model,
                        example="resnet18")
    checkpoint: str | None = option(None, "classifier weights file (default: the project's shipped ResNet-20)",
                                    example="../shared/models/resnet20.th")
    checkpoint_sha256: str = option("", "sha256 of the weights, filled in from the file: the hash follows the "
                                        "weights, not the path", cli=False)
    input_norm: str = option("none", "normalisation inside the model, after the map: none or imagenet "
                                     "(default: the checkpoint's, else the model's)",
                             check=check_input_norm, example="imagenet")
    data: str = option("samples", "images that get per-image maps: samples, cifar10, imagenette or an "
                                  "ImageFolder path", example="cifar10")
    split: str = option("test", "split of --data whose images get per-image maps", example="train")
    data_root: str | None = option(None, "torchvision root for cifar10 / imagenette (default: "
                                         "$FMAPS_DATA_ROOT or ./cache/datasets)", example="data-root")
    limit: int | None = option(None, "first N images of the split (default: all)", parse=int,
                               check=at_least(1), example=10)
    image_size: int = option(32, "square side in pixels the images are resized to, the model's input "
                                 "(default: the model's)", parse=int, check=at_least(1), example=64)
    attacks: tuple[str, ...] = option(("fmn", "pgd", "deepfool"), "attacks from core.attack_keys.ATTACKS, or none for "
                                                                  "essential maps only",
                                      many=True, words=(("none", ()),), check=check_attacks, hash=STAGES,
                                      example=("fmn", "pgd"))
    eps: tuple[float, ...] = option((8.0,), "PGD L-inf budgets in 1/255 units", parse=float, many=True,
                                    check=check_eps, hash=STAGES, example=(1.0, 3.5))
    attack_steps: int | None = option(None, "steps of every attack (default: Foolbox's, FMN 100, PGD 40, "
                                            "DeepFool 50)", parse=int,
                                      check=at_least(1, "leave it out for each attack's default"),
                                      hash=HASHED_IF_SET, example=10)
    lam: float = option(0.5, "L1 weight of per-image maps, METHOD §2", parse=float, check=finite_at_least(0),
                        example=0.02)
    lr: float = option(0.01, "Adam learning rate of maps", parse=float, check=finite_at_least(0, strict=True),
                       example=0.05)
    min_steps: int = option(500, "per-image maps: no stop before this many steps", parse=int, example=100)
    max_steps: int = option(5000, "per-image maps: hard stop", parse=int, example=1000)
    tol: float = option(1e-5, "per-image maps: |loss - mean(last 20)| below this stops", parse=float,
                        check=finite_at_least(0), example=1e-4)
    map_dtype: str = option("float32", "stored dtype of full-size maps: float32 or float16",
                            check=one_of("float32", "float16"), example="float16")
    pool: str = option("avg", "pooling of maps larger than 32x32 before correlating: avg or max",
                       check=one_of("avg", "max"), example="max")
    permutations: int = option(100, "IdCor permutation test size", parse=int, check=at_least(1), example=50)
    repairings: int = option(10, "random re-pairings for the cosine/SVCCA baseline", parse=int, check=at_least(0),
                             example=3)
    chunk_size: int = option(128, "images per resumable unit of work, also the attack seed unit", parse=int,
                             check=at_least(1), example=16)
    train_data: str | None = option(None, "ImageFolder path or data name for class-level maps, or none (skip "
                                          "them)", example=TRAIN_DATA)
    train_split: str = option("train", "split of --train-data", example="test")
    train_limit: int | None = option(None, "first N training images (default: all)", parse=int, check=at_least(1),
                                     example=500)
    class_lam: float = option(0.001, "L1 weight of class-level maps, METHOD §5", parse=float,
                              check=finite_at_least(0), example=0.01)
    class_min_steps: int = option(500, "class-level maps: no stop before this many steps", parse=int, example=200)
    class_max_steps: int = option(5000, "class-level maps: hard stop", parse=int, example=2000)
    class_tol: float = option(1e-3, "class-level maps: |loss - mean(last 20)| below this stops", parse=float,
                              check=finite_at_least(0), example=1e-2)
    class_batch_size: int | str = option(128, "minibatch of images per class-map step, or full (the class's whole "
                                              "pool at every step, as the published code)", parse=size_or_full,
                                         check=check_size_or_full, example="full")
    seed: int = option(0, "seeds attacks (PGD random start) and class-map minibatches", parse=int, example=1)
    fold_batchnorm: bool = option(
        True, "on: maps, class maps and attacks run on a copy of the model with BatchNorm folded into the "
              "convolutions (the same function up to float rounding, 1.3-2x faster on a CPU); off: the "
              "published arithmetic", parse=on_off, hash=HASHED_IF_SET, example=False)
    bootstrap: int = option(1000, "resamples B of the statistics stage's 95 % intervals (cosine: bootstrap; SVCCA, "
                                  "IdCor: half-sampling); 0: no intervals", parse=int, check=at_least(0),
                            hash=HASHED_IF_SET, example=200)
    power_sizes: int = option(6, "sizes of IdCor's power curve in the statistics stage, evenly spaced from 50 pairs "
                                 "to all", parse=int, check=at_least(2), hash=HASHED_IF_SET, example=4)
    power_repeats: int = option(5, "random subsets of every size of the power curve", parse=int, check=at_least(1),
                                hash=HASHED_IF_SET, example=3)
    noise_ceiling: bool = option(
        False, "train the essential maps a second time with --fold-batchnorm flipped (another operation order) and "
               "correlate the two sets: the highest similarity maps this unstable allow", parse=on_off, switch=True,
        hash=STAGES, example=True)
    adaptive_attacks: tuple[str, ...] = option(
        (), "attacks on the class-map defence that know it, from core.attack_keys.ADAPTIVE_ATTACKS (pgd+bpda, "
            "pgd+all-maps, fmn+defended, square+defended), at every --eps on every class-map set; needs --train-data",
        many=True, words=(("none", ()),), check=check_adaptive_attacks, hash=STAGES, example=("pgd+bpda",))
    adaptive_steps: int | None = option(
        None, "steps of the adaptive attacks (default: each attack's, PGD 40, FMN 100, Square 1000 queries)",
        parse=int, check=at_least(1, "leave it out for each attack's default"), hash=HASHED_IF_SET, example=10)
    adaptive_restarts: int = option(1, "random starts of adaptive PGD per image (the next start only for images "
                                       "the earlier ones did not fool)", parse=int, check=at_least(1),
                                    hash=HASHED_IF_SET, example=3)
    robustness_curve: bool = option(
        False, "accuracy against ε = 0, 1, 2, 4, 8, 16/255 per class-map set: the bare model, the defence under PGD "
               "on the bare model and under the fixed-budget --adaptive-attacks (default pgd+bpda); costly",
        parse=on_off, switch=True, hash=STAGES, example=True)
    effort_check: bool = option(
        False, "rerun every adaptive PGD setting with twice the steps and one more restart on the same images: the "
               "check that the attack converged (Carlini et al. 2019); a cell already at accuracy 0 is not rerun",
        parse=on_off, switch=True, hash=STAGES, example=True)
    adaptive_limit: int | None = option(
        None, "attack only the first N test images with the adaptive attacks and the robustness curve, where all "
              "are too slow (default: all; the table records N)", parse=int, check=at_least(1), hash=STAGES,
        example=100)
    basis: str = option("fourier", "basis the maps filter in (core/bases, docs/BASES.md): fourier (amplitude), phase, "
                                   "dct or wavelet", check=check_basis, hash=HASHED_IF_SET, example="dct")
    wavelet: str = option("haar", "with --basis wavelet: the wavelet, haar or db2", check=check_wavelet,
                          hash=HASHED_IF_SET, example="db2")
    wavelet_levels: int = option(3, "with --basis wavelet: decomposition levels (H and W divisible by 2^levels)",
                                 parse=int, check=at_least(1), hash=HASHED_IF_SET, example=2)
    layer: str = option("input", "where the maps filter: input (the image) or a layer of the model whose feature maps "
                                 "they filter instead (resnet20: layer1-layer3, resnet18: layer1-layer4)",
                        hash=HASHED_IF_SET, example="layer1")
    # --- run settings, not hashed (bf16 excepted: other arithmetic moves some sparse maps, tests/test_bf16.py) ---
    device: str = option("auto", "auto, cpu, cuda or cuda:N", hash=RUN, example="cpu")
    batch_size: int = option(64, "maps trained at once (slots of the batched trainer), or auto (as many as fit)",
                             parse=batch_size_or_auto, check=check_batch_size, hash=RUN, example=0)
    bf16: bool = option(
        False, "bfloat16 autocast for the classifier, its first convolution in float32, and the first "
               "--bf16-float32-steps steps of every per-image map in float32 (for GPUs; faster, but single maps "
               "may differ from float32 ones: see the README)", parse=on_off, switch=True, hash=HASHED_IF_SET,
        example=True)
    bf16_float32_steps: int = option(
        300, "with --bf16: the first steps of every per-image map in float32, where the map's sparse optimum is "
             "picked (bench/bench_precision.py)", parse=int, check=at_least(0, "0: every step in bf16"),
        hash=HASHED_IF_SET, example=100)
    class_chunk: int = option(1, "classes trained together per resumable class-map unit (GPU: 10 keeps it busy)",
                              parse=int, check=at_least(1), hash=RUN, example=10)
    compile: str = option(
        "auto", "torch.compile the map and class-map steps: on, off, or auto (on for runs long enough to repay the "
                "tens of seconds of compiling, off without a compiler); the maps move no more than under another "
                "float32 operation order (docs/BENCHMARKS.md)", check=one_of("auto", "on", "off"), hash=RUN,
        example="off")
    class_attacks: tuple[str, ...] | None = option(
        None, "attack units that get class-level maps and the defence, e.g. fmn pgd-8 deepfool, or all "
              "(default: the preset's, else all)", many=True, words=(("all", None),), hash=STAGES,
        example=("fmn",))
    extra: dict = option(help="free-form, hashed (e.g. notes that matter); set in code", factory=dict, cli=False)

    def map_basis(self) -> Basis:
        """The basis the maps filter in, with the wavelet options for --basis wavelet (core.bases.get_basis)."""
        from core.bases import get_basis

        if self.basis == "wavelet":
            return get_basis("wavelet", wavelet=self.wavelet, levels=self.wavelet_levels)
        return get_basis(self.basis)

    def hashed_dict(self) -> dict:
        """The fields that define results, as a JSON-ready dict."""
        values = asdict(self)
        policies = {f.name: (f.metadata["option"].hash, f.default) for f in fields(self)}
        return {name: value for name, value in values.items()
                if policies[name][0] == HASHED or (policies[name][0] == HASHED_IF_SET and value != policies[name][1])}

    def config_hash(self) -> str:
        """12 hex digits of sha256 over the hashed fields in canonical JSON."""
        blob = json.dumps(self.hashed_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def experiment_id(self) -> str:
        """Directory name: readable prefix + hash, e.g. 'demo-resnet20-samples-1a2b3c4d5e6f'."""
        data = re.sub(r"[^A-Za-z0-9]+", "-", self.data.rstrip("/").split("/")[-1]).strip("-") or "data"
        prefix = re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-") or "custom"
        return f"{prefix}-{self.model}-{data}-{self.config_hash()}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentConfig:
        """Inverse of `to_dict`; unknown keys are ignored (older/newer caches), tuples restored."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for f in fields(cls):
            if f.metadata["option"].many and values.get(f.name) is not None:
                values[f.name] = tuple(values[f.name])
        return cls(**values)

