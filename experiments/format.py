"""Names and codes of the cache format shared by the writer (precompute) and readers (app).

See docs/CACHE.md for the full layout.
"""

from __future__ import annotations

from collections.abc import Callable

# status.npy codes of a map set (one int8 per image of the experiment)
STATUS_MISCLASSIFIED = 0  # the clean image is misclassified: no map is computed
STATUS_ATTACK_FAILED = 1  # (adversarial sets) the attack did not change the prediction
STATUS_KEPT = 2  # map trained and its filtered image keeps the target label
STATUS_LOST = 3  # map trained but the last filtered image lost the target label (failed)

STATUS_TEXT = {
    STATUS_MISCLASSIFIED: "no map: the model misclassifies the clean image",
    STATUS_ATTACK_FAILED: "no adversarial map: the attack did not change the prediction",
    STATUS_KEPT: "map kept",
    STATUS_LOST: "no map: training ended with the filtered image no longer classified as the target",
}

ESSENTIAL = "essential"  # map-set name of the essential frequency maps
TEST = "test"  # prefix of the per-image data
TRAIN = "train"  # prefix of the class-map training data
DISPLAY_ORDER = "fftshift"  # Fourier maps are stored with the zero frequency at [H // 2, W // 2]

# ---------- where the maps act: the manifest's top-level "basis", "layer" and "map_shape" ----------
BASIS_KEY, LAYER_KEY, MAP_SHAPE_KEY = "basis", "layer", "map_shape"
DEFAULT_BASIS_KEY = "fourier"  # caches from before map bases: Fourier amplitude maps ...
DEFAULT_LAYER = "input"  # ... of the input image, (3, S, S) like the images


def map_space(manifest: dict) -> tuple[str, str, tuple[int, int, int]]:
    """(basis key, layer, map shape (C, H, W)) of an experiment's maps, as its manifest records them.

    The basis key is core.bases' `Basis.key` ('fourier', 'phase', 'dct', 'wavelet-haar-L3'); every map array is
    stored in that basis's display order. Manifests from before map bases record none of the three: Fourier at
    the input, maps shaped like the test images.
    """
    shape = manifest.get(MAP_SHAPE_KEY)
    if shape is None:
        images = manifest.get("arrays", {}).get(images_path(TEST), {}).get("shape")
        shape = images[1:] if images else (3, 32, 32)
    return (manifest.get(BASIS_KEY, DEFAULT_BASIS_KEY), manifest.get(LAYER_KEY, DEFAULT_LAYER),
            tuple(int(s) for s in shape))


def adversarial_set(attack_key: str) -> str:
    """Map-set name of the adversarial maps of one attack, e.g. 'adversarial-pgd-8'."""
    return f"adversarial-{attack_key}"


# ---------- stage names (the manifest's "stages") and array paths, for writers and readers alike ----------
DEFENCE = "defence"  # stage name and folder of the Table IV evaluation
DEFENCE_TABLE = f"{DEFENCE}/table.json"


def data_stage(prefix: str) -> str:
    """Stage that decodes the images of `prefix` (TEST or TRAIN): its name is the prefix itself."""
    return prefix


def classify_stage(prefix: str) -> str:
    return f"{prefix}-classify"


def attack_stage(prefix: str, attack_key: str) -> str:
    return f"{prefix}-attack-{attack_key}"


def maps_stage(map_set: str) -> str:
    return f"maps-{map_set}"


def correlation_stage(attack_key: str) -> str:
    return f"correlate-{attack_key}"


def class_maps_stage(attack_key: str) -> str:
    return f"class-maps-{attack_key}"


def keys_of_stages(stages: dict, stage_of: Callable[[str], str], complete_only: bool = True) -> list[str]:
    """The attack keys (or map-set names) k for which `stage_of(k)` is a stage in `stages`, in manifest order.

    `stage_of` is one of the functions above with the prefix bound, e.g. `lambda k: attack_stage(TEST, k)`.
    complete_only: only stages whose status is "complete".
    """
    probe = stage_of("\0")
    head, _, tail = probe.partition("\0")
    return [name[len(head):len(name) - len(tail)] for name, info in stages.items()
            if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail)
            and (not complete_only or info.get("status") == "complete")]


def images_path(prefix: str) -> str:
    """uint8 (N, 3, S, S) images of `prefix`."""
    return f"{prefix}/images.npy"


def labels_path(prefix: str) -> str:
    return f"{prefix}/labels.npy"


def meta_path(prefix: str) -> str:
    """JSON {"ids": [...], "classes": [...]} of `prefix`."""
    return f"{prefix}/meta.json"


def classify_dir(prefix: str) -> str:
    """Folder of pred.npy (N,) and probs.npy (N, K)."""
    return f"{prefix}/classify"


def attack_dir(prefix: str, attack_key: str) -> str:
    """Folder of adversarial, adv_pred, adv_probs, success, linf, l2 (.npy)."""
    return f"{prefix}/attacks/{attack_key}"


def map_dir(map_set: str) -> str:
    """Folder of one map set's arrays (maps, status, row, positions, steps, ...)."""
    return f"maps/{map_set}"


def correlation_dir(attack_key: str) -> str:
    """Folder of positions, cosine, null_ids (.npy); the summary is `correlation_json`."""
    return f"correlations/{attack_key}"


def correlation_json(attack_key: str) -> str:
    return f"correlations/{attack_key}.json"


def statistics_stage(attack_key: str) -> str:
    """Stage of the intervals, within-class nulls, CKA, half spectrum and power curve of one attack's pairs."""
    return f"statistics-{attack_key}"


def statistics_json(attack_key: str) -> str:
    """Summary of `statistics_stage`; its power-curve arrays sit beside it in `correlation_dir`."""
    return f"{correlation_dir(attack_key)}/statistics.json"


ESSENTIAL_REPEAT = "essential-repeat"  # map-set name of the noise ceiling's second essential maps
NOISE_CEILING = "noise-ceiling"  # stage name and folder of the noise ceiling (positions, cosine, null_ids)
NOISE_CEILING_JSON = f"{NOISE_CEILING}/summary.json"


def class_maps_dir(attack_key: str) -> str:
    """Folder of maps (K, C, H, W), iterations, final_loss, n_clean, n_adversarial (.npy)."""
    return f"class_maps/{attack_key}"


def npy_path(folder: str, name: str) -> str:
    """Path of array `name` inside one of the folders above: npy_path(map_dir(ESSENTIAL), "status") ->
    'maps/essential/status.npy'. Readers and writers name every array file through it."""
    return f"{folder}/{name}.npy"


def pooled_name(pool: str) -> str:
    """Name of a map set's pooled copy (M, C, 32, 32), stored beside maps.npy when the maps exceed 32x32."""
    return f"pooled_{pool}"


def defence_cell(row: str, column: str) -> str:
    """Name of the defended predictions (N,) of one Table IV cell in the DEFENCE folder, e.g. 'clean__fmn'."""
    return f"{row}__{column}"


def parts_name(stage: str, unit: int, usual_unit: int) -> str:
    """Name of a chunked stage's part files (`parts/<name>/`, until the stage is merged).

    A unit other than the usual one is part of the name, so a run resumed with another unit never mixes parts.
    """
    return stage if unit == usual_unit else f"{stage}-by{unit}"


# ---------- adaptive attacks on the defence (precompute/stages/adaptive.py) ----------
ADAPTIVE = "adaptive"  # prefix of the stages of attacks that know the defence; their results join DEFENCE_TABLE


def file_name(key: str) -> str:
    """An attack key as a file or folder name of the cache, whose paths allow letters, digits, '.', '_' and '-':
    '+' becomes '_' ('pgd-8+bpda' -> 'pgd-8_bpda'; keys hold no '_', so the name still says which key it is)."""
    return key.replace("+", "_")


def adaptive_stage(adaptive_key: str, maps_key: str) -> str:
    """Stage of one adaptive attack setting on the defence with one class-map set, e.g. 'adaptive-pgd-8+bpda__pgd-8'
    (a manifest key; its part files use `file_name` of it)."""
    return f"{ADAPTIVE}-{defence_cell(adaptive_key, maps_key)}"


def adaptive_cell(adaptive_key: str, maps_key: str) -> str:
    """Name of the defended predictions (N,) under one adaptive attack in the DEFENCE folder, e.g.
    'pgd-8_bpda__pgd-8'; its L∞ norms have the same name in `adaptive_linf_dir()`."""
    return file_name(defence_cell(adaptive_key, maps_key))


def adaptive_linf_dir() -> str:
    """Folder of the adaptive adversarials' L∞ norms (N,) float32, one array per `adaptive_cell`."""
    return f"{DEFENCE}/linf"


EFFORT = "effort"  # the effort check: an adaptive PGD cell rerun with more steps and restarts


def effort_stage(adaptive_key: str, maps_key: str) -> str:
    """Stage of the effort check of one adaptive cell, e.g. 'effort-pgd-3+bpda__pgd-8'."""
    return f"{EFFORT}-{defence_cell(adaptive_key, maps_key)}"


def effort_dir() -> str:
    """Folder of the effort check's defended predictions (N,) int64, one array per `adaptive_cell`."""
    return f"{DEFENCE}/{EFFORT}"


ROBUSTNESS_CURVE = "robustness-curve"  # prefix of the robustness-curve stages, one per class-map set


def robustness_curve_stage(maps_key: str) -> str:
    """Stage of the accuracy-against-ε curve of the defence with one class-map set, e.g. 'robustness-curve-pgd-8'."""
    return f"{ROBUSTNESS_CURVE}-{maps_key}"


def robustness_curve_json(maps_key: str) -> str:
    """Summary of `robustness_curve_stage`: ε, one accuracy row per attack, N and the settings."""
    return f"{DEFENCE}/curve-{maps_key}.json"


def robustness_curve_dir(maps_key: str) -> str:
    """Folder of the curve's per-image correctness, `<file_name(row)>.npy` (N, E) bool, beside its summary."""
    return f"{DEFENCE}/curve-{maps_key}"
