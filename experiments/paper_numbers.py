"""The paper's published numbers (METHOD.md §7), for side-by-side comparison in reports and the app."""

from __future__ import annotations

# Table I (CIFAR-10, ResNet-20): attack key -> SVCCA, cosine mean, cosine std, IdCor, p-value
TABLE_I = {
    "fmn": {"svcca": 0.25, "cosine_mean": 0.49, "cosine_std": 0.27, "idcor": 0.66, "p_value": 0.01},
    "pgd-8": {"svcca": 0.30, "cosine_mean": 0.49, "cosine_std": 0.28, "idcor": 0.60, "p_value": 0.01},
    "deepfool": {"svcca": 0.25, "cosine_mean": 0.48, "cosine_std": 0.27, "idcor": 0.62, "p_value": 0.01},
}

# Table II (Imagenette): (attack key, model) -> numbers; p = 0.01 everywhere
TABLE_II = {
    ("fmn", "resnet18"): {"svcca": 0.23, "cosine_mean": 0.60, "cosine_std": 0.15, "idcor": 0.63, "p_value": 0.01},
    ("fmn", "vit_b_16"): {"svcca": 0.21, "cosine_mean": 0.56, "cosine_std": 0.18, "idcor": 0.59, "p_value": 0.01},
    ("pgd-8", "resnet18"): {"svcca": 0.19, "cosine_mean": 0.60, "cosine_std": 0.16, "idcor": 0.62, "p_value": 0.01},
    ("pgd-8", "vit_b_16"): {"svcca": 0.23, "cosine_mean": 0.53, "cosine_std": 0.20, "idcor": 0.58, "p_value": 0.01},
    ("deepfool", "resnet18"): {"svcca": 0.23, "cosine_mean": 0.59, "cosine_std": 0.15, "idcor": 0.62, "p_value": 0.01},
    ("deepfool", "vit_b_16"): {"svcca": 0.22, "cosine_mean": 0.53, "cosine_std": 0.19, "idcor": 0.56, "p_value": 0.01},
}

# Table III (PGD on ResNet-20): attack key -> success rate, IdCor, p-value
TABLE_III = {
    "pgd-1": {"success_rate": 0.6856, "idcor": 0.59, "p_value": 0.02},
    "pgd-3": {"success_rate": 0.9978, "idcor": 0.53, "p_value": 0.04},
    "pgd-8": {"success_rate": 1.0, "idcor": 0.60, "p_value": 0.01},
}

# Table IV (accuracy): test data row -> map column ("none" = no map)
TABLE_IV = {
    "clean": {"none": 0.92, "fmn": 0.83, "pgd-8": 0.74, "deepfool": 0.82},
    "fmn": {"none": 0.04, "fmn": 0.78, "pgd-8": 0.72, "deepfool": 0.78},
    "pgd-8": {"none": 0.00, "fmn": 0.43, "pgd-8": 0.54, "deepfool": 0.44},
    "deepfool": {"none": 0.00, "fmn": 0.77, "pgd-8": 0.71, "deepfool": 0.78},
}

ATTACK_LABELS = {"fmn": "FMN", "deepfool": "DeepFool"}


def attack_label(key: str) -> str:
    """Readable name of an attack key: 'pgd-8' -> 'PGD ε=8/255'."""
    if key.startswith("pgd-"):
        return f"PGD ε={key.removeprefix('pgd-')}/255"
    return ATTACK_LABELS.get(key, key)
