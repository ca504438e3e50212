"""Correlation metrics between paired map sets (METHOD §4): cosine, SVCCA, IdCor (TwoNN).

`METRICS` names every metric once; the CLI, the app and the tests iterate it. `correlate`
computes all of them for one pair of map sets and returns a JSON-friendly dict.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.metrics.correlate import correlate
from core.metrics.cosine import cosine_similarities, cosine_summary
from core.metrics.idcor import IdCorResult, idcor, idcor_preprocess
from core.metrics.pooling import POOL_MODES, flatten_rows, pool_maps
from core.metrics.repairing import random_derangement, repaired_cosine, repaired_svcca
from core.metrics.svcca import SvccaDetails, svcca, svcca_details
from core.metrics.twonn import squared_distances, twonn_id, twonn_id_from_sq_distances


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
    "SvccaDetails",
    "correlate",
    "cosine_similarities",
    "cosine_summary",
    "flatten_rows",
    "idcor",
    "idcor_preprocess",
    "pool_maps",
    "random_derangement",
    "repaired_cosine",
    "repaired_svcca",
    "squared_distances",
    "svcca",
    "svcca_details",
    "twonn_id",
    "twonn_id_from_sq_distances",
]
