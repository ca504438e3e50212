"""Words and cells for the statistics stage's numbers, shared by the report and the Correlations page."""

from __future__ import annotations


def interval_text(bounds: list | None, digits: int = 2) -> str:
    """'[0.31, 0.44]' of a stored [low, high] interval; '–' when absent or not computable."""
    return "–" if not bounds or None in bounds else f"[{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]"


def mean_std_text(summary: dict, prefix: str, digits: int = 2) -> str:
    """'0.28 ± 0.02' of summary[prefix_mean] and summary[prefix_std]; '–' when absent."""
    mean, std = summary.get(f"{prefix}_mean"), summary.get(f"{prefix}_std")
    return "–" if mean is None else f"{mean:.{digits}f} ± {std or 0:.{digits}f}"


def pairs_needed_text(power: dict | None) -> str:
    """IdCor's pairs for a median p < alpha from the power curve: 'from 200 (observed)', 'about 900 (extrapolated)'."""
    if not power:
        return "–"
    needed, method = power.get("pairs_needed"), power.get("pairs_needed_method")
    if method == "observed":
        return f"from {needed} (observed)"
    if method == "extrapolated":
        return f"about {needed} (extrapolated)"
    return "none (no effect)"
