"""One experiment's configuration: a dataclass whose hash names its cache directory.

Fields that change results are hashed; fields that only change how fast they are computed
(device, batch sizes, verbosity) are not, and neither are `attacks` and `eps`: adding an attack
to an experiment adds stages to the same directory instead of recomputing the essential maps.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields

# Fields left out of the hash (they don't change any stored number, or are added stage by stage).
UNHASHED = frozenset({"attacks", "eps", "device", "batch_size", "class_chunk", "class_attacks", "class_batch_size_run", "quiet"})
# Hashed fields added after caches were shipped: left out of the hash while they keep this default, so
# every existing experiment keeps its directory name (and `--preset demo` still rebuilds the same one).
# bf16 is other arithmetic, which moves some sparse maps (tests/test_bf16.py): a bf16 run is another experiment.
HASHED_ONLY_IF_SET = {"attack_steps": None, "fold_batchnorm": True, "bf16": False, "bf16_float32_steps": 300}


@dataclass
class ExperimentConfig:
    """Everything that defines one experiment. Units in comments."""

    name: str = "custom"  # preset name or "custom": a readable prefix of the directory name
    model: str = "resnet20"  # key of core.models.registry.MODELS
    checkpoint: str | None = None  # classifier weights file; None = the project's shipped ResNet-20
    checkpoint_sha256: str = ""  # filled in from the file: the hash follows the weights, not the path
    input_norm: str = "none"  # "none" | "imagenet": normalisation inside the model, after the map
    data: str = "samples"  # "samples" | "cifar10" | "imagenette" | an ImageFolder path
    split: str = "test"  # split of `data` whose images get per-image maps
    data_root: str | None = None  # torchvision root for "cifar10" / "imagenette"
    limit: int | None = None  # first N images of the split; None = all
    image_size: int = 32  # square side in pixels the images are resized to (the model's input)
    attacks: tuple[str, ...] = ("fmn", "pgd", "deepfool")  # keys of core.attacks.ATTACKS
    eps: tuple[float, ...] = (8.0,)  # PGD L-inf budgets in 1/255 units
    attack_steps: int | None = None  # steps of every attack; None = Foolbox's defaults (FMN 100, PGD 40, DeepFool 50)
    lam: float = 0.5  # L1 weight of per-image maps (METHOD §2)
    lr: float = 0.01  # Adam learning rate of maps
    min_steps: int = 500  # per-image maps: no stop before this many steps
    max_steps: int = 5000  # per-image maps: hard stop
    tol: float = 1e-5  # per-image maps: |loss - mean(last 20)| below this stops
    map_dtype: str = "float32"  # "float32" | "float16": stored dtype of full-size maps
    pool: str = "avg"  # "avg" | "max": pooling of maps larger than 32x32 before correlating
    permutations: int = 100  # IdCor permutation test size
    repairings: int = 10  # random re-pairings for the cosine/SVCCA baseline
    chunk_size: int = 128  # images per resumable unit of work (also the attack seed unit)
    train_data: str | None = None  # ImageFolder path / data name for class-level maps; None = skip
    train_split: str = "train"  # split of `train_data`
    train_limit: int | None = None  # first N training images; None = all
    class_lam: float = 0.001  # L1 weight of class-level maps (METHOD §5)
    class_min_steps: int = 500
    class_max_steps: int = 5000
    class_tol: float = 1e-3
    class_batch_size: int = 128  # minibatch of images per class-map step
    seed: int = 0  # seeds attacks (PGD random start) and class-map minibatches
    # maps, class maps and attacks run on a copy of the model with BatchNorm folded into the convolutions:
    # the same function up to float rounding, 1.3-2x faster on a CPU; False = the published arithmetic
    fold_batchnorm: bool = True
    # --- run settings, not hashed (bf16 excepted, see HASHED_ONLY_IF_SET) ---
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    batch_size: int = 64  # maps trained at once (slots of the batched trainer)
    bf16: bool = False  # bfloat16 autocast for the classifier on CUDA (hashed when on)
    # with bf16: the first steps of every per-image map in float32, where the map's sparse optimum is picked
    # (bench/bench_precision.py); hashed when not 300
    bf16_float32_steps: int = 300
    class_chunk: int = 1  # classes trained together per resumable class-map unit (GPU: 10 keeps it busy)
    class_attacks: tuple[str, ...] | None = None  # attack units (e.g. "pgd-8") that get class maps; None = all
    extra: dict = field(default_factory=dict)  # free-form, hashed (e.g. notes that matter)

    def hashed_dict(self) -> dict:
        """The fields that define results, as a JSON-ready dict."""
        return {k: v for k, v in asdict(self).items()
                if k not in UNHASHED and not (k in HASHED_ONLY_IF_SET and v == HASHED_ONLY_IF_SET[k])}

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
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("attacks", "eps", "class_attacks"):
            if key in values and values[key] is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
