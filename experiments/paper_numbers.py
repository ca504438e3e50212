"""The paper's published numbers (METHOD.md §7), in one place, shown beside this project's by the report and the app.

Keys follow the cache: attack keys of core/attack_keys.py ("fmn", "pgd-8", "deepfool"), models as in the model
registry. p = 0.01 in the paper is the floor of a 100-permutation test (1/101).
"""

from __future__ import annotations

from core.attack_keys import parse_attack_key

# Table I (CIFAR-10, ResNet-20), PGD at ε = 8/255: attack key -> numbers.
TABLE_I: dict[str, dict[str, float]] = {
    "fmn": {"svcca": 0.25, "cosine_mean": 0.49, "cosine_std": 0.27, "idcor": 0.66, "p_value": 0.01},
    "pgd-8": {"svcca": 0.30, "cosine_mean": 0.49, "cosine_std": 0.28, "idcor": 0.60, "p_value": 0.01},
    "deepfool": {"svcca": 0.25, "cosine_mean": 0.48, "cosine_std": 0.27, "idcor": 0.62, "p_value": 0.01},
}

# Table II (Imagenette, 224×224), PGD at ε = 8/255: model -> attack key -> numbers.
TABLE_II: dict[str, dict[str, dict[str, float]]] = {
    "resnet18": {
        "fmn": {"svcca": 0.23, "cosine_mean": 0.60, "cosine_std": 0.15, "idcor": 0.63, "p_value": 0.01},
        "pgd-8": {"svcca": 0.19, "cosine_mean": 0.60, "cosine_std": 0.16, "idcor": 0.62, "p_value": 0.01},
        "deepfool": {"svcca": 0.23, "cosine_mean": 0.59, "cosine_std": 0.15, "idcor": 0.62, "p_value": 0.01},
    },
    "vit_b_16": {
        "fmn": {"svcca": 0.21, "cosine_mean": 0.56, "cosine_std": 0.18, "idcor": 0.59, "p_value": 0.01},
        "pgd-8": {"svcca": 0.23, "cosine_mean": 0.53, "cosine_std": 0.20, "idcor": 0.58, "p_value": 0.01},
        "deepfool": {"svcca": 0.22, "cosine_mean": 0.53, "cosine_std": 0.19, "idcor": 0.56, "p_value": 0.01},
    },
}

# Table III (PGD on ResNet-20, CIFAR-10): ε in 1/255 units -> attack success rate (share), IdCor, p.
# Keyed by ε, the one number the sweep plots; `table_iii_row` looks a row up by attack key.
TABLE_III: dict[float, dict[str, float]] = {
    1.0: {"success_rate": 0.6856, "idcor": 0.59, "p_value": 0.02},
    3.0: {"success_rate": 0.9978, "idcor": 0.53, "p_value": 0.04},
    8.0: {"success_rate": 1.0, "idcor": 0.60, "p_value": 0.01},
}

# Table IV (CIFAR-10 defence, accuracy): rows = test data ("clean" or an attack key), columns = the class-level
# maps trained against an attack ("none" = no map).
TABLE_IV_ROWS = ["clean", "fmn", "pgd-8", "deepfool"]
TABLE_IV_COLUMNS = ["none", "fmn", "pgd-8", "deepfool"]
TABLE_IV: dict[str, dict[str, float]] = {
    "clean": {"none": 0.92, "fmn": 0.83, "pgd-8": 0.74, "deepfool": 0.82},
    "fmn": {"none": 0.04, "fmn": 0.78, "pgd-8": 0.72, "deepfool": 0.78},
    "pgd-8": {"none": 0.00, "fmn": 0.43, "pgd-8": 0.54, "deepfool": 0.44},
    "deepfool": {"none": 0.00, "fmn": 0.77, "pgd-8": 0.71, "deepfool": 0.78},
}


def table_iii_row(attack_key: str) -> dict[str, float] | None:
    """Table III's row of a plain PGD key ('pgd-3' -> success rate, IdCor, p), or None: another attack, a
    variant such as 'pgd-8+bpda' (the paper ran none), an ε the paper did not run, or a key that does not parse."""
    try:
        parsed = parse_attack_key(attack_key)
    except ValueError:
        return None
    if parsed.name != "pgd" or parsed.variant or parsed.eps_255 is None:
        return None
    return TABLE_III.get(parsed.eps_255)


def paper_row(model: str, image_size: int, attack_key: str) -> dict[str, float] | None:
    """The paper's Table I (CIFAR-10) or II (Imagenette) numbers for one attack, or None if it has none.

    PGD at ε other than 8/255 appears only in Table III (IdCor and p, no SVCCA or cosine).
    """
    if image_size <= 32 and model == "resnet20":
        if attack_key in TABLE_I:
            return TABLE_I[attack_key]
        row = table_iii_row(attack_key)
        return None if row is None else {k: v for k, v in row.items() if k != "success_rate"}
    return TABLE_II.get(model, {}).get(attack_key)


__all__ = ["TABLE_I", "TABLE_II", "TABLE_III", "TABLE_IV", "TABLE_IV_COLUMNS", "TABLE_IV_ROWS", "paper_row",
           "table_iii_row"]
