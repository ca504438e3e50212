"""All correlation metrics of METHOD §4 for one pair of map sets, as a JSON-friendly dict.

`correlate(essential, adversarial)` takes paired rows (row i of both sets = the same image) as
(N, D) or (N, C, H, W) numpy arrays or tensors, pools maps larger than 32×32 to 32×32, flattens
them, and returns cosine mean ± std, SVCCA, IdCor with its permutation p-value, and optionally
the re-paired baseline, linear CKA, bootstrap intervals, within-class nulls and IdCor's power
curve. The two sets may differ in width (cosine then is None). Computation runs in float64 on the
input tensors' device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from core.metrics.bootstrap import cosine_mean_interval, idcor_interval, subsample_size, svcca_interval
from core.metrics.cka import linear_cka, repaired_cka
from core.metrics.cosine import cosine_similarities, cosine_summary
from core.metrics.half_spectrum import nonredundant_coefficients
from core.metrics.idcor import IdCorResult, idcor, idcor_preprocess, null_idcor
from core.metrics.pooling import POOL_MODES, flatten_rows, pool_maps
from core.metrics.power import idcor_power_curve
from core.metrics.repairing import repaired_cosine, repaired_svcca
from core.metrics.svcca import svcca_details
from core.metrics.within_class import (
    check_labels,
    p_value_within_class,
    within_class_repaired_cosine,
    within_class_repaired_svcca,
)

MIN_ROWS = 3  # TwoNN needs two neighbours per point


T = TypeVar("T")


def _as_tensor(x: object, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise ValueError(f"expected {name} to hold real numbers, got dtype {x.dtype}")
        return torch.from_numpy(x.astype(np.float64))  # a native-order float64 copy
    if isinstance(x, Tensor):
        if x.is_complex():
            raise ValueError(f"expected {name} to hold real numbers, got dtype {x.dtype}")
        return x.double()
    raise ValueError(f"expected {name} to be a numpy array or torch tensor, got {type(x).__name__}")


def _check_inputs(a: Tensor, b: Tensor) -> None:
    for name, x in (("a", a), ("b", b)):
        if x.ndim not in (2, 4):
            raise ValueError(f"expected {name} of shape (N, D) or (N, C, H, W), got shape {tuple(x.shape)}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"expected the same number of paired rows, got {a.shape[0]} (a) and {b.shape[0]} (b)")
    if a.shape[0] < MIN_ROWS:
        raise ValueError(f"expected at least {MIN_ROWS} paired rows, got {a.shape[0]}")
    for name, x in (("a", a), ("b", b)):
        if x[0].numel() == 0:
            raise ValueError(f"expected at least one feature per row, got shape {tuple(x.shape)} ({name})")
    for name, x in (("a", a), ("b", b)):
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"expected finite values in {name}, got {bad} NaN/inf entries")


def _json_float(value: float) -> float | None:
    """NaN/inf are not JSON: they become None (null)."""
    return float(value) if math.isfinite(value) else None


def _prepared_rows(x: Tensor, pool: str, pool_size: int, half_spectrum: bool) -> tuple[Tensor, bool]:
    """(N, D) or (N, C, H, W) -> ((N, D'), pooled?): pooled to pool_size when larger, half spectrum, flattened."""
    pooled = x.ndim == 4 and max(x.shape[-2:]) > pool_size
    if pooled:
        x = pool_maps(x, pool_size, pool)  # (N, C, pool_size, pool_size)
    if half_spectrum:
        return nonredundant_coefficients(x), pooled  # (N, C·K)
    return x, pooled


def correlate(
    a: np.ndarray | Tensor,
    b: np.ndarray | Tensor,
    permutations: int = 100,
    pool: str = "avg",
    pool_size: int = 32,
    seed: int = 0,
    repairings: int = 0,
    strict: bool = True,
    *,
    bootstrap: int = 0,
    labels: np.ndarray | Tensor | None = None,
    half_spectrum: bool = False,
    cka: bool = False,
    power: bool = False,
) -> dict:
    """Cosine, SVCCA and IdCor between paired map sets a and b ((N, D1) or (N, C, H, W), same N).

    pool: "avg" | "max", applied only to (N, C, H, W) maps larger than pool_size×pool_size; the
    result's "pool" says what was applied ("none" when nothing was). repairings > 0 adds the
    re-paired baseline (cosine and SVCCA of a[i] vs b[j], j != i). NaN results are None.
    strict=False: a metric that cannot be computed on these data (duplicate rows for TwoNN, say)
    becomes None with its reason under "errors" instead of raising, so the cosines of a degenerate
    set are still returned (the precompute stage keeps them; the CLI stays strict).

    The widths may differ: SVCCA, CKA and IdCor compare any two paired sets; cosine needs the same shape
    (after pooling), else its keys are None, "cosine_values" is empty and "cosine_note" says why; "dim" is
    then None and "dim_a", "dim_b" give the widths.
    Off unless asked for, so that the default result (and the caches holding it) stays as it was:
    bootstrap = B > 0: "cosine_mean_ci", "svcca_ci", "idcor_ci" as [low, high], 95 % (core.metrics.bootstrap:
    percentile bootstrap for the mean cosine, half-sampling for SVCCA and IdCor), with "bootstrap" and
    "bootstrap_subsample" (m). labels (N,) integers: "p_value_within_class" (permutations > 0) and, with
    repairings > 0, "within_class_repaired_{cosine,svcca}_{mean,std}" (core.metrics.within_class).
    half_spectrum: keep each Hermitian pair of frequencies once (core.metrics.half_spectrum; needs
    fftshift-ed (N, C, H, W) maps). cka: "cka" (linear CKA), and "repaired_cka_{mean,std}" with repairings > 0.
    power: "power", IdCor's power curve against the number of pairs (core.metrics.power).
    """
    if pool not in POOL_MODES:
        raise ValueError(f"expected pool in {list(POOL_MODES)}, got {pool!r}")
    if pool_size < 1:
        raise ValueError(f"expected pool_size >= 1, got {pool_size}")
    if permutations < 0 or repairings < 0:
        raise ValueError(f"expected permutations >= 0 and repairings >= 0, got {permutations} and {repairings}")
    if bootstrap < 0:
        raise ValueError(f"expected bootstrap >= 0 resamples, got {bootstrap}")
    a, b = _as_tensor(a, "a"), _as_tensor(b, "b")
    _check_inputs(a, b)
    if half_spectrum and (a.ndim != 4 or b.ndim != 4):
        raise ValueError(f"expected (N, C, H, W) maps for half_spectrum, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    classes = check_labels(labels, a.shape[0]) if labels is not None else None
    if bootstrap:
        subsample_size(a.shape[0])  # too few pairs to subsample: say so before computing anything
    b = b.to(a.device)
    (a, pooled_a), (b, pooled_b) = (_prepared_rows(x, pool, pool_size, half_spectrum) for x in (a, b))
    shapes = (tuple(a.shape), tuple(b.shape))
    same_shape = shapes[0] == shapes[1]
    a, b = flatten_rows(a), flatten_rows(b)  # (N, D1), (N, D2)

    errors: dict[str, str] = {}
    cosines = cosine_similarities(a, b) if same_shape else None  # (N,)
    cosine_mean, cosine_std = cosine_summary(cosines) if same_shape else (None, None)
    sv = _attempt(lambda: svcca_details(a, b), "svcca", errors, strict)
    ic = _attempt(lambda: _idcor_explained(a, b, permutations, seed), "idcor", errors, strict)
    pooled = pooled_a or pooled_b
    result = {
        "n": int(a.shape[0]),
        "dim": int(a.shape[1]) if a.shape[1] == b.shape[1] else None,
        "cosine_mean": cosine_mean,
        "cosine_std": cosine_std,
        "cosine_values": cosines.tolist() if same_shape else [],
        "svcca": _json_float(sv.svcca) if sv else None,
        "svcca_k_a": sv.k1 if sv else None,
        "svcca_k_b": sv.k2 if sv else None,
        "idcor": _json_float(ic.idcor) if ic else None,
        "p_value": ic.p_value if ic else None,
        "id_a": ic.id_x if ic else None,
        "id_b": ic.id_y if ic else None,
        "id_joint": ic.id_joint if ic else None,
        "null_ids": ic.shuffled_ids.tolist() if ic else [],
        "permutations": permutations,
        "seed": seed,
        "pool": pool if pooled else "none",
        "pool_size": pool_size if pooled else None,
    }
    if result["dim"] is None:
        result.update(dim_a=int(a.shape[1]), dim_b=int(b.shape[1]))
    if not same_shape:
        result["cosine_note"] = f"cosine needs maps of the same shape, got {shapes[0]} (a) and {shapes[1]} (b)"
    if half_spectrum:
        result["half_spectrum"] = True
    if repairings > 0:
        rc = repaired_cosine(a, b, repairings=repairings, seed=seed) if same_shape else None
        rs = _attempt(lambda: repaired_svcca(a, b, repairings=repairings, seed=seed), "repaired_svcca", errors, strict)
        result.update(
            repairings=repairings,
            repaired_cosine_mean=rc["mean"] if rc else None,
            repaired_cosine_std=rc["std"] if rc else None,
            repaired_svcca_mean=_json_float(rs["mean"]) if rs else None,
            repaired_svcca_std=_json_float(rs["std"]) if rs else None,
        )
    if cka:
        result["cka"] = _json_float(linear_cka(a, b))
        if repairings > 0:
            rk = repaired_cka(a, b, repairings=repairings, seed=seed)
            result.update(repaired_cka_mean=_json_float(rk["mean"]), repaired_cka_std=_json_float(rk["std"]))
    if classes is not None:
        result.update(_within_class(a, b, classes, permutations, repairings, seed, same_shape, errors, strict))
    if bootstrap:
        result.update(_intervals(a, b, cosines, bootstrap, seed, errors, strict))
    if power:
        result["power"] = _attempt(lambda: idcor_power_curve(a, b, permutations=permutations, seed=seed),
                                   "power", errors, strict)
    if errors:
        result["errors"] = errors
    return result


def _within_class(
    a: Tensor, b: Tensor, classes: Tensor, permutations: int, repairings: int, seed: int, same_shape: bool,
    errors: dict[str, str], strict: bool,
) -> dict:
    """The within-class keys of `correlate` (p-value with permutations > 0, baselines with repairings > 0)."""
    out: dict = {}
    if permutations > 0:
        test = _attempt(lambda: p_value_within_class(a, b, classes, permutations, seed), "p_value_within_class",
                        errors, strict)
        out["p_value_within_class"] = test["p_value"] if test else None
    if repairings > 0:
        rc = within_class_repaired_cosine(a, b, classes, repairings, seed) if same_shape else None
        rs = _attempt(lambda: within_class_repaired_svcca(a, b, classes, repairings, seed),
                      "within_class_repaired_svcca", errors, strict)
        out.update(
            within_class_repaired_cosine_mean=rc["mean"] if rc else None,
            within_class_repaired_cosine_std=rc["std"] if rc else None,
            within_class_repaired_svcca_mean=_json_float(rs["mean"]) if rs else None,
            within_class_repaired_svcca_std=_json_float(rs["std"]) if rs else None,
        )
    return out


def _intervals(
    a: Tensor, b: Tensor, cosines: Tensor | None, resamples: int, seed: int, errors: dict[str, str], strict: bool
) -> dict:
    """The bootstrap keys of `correlate`: [low, high] per metric (None where the metric is None)."""
    cosine = cosine_mean_interval(cosines, resamples, seed) if cosines is not None else None
    sv = _attempt(lambda: svcca_interval(a, b, resamples, seed), "svcca_ci", errors, strict)
    ic = _attempt(lambda: idcor_interval(a, b, resamples, seed), "idcor_ci", errors, strict)
    return {
        "bootstrap": resamples,
        "bootstrap_subsample": subsample_size(a.shape[0]),
        "cosine_mean_ci": cosine.as_list() if cosine else None,
        "svcca_ci": sv.as_list() if sv else None,
        "idcor_ci": ic.as_list() if ic else None,
    }


def null_idcor_median(summary: dict) -> float | None:
    """Median IdCor of the permutation test's shuffled pairings in a `correlate` summary (None without one).

    IdCor's baseline, as the re-paired columns are cosine's and SVCCA's: what unrelated pairs of these maps reach.
    Computed from the stored IDs, so caches written before this existed get it too.
    """
    ids = [summary.get(key) for key in ("id_a", "id_b")]
    null = summary.get("null_ids")
    if any(v is None for v in ids) or null is None or len(null) == 0:
        return None
    return float(np.median(null_idcor(ids[0], ids[1], np.asarray(null))))


def _idcor_explained(a: Tensor, b: Tensor, permutations: int, seed: int) -> IdCorResult:
    """`idcor`, with TwoNN's "no usable nearest neighbours" failure said in terms of the input:
    which set, and whether its rows are duplicates (constant or repeated maps) or tied."""
    try:
        return idcor(a, b, permutations=permutations, seed=seed)
    except ValueError as err:
        if "nearest neighbour" not in str(err):
            raise
        raise ValueError(_degenerate_rows(a, b)) from None


def _degenerate_rows(a: Tensor, b: Tensor) -> str:
    """Why TwoNN found fewer than 2 points with a distinct, untied nearest neighbour, per set."""
    n = a.shape[0]
    reasons = []
    for name, x in (("a", a), ("b", b)):
        rows = idcor_preprocess(x)  # what IdCor measures distances on (standardised features)
        _, counts = torch.unique(rows, dim=0, return_counts=True)
        duplicated = int(counts[counts > 1].sum())
        if len(counts) == 1:
            reasons.append(f"all {n} rows of {name} identical (constant or repeated maps)")
        elif duplicated >= n - 1:
            reasons.append(f"{duplicated} of {n} rows of {name} duplicated ({len(counts)} distinct)")
    detail = "; ".join(reasons) or "nearest-neighbour distances are tied or zero everywhere (e.g. duplicated pairs)"
    return (
        "expected rows with distinct nearest neighbours for IdCor (TwoNN needs 2 or more rows whose nearest-neighbour "
        f"distance is > 0 and untied), got {detail}"
    )


def _attempt(compute: Callable[[], T], name: str, errors: dict[str, str], strict: bool) -> T | None:
    """compute(); a ValueError re-raised when strict, else recorded under errors[name] (result None)."""
    try:
        return compute()
    except ValueError as err:
        if strict:
            raise
        errors[name] = str(err)
        return None
