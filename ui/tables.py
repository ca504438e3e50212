"""Markdown tables the pages show as text: the model's top classes, and a map's radial profile in a few rings.

Pure functions of numpy arrays (no Streamlit): a table is one markdown element, which the browser draws in
milliseconds, where a chart would cost it hundreds. Class names are escaped for markdown's table cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ui.arrays import radial_bands, top_k


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def top3_table(label: int | None, probability_sets: Sequence[tuple[str, np.ndarray]],
               classes: Sequence[str]) -> str | None:
    """The model's 3 most probable classes for each named (K,) probability vector, one column each, as a markdown
    table (✓: the true class `label`); None without any probabilities."""
    if not probability_sets:
        return None
    best = [top_k(np.asarray(probs), 3) for _, probs in probability_sets]
    lines = ["| | " + " | ".join(_cell(name) for name, _ in probability_sets) + " |",
             "|---" * (len(probability_sets) + 1) + "|"]
    for rank in range(max(len(b) for b in best)):
        cells = [f"{_cell(classes[b[rank][0]])}{' ✓' if b[rank][0] == label else ''} · {100 * b[rank][1]:.1f} %"
                 if rank < len(b) else "" for b in best]
        lines.append(f"| {rank + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def probability_table(probs: np.ndarray, classes: Sequence[str], true_label: int | None = None, k: int = 3) -> str:
    """One image's k most probable classes as a markdown table (rank, class with ✓ if true, probability)."""
    lines = ["| | class | probability |", "|---|---|---|"]
    for rank, (index, p) in enumerate(top_k(np.asarray(probs), k), start=1):
        lines.append(f"| {rank} | {_cell(classes[index])}{' ✓' if index == true_label else ''} | {100 * p:.1f} % |")
    return "\n".join(lines)


def radial_table(maps: Sequence[tuple[str, np.ndarray]]) -> str:
    """Each map's mean value in octave-wide frequency rings (ui.arrays.radial_bands) as a markdown table."""
    bands = [radial_bands(m) for _, m in maps]
    lines = ["| radius (cycles/image) | " + " | ".join(name for name, _ in maps) + " |", "|---" * (len(maps) + 1) + "|"]
    for k, (first, last, _) in enumerate(bands[0]):
        ring = f"{first}" if first == last else f"{first}–{last}"
        lines.append(f"| {ring} | " + " | ".join(f"{b[k][2]:.2f}" for b in bands) + " |")
    return "\n".join(lines)


__all__ = ["probability_table", "radial_table", "top3_table"]
