"""Stage `statistics-<key>`: how precise and how specific one attack's Table I row is.

On the pairs of the correlation stage (the same positions, maps, seed, permutations and re-pairings, so its
cosine, SVCCA, IdCor and p equal Table I's), core.metrics adds:
- 95 % intervals of the mean cosine, SVCCA and IdCor from `bootstrap` resamples (core/metrics/bootstrap.py);
- IdCor's within-class p-value and the within-class re-paired cosine and SVCCA: shuffles that keep every image
  in its true class, so what the pairing beats them by belongs to the image, not its class (within_class.py);
- linear CKA and its re-paired baseline (cka.py);
- all of the above on the non-redundant coefficients of the experiment's basis (`Basis.nonredundant`: for the
  Fourier amplitude and phase the half spectrum, each Hermitian pair {k, −k} once; the orthonormal DCT and
  wavelet bases repeat no coefficient, so there the "half_spectrum" block is the full one), and how much each
  number moves there;
- IdCor's power curve: IdCor and p on `power_repeats` random subsets of `power_sizes` sizes from 50 pairs to
  all, and the pairs a p < 0.05 would need (power.py).

A separate stage from `correlate-<key>`, so that existing caches gain it without recomputing anything; it also
runs on a results-only copy with compact maps (experiments/compact_maps.py; float16 values of the maps).
Writes `correlations/<key>/statistics.json` and `correlations/<key>/power_{sizes,idcor,p_values}.npy`.
A metric these pairs cannot give (too few pairs to subsample, a class with a single pair) is None with its
reason under "errors"; the rest is still computed.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from core.bases import Basis, get_basis
from core.metrics.bootstrap import subsample_size
from core.metrics.correlate import correlate, null_idcor_median
from core.metrics.pooling import flatten_rows, pool_maps
from core.metrics.power import default_sizes, idcor_power_curve
from core.metrics.within_class import check_labels
from experiments.format import (
    ESSENTIAL,
    TEST,
    adversarial_set,
    correlation_dir,
    statistics_json,
    statistics_stage,
)
from precompute.stages.base import Outcome, run_rank0_stage
from precompute.stages.context import StageContext
from precompute.stages.correlations import paired_maps

MIN_PAIRS = 3  # as the correlation stage: TwoNN needs two neighbours per point
POOL_SIZE = 32  # maps larger than this are pooled to it before any metric (correlate's default)
DELTA_KEYS = ("cosine_mean", "svcca", "cka", "idcor", "p_value", "p_value_within_class")  # half spectrum − full
DROPPED_KEYS = ("cosine_values", "null_ids")  # per-pair lists: the correlation stage stores the full spectrum's


def run_statistics_stage(ctx: StageContext, attack_key: str) -> None:
    """Write the statistics of attack `attack_key`'s pairs (module docstring)."""

    def build() -> Outcome:
        cfg = ctx.config
        positions, essential, adversarial = paired_maps(ctx.store, ESSENTIAL, adversarial_set(attack_key), cfg.pool)
        labels = ctx.array(TEST, "labels")[positions]  # (P,) true labels of the paired images
        summary, arrays = pair_statistics(
            essential, adversarial, labels, permutations=cfg.permutations, repairings=cfg.repairings, pool=cfg.pool,
            seed=ctx.stage_seed("correlate", attack_key), bootstrap=cfg.bootstrap, power_sizes=cfg.power_sizes,
            power_repeats=cfg.power_repeats, basis=cfg.map_basis(),
        )
        summary["attack_key"] = attack_key
        ctx.store.write_arrays(correlation_dir(attack_key), arrays)
        ctx.store.write_json(statistics_json(attack_key), summary)
        return Outcome(recorded_numbers(summary), note(summary))

    run_rank0_stage(ctx, statistics_stage(attack_key), build)


def pair_statistics(
    essential: np.ndarray,
    adversarial: np.ndarray,
    labels: np.ndarray,
    *,
    permutations: int,
    repairings: int,
    pool: str,
    seed: int,
    bootstrap: int,
    power_sizes: int,
    power_repeats: int,
    basis: Basis | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """The stage's summary and arrays for paired maps (P, C, H, W) in `basis`'s display order (None: Fourier) and
    their images' labels (P,).

    Summary: "n", "full" and "half_spectrum" (correlate's keys, the per-pair lists left out, plus
    "shuffled_idcor_median"; "half_spectrum" on the basis's non-redundant coefficients), "half_spectrum_delta"
    (half spectrum − full), "power" (the curve without its per-subset lists) and "errors". Arrays: power_sizes (S,),
    power_idcor and power_p_values (S, R).
    """
    basis = basis or get_basis()
    n = len(essential)
    errors: dict[str, str] = {}
    summary: dict = {"n": int(n), "bootstrap": bootstrap, "permutations": permutations, "repairings": repairings,
                     "seed": seed}
    arrays = {"power_sizes": np.zeros(0, np.int64), "power_idcor": np.zeros((0, power_repeats)),
              "power_p_values": np.zeros((0, power_repeats))}
    if n < MIN_PAIRS:
        summary["error"] = f"only {n} images have both maps; need at least {MIN_PAIRS}"
        return summary, arrays
    resamples = bootstrap if bootstrap and _usable(lambda: _check_resamples(n, bootstrap), "bootstrap", errors) else 0
    within = _usable(lambda: check_labels(labels, n), "within_class", errors) is not None
    options = dict(permutations=permutations, pool=pool, seed=seed, repairings=repairings, strict=False,
                   bootstrap=resamples, labels=labels if within else None, cka=True)
    for name, half in (("full", False), ("half_spectrum", True)):
        if half and basis.orthonormal:  # no coefficient repeats another: the non-redundant ones are all of them
            summary[name] = {**copy.deepcopy(summary["full"]), "half_spectrum": True}
            continue
        result = nonredundant_correlate(essential, adversarial, basis, options) if half else correlate(
            essential, adversarial, **options)
        result["shuffled_idcor_median"] = null_idcor_median(result)
        for key in DROPPED_KEYS:
            result.pop(key, None)
        errors.update({f"{name}: {key}": text for key, text in result.pop("errors", {}).items()})
        summary[name] = result
    summary["half_spectrum_delta"] = {
        key: summary["half_spectrum"][key] - summary["full"][key] for key in DELTA_KEYS
        if summary["full"].get(key) is not None and summary["half_spectrum"].get(key) is not None
    }
    curve = _usable(lambda: power_curve(essential, adversarial, pool, permutations, seed, power_sizes, power_repeats),
                    "power", errors)
    if curve is not None:
        arrays = {"power_sizes": np.asarray(curve["sizes"], np.int64),
                  "power_idcor": np.asarray(curve["idcor"], np.float64),
                  "power_p_values": np.asarray(curve["p_values"], np.float64)}
        summary["power"] = {k: v for k, v in curve.items() if k not in ("idcor", "p_values")}
        summary["power"]["median_idcor"] = [float(np.median(v)) for v in curve["idcor"]]
    if errors:
        summary["errors"] = errors
    return summary, arrays


def nonredundant_rows(maps: np.ndarray, basis: Basis, pool: str, pool_size: int = POOL_SIZE) -> torch.Tensor:
    """(P, C, H, W) maps in display order -> (P, C·K) float64: pooled to pool_size when larger (as `correlate`
    pools), then the K coefficients per channel that `basis.nonredundant` counts once on that grid."""
    x = torch.from_numpy(np.asarray(maps).astype(np.float64))  # (P, C, H, W), as correlate reads numpy
    if max(x.shape[-2:]) > pool_size:
        x = pool_maps(x, pool_size, pool)  # (P, C, pool_size, pool_size)
    keep = basis.nonredundant(*x.shape[-2:]).to(x.device)  # (H, W) bool
    return x[:, :, keep].reshape(x.shape[0], -1)


def nonredundant_correlate(essential: np.ndarray, adversarial: np.ndarray, basis: Basis, options: dict) -> dict:
    """`correlate` on the non-redundant coefficients of both map sets, reported as correlate(half_spectrum=True)
    reports them: which pooling was applied, and "half_spectrum": True."""
    pooled = max(essential.shape[-2:]) > POOL_SIZE or max(adversarial.shape[-2:]) > POOL_SIZE
    result = correlate(nonredundant_rows(essential, basis, options["pool"]),
                       nonredundant_rows(adversarial, basis, options["pool"]), **options)
    result.update(pool=options["pool"] if pooled else "none", pool_size=POOL_SIZE if pooled else None,
                  half_spectrum=True)
    return result


def power_curve(essential: np.ndarray, adversarial: np.ndarray, pool: str, permutations: int, seed: int,
                sizes: int, repeats: int) -> dict:
    """IdCor's power curve on the rows `correlate` measures (maps over 32×32 pooled to 32×32, flattened)."""
    rows = []
    for maps in (essential, adversarial):
        x = torch.from_numpy(np.asarray(maps, np.float64))  # (P, C, H, W)
        if max(x.shape[-2:]) > 32:
            x = pool_maps(x, 32, pool)  # (P, C, 32, 32)
        rows.append(flatten_rows(x))  # (P, D)
    return idcor_power_curve(rows[0], rows[1], sizes=default_sizes(len(essential), sizes), repeats=repeats,
                             permutations=permutations, seed=seed)


def _check_resamples(n: int, bootstrap: int) -> int:
    """The half-sample size m of n pairs, or a ValueError when B or n cannot give an interval."""
    if bootstrap < 2:
        raise ValueError(f"expected at least 2 bootstrap resamples, got {bootstrap}")
    return subsample_size(n)


def _usable(compute, name: str, errors: dict[str, str]):  # noqa: ANN001, ANN202 (a guard around one value)
    """compute(), or None with the ValueError's message under errors[name]."""
    try:
        return compute()
    except ValueError as err:
        errors[name] = str(err)
        return None


def recorded_numbers(summary: dict) -> dict:
    """What the manifest records of the stage: N, the intervals, the within-class p, CKA, pairs needed."""
    full = summary.get("full", {})
    keys = ("cosine_mean_ci", "svcca_ci", "idcor_ci", "p_value_within_class", "cka")
    return {"n": summary["n"], **{k: full.get(k) for k in keys},
            "pairs_needed": (summary.get("power") or {}).get("pairs_needed")}


def note(summary: dict) -> str:
    """The log line of the stage."""
    if "full" not in summary:
        return f"skipped, {summary['error']}"
    full, power = summary["full"], summary.get("power") or {}

    def interval(key: str) -> str:
        bounds = full.get(key)
        return "n/a" if not bounds or None in bounds else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"

    within = full.get("p_value_within_class")
    return (f"N={summary['n']} IdCor 95% {interval('idcor_ci')}, within-class p "
            f"{'n/a' if within is None else f'{within:.3f}'}, CKA {_fmt(full.get('cka'))}, pairs needed "
            f"{power.get('pairs_needed') or 'n/a'}" + (f"; not computable: {len(summary['errors'])} metric(s)"
                                                       if summary.get("errors") else ""))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
