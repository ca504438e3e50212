"""Table I per basis and layer: the loaded experiments of one model and data set that differ only in where their
maps act, side by side (the Correlations page). No Streamlit.

Experiments are matched on what makes their maps comparable: the model and its weights, the data and the image
size (MATCH); one experiment per basis and layer is shown, the first found. When the matched experiments use
different L1 weights (each basis has its own, docs/BASES.md), every label names its λ, and one experiment per
basis, layer and λ is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from core.attack_keys import attack_label, attack_order

MATCH = ("model", "checkpoint_sha256", "data", "image_size")  # config fields that must agree for a comparison


def config_basis_key(config: Mapping) -> str:
    """The basis key of an experiment's config dict (core.bases.Basis.key), 'fourier' when it names none."""
    basis = str(config.get("basis", "fourier"))
    if basis == "wavelet":
        return f"wavelet-{config.get('wavelet', 'haar')}-L{config.get('wavelet_levels', 3)}"
    return basis


def config_where(config: Mapping) -> str:
    """'dct', 'fourier at layer1': the basis and layer of an experiment's config dict."""
    layer = str(config.get("layer", "input"))
    key = config_basis_key(config)
    return key if layer == "input" else f"{key} at {layer}"


def config_label(config: Mapping, with_lam: bool) -> str:
    """config_where, with ', λ 0.2' after it when `with_lam`."""
    where = config_where(config)
    return f"{where}, λ {float(config.get('lam', 0.5)):g}" if with_lam else where


def comparable(config: Mapping, other: Mapping) -> bool:
    """Whether two experiments' configs share the model, its weights, the data and the image size."""
    return all(config.get(name) == other.get(name) for name in MATCH)


def where_groups(current: Mapping, candidates: Iterable[tuple[str, Mapping]]) -> dict[str, str]:
    """label -> experiment path among (path, config) candidates comparable with `current`, one per label (the
    first found), or {} when fewer than two labels are found. Labels are config_label's, naming λ when the
    comparable experiments do not share one."""
    matched = [(path, config) for path, config in candidates if comparable(current, config)]
    with_lam = len({float(config.get("lam", 0.5)) for _, config in matched}) > 1
    groups: dict[str, str] = {}
    for path, config in matched:
        groups.setdefault(config_label(config, with_lam), path)
    return groups if len(groups) > 1 else {}


def _cell(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def per_basis_rows(summaries: Mapping[str, Mapping[str, Mapping]]) -> list[dict]:
    """One row per attack key; per label the columns 'N', 'SVCCA', 'cosine', 're-paired cosine' (the baseline the
    true pairs must beat) and 'IdCor (p)' of its stored correlation summary (experiments'
    correlations/<key>.json), '–' where that experiment lacks the attack or the value."""
    keys: Sequence[str] = sorted({k for by_key in summaries.values() for k in by_key}, key=attack_order)
    rows = []
    for key in keys:
        row: dict = {"attack": attack_label(key)}
        for where, by_key in summaries.items():
            summary = by_key.get(key) or {}
            p = summary.get("p_value")
            row[f"{where} · N"] = summary.get("n", "–")
            row[f"{where} · SVCCA"] = _cell(summary.get("svcca"))
            row[f"{where} · cosine"] = _cell(summary.get("cosine_mean"))
            row[f"{where} · re-paired cosine"] = _cell(summary.get("repaired_cosine_mean"))
            row[f"{where} · IdCor (p)"] = (f"{summary['idcor']:.2f} ({_cell(p, 3)})"
                                           if summary.get("idcor") is not None else "–")
        rows.append(row)
    return rows


__all__ = ["MATCH", "comparable", "config_basis_key", "config_label", "config_where", "per_basis_rows", "where_groups"]
