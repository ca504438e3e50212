"""Read-only access to experiments for the app, the report and the export command.

Arrays are memory-mapped: showing one image's maps reads that image's rows only, so an
experiment with thousands of 224x224 maps costs no more memory than the demo.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field

import numpy as np

from core.attack_keys import attack_order
from experiments.compact_maps import COMPACT_NAMES, has_compact_maps, load_compact_maps, load_maps
from experiments.config import ExperimentConfig
from experiments.format import (
    DEFENCE_TABLE,
    ESSENTIAL,
    NOISE_CEILING,
    NOISE_CEILING_JSON,
    STATUS_KEPT,
    STATUS_TEXT,
    TEST,
    TRAIN,
    adversarial_set,
    attack_dir,
    attack_stage,
    class_maps_dir,
    class_maps_stage,
    classify_dir,
    correlation_dir,
    correlation_json,
    data_stage,
    images_path,
    keys_of_stages,
    labels_path,
    map_dir,
    maps_stage,
    meta_path,
    npy_path,
    robustness_curve_json,
    robustness_curve_stage,
    statistics_json,
)
from experiments.store import CacheError, ExperimentStore, read_manifest
from experiments.verified import VerifiedFiles

IMAGES = images_path(TEST)
POWER_ARRAYS = ("power_sizes", "power_idcor", "power_p_values")  # the power curve's arrays in correlation_dir


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
        n = self.stages.get(data_stage(TEST), {}).get("n", "?")
        keys = keys_of_stages(self.stages, lambda k: attack_stage(TEST, k), complete_only=False)
        attacks = ", ".join(sorted(keys, key=attack_order))
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
        meta = self.store.load_json(meta_path(TEST))
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
        """Whether the per-image maps were deleted on purpose (their statistics stay) without a compact copy
        (`precompute prune --compact-maps`) of every set."""
        dropped = any(pattern.startswith(map_dir("")) for pattern in self.dropped)  # under the maps folder
        return dropped and not all(self.has_maps(name) for name in self.map_set_names())

    def has_maps(self, name: str) -> bool:
        """Whether map set `name` still holds its maps (full-size, or their compact copy), not only statistics."""
        return self.has(npy_path(map_dir(name), "maps")) or has_compact_maps(self.store, name)

    @property
    def maps_compact(self) -> bool:
        """Whether the maps are read from compact copies (float16 values of the stored maps)."""
        return any(has_compact_maps(self.store, name) and not self.has(npy_path(map_dir(name), "maps"))
                   for name in self.map_set_names())

    def images(self) -> np.ndarray:
        """uint8 (N, 3, H, W), memory-mapped."""
        return self.array(IMAGES)

    def image(self, i: int) -> np.ndarray:
        """float32 (3, H, W) in [0, 1]."""
        return np.asarray(self.images()[i], dtype=np.float32) / 255

    def labels(self) -> np.ndarray:
        return np.asarray(self.array(labels_path(TEST)))

    def pred(self) -> np.ndarray:
        return np.asarray(self.array(npy_path(classify_dir(TEST), "pred")))

    def probs(self) -> np.ndarray:
        return self.array(npy_path(classify_dir(TEST), "probs"))

    def stage(self, name: str) -> dict:
        return self.manifest["stages"].get(name, {})

    # ---------- attacks ----------
    @property
    def attack_keys(self) -> list[str]:
        """Attacks with a complete test-set stage, in a stable order (fmn, pgd by eps, deepfool)."""
        keys = keys_of_stages(self.manifest["stages"], lambda k: attack_stage(TEST, k))
        return sorted(keys, key=attack_order)

    def attack(self, key: str) -> dict[str, np.ndarray]:
        """adversarial (N, 3, H, W) float32, adv_pred, adv_probs, success, linf, l2 (memory-mapped);
        a results-only copy has no "adversarial"."""
        names = ("adversarial", "adv_pred", "adv_probs", "success", "linf", "l2")
        folder = attack_dir(TEST, key)
        return {name: self.array(npy_path(folder, name)) for name in names if self.has(npy_path(folder, name))}

    # ---------- maps ----------
    def map_set_names(self) -> list[str]:
        return keys_of_stages(self.manifest["stages"], maps_stage)

    def map_set(self, name: str) -> dict[str, np.ndarray]:
        """maps (M, 3, H, W) centred, status (N,), row (N,), steps, kept, nonzero, dc_only, positions.

        A compact copy's "maps" is a CompactMaps (experiments/compact_maps.py), indexed like the array it replaces.
        """
        folder = map_dir(name)
        keys = [posixpath.splitext(posixpath.basename(path))[0] for path in self.manifest["arrays"]
                if posixpath.dirname(path) == folder]
        arrays = {k: self.array(npy_path(folder, k)) for k in keys if k not in COMPACT_NAMES}
        if "maps" not in arrays and has_compact_maps(self.store, name):
            arrays["maps"] = load_compact_maps(self.store, name)
        return arrays

    def image_map(self, name: str, i: int) -> tuple[np.ndarray | None, str]:
        """(3, H, W) float32 centred map of image i in set `name` (or None), and a status sentence."""
        folder = map_dir(name)
        if npy_path(folder, "status") not in self.manifest["arrays"]:
            return None, f"this experiment has no {name} maps"
        status = int(self.array(npy_path(folder, "status"))[i])
        row = int(self.array(npy_path(folder, "row"))[i])
        if status != STATUS_KEPT or row < 0:
            return None, STATUS_TEXT.get(status, "no map")
        if not self.has_maps(name):
            return None, "map kept, but its values were dropped from this copy (results only)"
        return np.asarray(load_maps(self.store, name)[row], dtype=np.float32), STATUS_TEXT[status]

    def essential_map(self, i: int) -> tuple[np.ndarray | None, str]:
        return self.image_map(ESSENTIAL, i)

    def adversarial_map(self, key: str, i: int) -> tuple[np.ndarray | None, str]:
        return self.image_map(adversarial_set(key), i)

    # ---------- correlations, class maps, defence ----------
    def correlation(self, key: str) -> dict | None:
        """Summary dict plus 'positions', 'cosine', 'null_ids' arrays, or None if not computed."""
        if correlation_json(key) not in self.manifest["files"]:
            return None
        summary = dict(self.store.load_json(correlation_json(key)))
        for name in ("positions", "cosine", "null_ids"):
            summary[name] = np.asarray(self.array(npy_path(correlation_dir(key), name)))
        return summary

    def statistics(self, key: str) -> dict | None:
        """The statistics stage's summary of attack `key` (precompute/stages/statistics.py), its power curve's
        per-subset "idcor" and "p_values" (S, R) filled in from their arrays; None if not computed."""
        if statistics_json(key) not in self.manifest["files"]:
            return None
        summary = dict(self.store.load_json(statistics_json(key)))
        power = summary.get("power")
        if power:
            power = summary["power"] = dict(power)
            for name in POWER_ARRAYS:
                power[name.removeprefix("power_")] = np.asarray(self.array(npy_path(correlation_dir(key), name)))
        return summary

    def noise_ceiling(self) -> dict | None:
        """The noise ceiling's summary plus its 'positions' and 'cosine' arrays, or None if not computed."""
        if NOISE_CEILING_JSON not in self.manifest["files"]:
            return None
        summary = dict(self.store.load_json(NOISE_CEILING_JSON))
        for name in ("positions", "cosine"):
            summary[name] = np.asarray(self.array(npy_path(NOISE_CEILING, name)))
        return summary

    def class_map_keys(self) -> list[str]:
        return sorted(keys_of_stages(self.manifest["stages"], class_maps_stage), key=attack_order)

    def class_maps(self, key: str) -> np.ndarray:
        """(K, 3, H, W) float32 centred class-level maps trained against attack `key`."""
        return np.asarray(self.array(npy_path(class_maps_dir(key), "maps")), dtype=np.float32)

    def defence_table(self) -> dict | None:
        """Table IV (precompute/stages/defence.py), with its "adaptive" block where adaptive attacks ran."""
        if DEFENCE_TABLE not in self.manifest["files"]:
            return None
        return self.store.load_json(DEFENCE_TABLE)

    def adaptive_table(self) -> dict | None:
        """The adaptive attacks' table in Table IV's layout (rows: adaptive keys such as 'pgd-8+bpda', columns:
        class-map keys, accuracy, accuracy_clean_correct, n, n_clean_correct, settings, checks), or None."""
        table = self.defence_table()
        return None if table is None else table.get("adaptive")

    def robustness_curves(self) -> dict[str, dict]:
        """Class-map key -> its robustness curve's summary (eps_255, rows, accuracy per row, n, checks)."""
        keys = keys_of_stages(self.manifest["stages"], robustness_curve_stage)
        return {key: self.store.load_json(robustness_curve_json(key)) for key in sorted(keys, key=attack_order)
                if robustness_curve_json(key) in self.manifest["files"]}

    def has_train_split(self) -> bool:
        return labels_path(TRAIN) in self.manifest["arrays"]


def _results_only(manifest: dict) -> bool:
    """The test images were dropped on purpose (listed under "dropped") and are absent."""
    return IMAGES in manifest.get("dropped", []) and IMAGES not in manifest.get("arrays", {})


def canonical_index(ids: list[str]) -> np.ndarray:
    """Image ids as int64 indices when every id's file stem is a number (e.g. 'cat/0123.png'), else strings."""
    stems = [os.path.splitext(os.path.basename(i))[0] for i in ids]
    if all(s.isdigit() for s in stems):
        return np.array([int(s) for s in stems], dtype=np.int64)
    return np.array(ids, dtype=str)
