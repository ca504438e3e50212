"""The downloads of one image's views: its maps (.npy, centred, and PNG), image panels (PNG) and a summary (CSV).

Bytes, not callables: Streamlit serves a callable's file only until some session reruns, so under load a
click could be cancelled (found by bench/load_test.py); bytes stay valid as long as the button is shown.
No Streamlit here (ui.pair_views draws the buttons).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ui.downloads import csv_bytes, npy_bytes, png_bytes
from ui.image_views import ImageViews

DownloadItem = tuple[str, str, bytes, str]  # (button label, file name, bytes, mime type)


def summary_row(views: ImageViews, classes: Sequence[str]) -> dict[str, object]:
    """The one-row summary of one image's views: classes predicted on each image, the attack's outcome and norms,
    what became of each map, and the maps' cosine (None where there is none)."""
    def name_of(probs: np.ndarray | None) -> str | None:
        return None if probs is None else classes[int(np.argmax(probs))]

    adversarial = views.adversarial
    attack = views.attack_key or (views.lab.attack if views.lab else "") or ""
    return {
        "image": views.image_id, "true_class": classes[views.label] if views.label is not None else "",
        "attack": attack, "clean_pred": name_of(views.clean.probs),
        "adversarial_pred": name_of(adversarial.probs if adversarial else None), "attack_success": views.success,
        "linf": views.linf, "l2": views.l2,
        "essential_status": views.clean.map_status, "adversarial_status": views.adversarial_status,
        "filtered_clean_pred": name_of(views.clean.filtered_probs),
        "filtered_adversarial_pred": name_of(adversarial.filtered_probs if adversarial else None),
        "cosine": views.cosine,
    }


def download_items(views: ImageViews, classes: Sequence[str], file_stem: str) -> list[DownloadItem]:
    """Every download of one image's views, in the order of their buttons; file names start with `file_stem`."""
    adversarial = views.adversarial
    items: list[DownloadItem] = []
    for name, key, map_display in (("essential map", "essential", views.essential),
                                   ("adversarial map", "adversarial_map", views.adversarial_map)):
        if map_display is not None:
            items.append((f"{name} (.npy)", f"{file_stem}_{key}.npy", npy_bytes(map_display), "application/octet-stream"))
            if map_display.shape[0] in (1, 3):  # a hidden layer's many channels have no picture; the .npy has them
                items.append((f"{name} (PNG)", f"{file_stem}_{key}.png", png_bytes(map_display), "image/png"))
    for name, key, image in (("clean image", "clean", views.clean.image),
                             ("adversarial image", "adversarial", adversarial.image if adversarial else None),
                             ("filtered clean image", "filtered_clean", views.clean.filtered),
                             ("filtered adversarial image", "filtered_adversarial",
                              adversarial.filtered if adversarial else None)):
        if image is not None:
            items.append((f"{name} (PNG)", f"{file_stem}_{key}.png", png_bytes(image), "image/png"))
    items.append(("summary (CSV)", f"{file_stem}_summary.csv", csv_bytes([summary_row(views, classes)]), "text/csv"))
    return items


__all__ = ["DownloadItem", "download_items", "summary_row"]
