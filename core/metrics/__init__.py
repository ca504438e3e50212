"""Correlation metrics between paired map sets (METHOD §4): cosine, SVCCA, IdCor (TwoNN), linear CKA.

`METRICS` names every metric the caches hold once; the CLI, the app and the tests iterate it. `correlate`
computes all of them for one pair of map sets and returns a JSON-friendly dict; on request it adds linear
CKA, bootstrap intervals (bootstrap.py), within-class nulls (within_class.py), IdCor's power curve
(power.py) and the half-spectrum selection of Fourier maps (half_spectrum.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.metrics.bootstrap import Interval, cosine_mean_interval, idcor_interval, svcca_interval
from core.metrics.cka import linear_cka, repaired_cka
from core.metrics.correlate import correlate
from core.metrics.cosine import cosine_similarities, cosine_summary
from core.metrics.half_spectrum import hermitian_representatives, nonredundant_coefficients
from core.metrics.idcor import IdCorResult, idcor, idcor_preprocess
from core.metrics.pooling import POOL_MODES, flatten_rows, pool_maps
from core.metrics.power import idcor_power_curve
from core.metrics.repairing import random_derangement, repaired_cosine, repaired_svcca
from core.metrics.svcca import SvccaDetails, svcca, svcca_details
from core.metrics.twonn import squared_distances, twonn_id, twonn_id_from_sq_distances
from core.metrics.within_class import (
    p_value_within_class,
    within_class_derangement,
    within_class_permutation,
    within_class_repaired_cosine,
    within_class_repaired_svcca,
)


@dataclass(frozen=True)
class MetricSpec:
    """What the CLI and the app need to know to show a metric."""

    name: str
    description: str  # one line, shown in tables and drop-downs
    result_key: str  # key of the metric's value in `correlate(...)`'s dict


METRICS: dict[str, MetricSpec] = {
    "cosine": MetricSpec("cosine", "mean ± population std of per-pair cosine similarity", "cosine_mean"),
    "svcca": MetricSpec("svcca", "SVCCA, 1 - anatome svcca_distance(accept_rate=0.99, backend='svd')", "svcca"),
    "idcor": MetricSpec("idcor", "IdCor from TwoNN intrinsic dimensions, with a permutation p-value", "idcor"),
}

__all__ = [
    "METRICS",
    "MetricSpec",
    "POOL_MODES",
    "IdCorResult",
    "Interval",
    "SvccaDetails",
    "correlate",
    "cosine_mean_interval",
    "cosine_similarities",
    "cosine_summary",
    "flatten_rows",
    "hermitian_representatives",
    "idcor",
    "idcor_interval",
    "idcor_power_curve",
    "idcor_preprocess",
    "linear_cka",
    "nonredundant_coefficients",
    "p_value_within_class",
    "pool_maps",
    "repaired_cka",
    "random_derangement",
    "repaired_cosine",
    "repaired_svcca",
    "squared_distances",
    "svcca",
    "svcca_details",
    "svcca_interval",
    "twonn_id",
    "twonn_id_from_sq_distances",
    "within_class_derangement",
    "within_class_permutation",
    "within_class_repaired_cosine",
    "within_class_repaired_svcca",
]
