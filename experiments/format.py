"""Names and codes of the cache format shared by the writer (precompute) and readers (app).

See docs/CACHE.md for the full layout.
"""

from __future__ import annotations

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
