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
DISPLAY_ORDER = "fftshift"  # maps are stored with the zero frequency at [H // 2, W // 2]


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


def class_maps_dir(attack_key: str) -> str:
    """Folder of maps (K, C, H, W), iterations, final_loss, n_clean, n_adversarial (.npy)."""
    return f"class_maps/{attack_key}"
