"""Read-only access to experiments for the app, the report and the export command.

Arrays are memory-mapped: showing one image's maps reads that image's rows only, so an
experiment with thousands of 224x224 maps costs no more memory than the demo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from experiments.config import ExperimentConfig
from experiments.format import ESSENTIAL, STATUS_KEPT, STATUS_TEXT, TEST, TRAIN, adversarial_set
from experiments.store import CacheError, ExperimentStore, read_manifest
from experiments.verified import VerifiedFiles

IMAGES = f"{TEST}/images.npy"


@dataclass
class ExperimentListing:
    """One directory found under a cache root: usable, or damaged with the reasons."""

    path: str
    id: str
    problems: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    results_only: bool = False  # images and maps dropped by `precompute prune` (see Experiment.results_only)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        """A one-line label for pickers: data set, model, attacks, N."""
        if not self.ok:
            return f"{self.id} (damaged)"
        cfg = self.config
        data = os.path.basename(str(cfg.get("data", "?")).rstrip("/"))
        n = self.stages.get(f"{TEST}", {}).get("n", "?")
        keys = [k.removeprefix(f"{TEST}-attack-") for k in self.stages if k.startswith(f"{TEST}-attack-")]
        attacks = ", ".join(sorted(keys, key=_attack_order))
        checkpoint = cfg.get("checkpoint")  # two runs of one model differ by their weights: name the file
        weights = f" ({os.path.splitext(os.path.basename(str(checkpoint)))[0]})" if checkpoint else ""
        return (f"{cfg.get('name', '?')}: {cfg.get('model', '?')}{weights} on {data}, N={n}, λ={cfg.get('lam', '?')}, "
                f"{attacks or 'no attacks'}" + (" (results only)" if self.results_only else ""))


def find_experiments(roots: list[str], deep: bool = True, verified: VerifiedFiles | None = None) -> list[ExperimentListing]:
    """Every experiment directory directly under each root, checked (deep: checksums too; `verified`: skip
    the files that matched before and have not changed since, see ExperimentStore.verify)."""
    found = []
    for root in roots:
        if not os.path.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            if not os.path.isfile(os.path.join(path, "manifest.json")):
                continue
            listing = ExperimentListing(path=path, id=name)
            try:
                manifest = read_manifest(path)
                listing.config, listing.stages = manifest.get("config", {}), manifest.get("stages", {})
                listing.id = manifest.get("id", name)
                listing.results_only = _results_only(manifest)
            except CacheError as err:
                listing.problems.append(str(err))
            else:
                listing.problems += ExperimentStore(path).verify(deep=deep, verified=verified)
            found.append(listing)
    return found


class Experiment:
    """One experiment opened for reading. Raises CacheError when it is damaged (with the file)."""

    def __init__(self, path: str, verify: bool = True) -> None:
        self.store = ExperimentStore(path)
        self.manifest = self.store.manifest()
        if verify:
            problems = self.store.verify(deep=True)
            if problems:
                raise CacheError(f"{path} is damaged: {problems[0]}; rebuild it with python -m precompute run")
        self.path = self.store.path
        self.id = self.manifest["id"]
        self.config = ExperimentConfig.from_dict(self.manifest["config"])
        meta = self.store.load_json(f"{TEST}/meta.json")
        self.classes: list[str] = meta["classes"]
        self.ids: list[str] = meta["ids"]

    # ---------- images and predictions ----------
    @property
    def n(self) -> int:
        return len(self.ids)

    def array(self, relpath: str) -> np.ndarray:
        return self.store.load_array(relpath)

    def has(self, relpath: str) -> bool:
        return self.store.has_array(relpath)

    @property
    def has_images(self) -> bool:
        """Whether the test images are here (a results-only copy has none)."""
        return self.has(IMAGES)

    @property
    def results_only(self) -> bool:
        """A copy made by `precompute prune --drop images maps`: labels, predictions, attack results, map
        statistics, correlations, class maps and the defence table, but no images, adversarial images or maps."""
        return _results_only(self.manifest)

    @property
    def dropped(self) -> list[str]:
        """Patterns of the files `precompute prune` deleted on purpose (empty for a full experiment)."""
        return list(self.manifest.get("dropped", []))

    @property
    def maps_dropped(self) -> bool:
        """Whether the full-size per-image maps were deleted on purpose (their statistics stay)."""
        return any(pattern.startswith("maps/") for pattern in self.dropped)

    def has_maps(self, name: str) -> bool:
        """Whether map set `name` still holds its full-size maps (not only their statistics)."""
        return self.has(f"maps/{name}/maps.npy")

    def images(self) -> np.ndarray:
        """uint8 (N, 3, H, W), memory-mapped."""
        return self.array(IMAGES)

    def image(self, i: int) -> np.ndarray:
        """float32 (3, H, W) in [0, 1]."""
        return np.asarray(self.images()[i], dtype=np.float32) / 255

    def labels(self) -> np.ndarray:
        return np.asarray(self.array(f"{TEST}/labels.npy"))

    def pred(self) -> np.ndarray:
        return np.asarray(self.array(f"{TEST}/classify/pred.npy"))

    def probs(self) -> np.ndarray:
        return self.array(f"{TEST}/classify/probs.npy")

    def stage(self, name: str) -> dict:
        return self.manifest["stages"].get(name, {})

    # ---------- attacks ----------
    @property
    def attack_keys(self) -> list[str]:
        """Attacks with a complete test-set stage, in a stable order (fmn, pgd by eps, deepfool)."""
        keys = [s.removeprefix(f"{TEST}-attack-") for s, v in self.manifest["stages"].items()
                if s.startswith(f"{TEST}-attack-") and v.get("status") == "complete"]
        return sorted(keys, key=_attack_order)

    def attack(self, key: str) -> dict[str, np.ndarray]:
        """adversarial (N, 3, H, W) float32, adv_pred, adv_probs, success, linf, l2 (memory-mapped);
        a results-only copy has no "adversarial"."""
        names = ("adversarial", "adv_pred", "adv_probs", "success", "linf", "l2")
        return {name: self.array(f"{TEST}/attacks/{key}/{name}.npy") for name in names
                if self.has(f"{TEST}/attacks/{key}/{name}.npy")}

    # ---------- maps ----------
    def map_set_names(self) -> list[str]:
        return [s.removeprefix("maps-") for s, v in self.manifest["stages"].items()
                if s.startswith("maps-") and v.get("status") == "complete"]

    def map_set(self, name: str) -> dict[str, np.ndarray]:
        """maps (M, 3, H, W) centred, status (N,), row (N,), steps, kept, nonzero, dc_only, positions."""
        prefix = f"maps/{name}"
        keys = [k.removeprefix(prefix + "/").removesuffix(".npy") for k in self.manifest["arrays"] if k.startswith(prefix + "/")]
        return {k: self.array(f"{prefix}/{k}.npy") for k in keys}

    def image_map(self, name: str, i: int) -> tuple[np.ndarray | None, str]:
        """(3, H, W) float32 centred map of image i in set `name` (or None), and a status sentence."""
        if f"maps/{name}/status.npy" not in self.manifest["arrays"]:
            return None, f"this experiment has no {name} maps"
        status = int(self.array(f"maps/{name}/status.npy")[i])
        row = int(self.array(f"maps/{name}/row.npy")[i])
        if status != STATUS_KEPT or row < 0:
            return None, STATUS_TEXT.get(status, "no map")
        if not self.has_maps(name):
            return None, "map kept, but its values were dropped from this copy (results only)"
        return np.asarray(self.array(f"maps/{name}/maps.npy")[row], dtype=np.float32), STATUS_TEXT[status]

    def essential_map(self, i: int) -> tuple[np.ndarray | None, str]:
        return self.image_map(ESSENTIAL, i)

    def adversarial_map(self, key: str, i: int) -> tuple[np.ndarray | None, str]:
        return self.image_map(adversarial_set(key), i)

    # ---------- correlations, class maps, defence ----------
    def correlation(self, key: str) -> dict | None:
        """Summary dict plus 'positions', 'cosine', 'null_ids' arrays, or None if not computed."""
        if f"correlations/{key}.json" not in self.manifest["files"]:
            return None
        summary = dict(self.store.load_json(f"correlations/{key}.json"))
        for name in ("positions", "cosine", "null_ids"):
            summary[name] = np.asarray(self.array(f"correlations/{key}/{name}.npy"))
        return summary

    def class_map_keys(self) -> list[str]:
        keys = [s.removeprefix("class-maps-") for s, v in self.manifest["stages"].items()
                if s.startswith("class-maps-") and v.get("status") == "complete"]
        return sorted(keys, key=_attack_order)

    def class_maps(self, key: str) -> np.ndarray:
        """(K, 3, H, W) float32 centred class-level maps trained against attack `key`."""
        return np.asarray(self.array(f"class_maps/{key}/maps.npy"), dtype=np.float32)

    def defence_table(self) -> dict | None:
        if "defence/table.json" not in self.manifest["files"]:
            return None
        return self.store.load_json("defence/table.json")

    def has_train_split(self) -> bool:
        return f"{TRAIN}/labels.npy" in self.manifest["arrays"]


def _results_only(manifest: dict) -> bool:
    """The test images were dropped on purpose (listed under "dropped") and are absent."""
    return IMAGES in manifest.get("dropped", []) and IMAGES not in manifest.get("arrays", {})


def canonical_index(ids: list[str]) -> np.ndarray:
    """Image ids as int64 indices when every id's file stem is a number (e.g. 'cat/0123.png'), else strings."""
    stems = [os.path.splitext(os.path.basename(i))[0] for i in ids]
    if all(s.isdigit() for s in stems):
        return np.array([int(s) for s in stems], dtype=np.int64)
    return np.array(ids, dtype=str)


def _attack_order(key: str) -> tuple[int, float]:
    """fmn < pgd-1 < pgd-3 < pgd-8 < deepfool < anything else."""
    base, _, eps = key.partition("-")
    rank = {"fmn": 0, "pgd": 1, "deepfool": 2}.get(base, 3)
    try:
        return rank, float(eps) if eps else 0.0
    except ValueError:
        return rank, 0.0
