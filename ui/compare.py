"""Explore's attack comparison: one image's essential map beside every attack's adversarial map, with their cosines.

The paper compares the essential map with one attack at a time; a reader of one image also wants to know whether
FMN, PGD and DeepFool exploit the same frequencies. Numpy and Pillow only (pictures from ui.pictures), no
Streamlit, so tests call it directly. Maps arrive centred, (3, H, W) floats in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.attack_keys import attack_label
from ui.arrays import cosine
from ui.pictures import display_factor, image_picture, with_frequency_axes

COMPARE_PX = 160  # panel size: four maps with their axes fit side by side in a laptop-width page

NamedMap = tuple[str, np.ndarray | None, str]  # (label, (3, H, W) centred map or None, status sentence)


def image_maps(experiment: object, index: int) -> list[NamedMap]:
    """Image `index`'s essential map, then its adversarial map under each attack of an opened Experiment, in order.

    Labelled with the attack's label ("adversarial, PGD ε=8/255"). Missing maps are kept, as None with the reason.
    """
    essential, status = experiment.essential_map(index)
    out: list[NamedMap] = [("essential", essential, status)]
    for key in experiment.attack_keys:
        adversarial, status = experiment.adversarial_map(key, index)
        out.append((f"adversarial, {attack_label(key)}", adversarial, status))
    return out


def cosine_matrix(maps: Sequence[NamedMap]) -> tuple[list[str], np.ndarray]:
    """Names of the maps that exist and their (M, M) cosine matrix (1 on the diagonal), full resolution."""
    present = [(name, m) for name, m, _ in maps if m is not None]
    matrix = np.array([[cosine(a, b) for _, b in present] for _, a in present]).reshape(len(present), len(present))
    return [name for name, _ in present], matrix


def cosine_table(maps: Sequence[NamedMap]) -> str | None:
    """Markdown matrix of the cosine similarity between every two maps that exist ('–' on the diagonal).

    None when fewer than two maps exist. Full resolution, like Explore's pair cosine.
    """
    names, matrix = cosine_matrix(maps)
    if len(names) < 2:
        return None
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i, row_name in enumerate(names):
        cells = ["–" if i == j else f"{matrix[i, j]:.3f}" for j in range(len(names))]
        lines.append(f"| **{row_name}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cosine_rows(maps: Sequence[NamedMap]) -> list[dict]:
    """The cosine matrix as CSV-ready rows: {"map": name, <other name>: cosine, ...}, full precision."""
    names, matrix = cosine_matrix(maps)
    return [{"map": row_name, **{name: float(matrix[i, j]) for j, name in enumerate(names)}}
            for i, row_name in enumerate(names)]


def map_panels(maps: Sequence[NamedMap]) -> list[tuple[np.ndarray, str]]:
    """One RGB-composite picture with frequency axes per existing map, captioned with its name and non-zero count."""
    panels = []
    for name, m, _ in maps:
        if m is None:
            continue
        size = m.shape[-1]
        picture = with_frequency_axes(image_picture(m, display_factor(size, COMPARE_PX)), size)
        panels.append((picture, f"{name} · {int((m > 0).sum())} of {m.size} non-zero"))
    return panels


def missing_notes(maps: Sequence[NamedMap]) -> list[str]:
    """'<name>: <reason>' for every map that does not exist."""
    return [f"{name}: {status}" for name, m, status in maps if m is None]


__all__ = ["COMPARE_PX", "NamedMap", "cosine_matrix", "cosine_rows", "cosine_table", "image_maps", "map_panels", "missing_notes"]
