"""Stage `correlate-<key>`: SVCCA, cosine and IdCor between essential and adversarial maps (METHOD §4)."""

from __future__ import annotations

import numpy as np

from core.metrics.correlate import correlate
from experiments.compact_maps import load_maps
from experiments.format import (
    ESSENTIAL,
    STATUS_KEPT,
    adversarial_set,
    correlation_dir,
    correlation_json,
    correlation_stage,
    map_dir,
    npy_path,
    pooled_name,
)
from experiments.store import ExperimentStore
from precompute.stages.base import Outcome, run_rank0_stage
from precompute.stages.context import StageContext


def paired_maps(store: ExperimentStore, map_set_a: str, map_set_b: str, pool: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (P,) of images with both maps kept, and their maps (P, C, h, w) float32: pooled copies for large
    maps, the full-size ones (maps.npy or a compact copy, experiments/compact_maps.py) otherwise."""
    status_a = np.asarray(store.load_array(npy_path(map_dir(map_set_a), "status")))
    status_b = np.asarray(store.load_array(npy_path(map_dir(map_set_b), "status")))
    positions = np.flatnonzero((status_a == STATUS_KEPT) & (status_b == STATUS_KEPT))
    out = []
    for map_set in (map_set_a, map_set_b):
        row = np.asarray(store.load_array(npy_path(map_dir(map_set), "row")))[positions]
        pooled = npy_path(map_dir(map_set), pooled_name(pool))
        source = store.load_array(pooled) if store.has_array(pooled) else load_maps(store, map_set)  # or compact maps
        out.append(np.asarray(source[row]).astype(np.float32))  # (P, C, h, w)
    return positions, out[0], out[1]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run_correlation_stage(ctx: StageContext, attack_key: str) -> None:
    """Write `correlations/<key>.json` and `correlations/<key>/{positions, cosine, null_ids}.npy`."""

    def build() -> Outcome:
        positions, cosine, null_ids, summary = correlate_pairs(ctx, attack_key)
        ctx.store.write_arrays(
            correlation_dir(attack_key), {"positions": positions.astype(np.int64), "cosine": cosine, "null_ids": null_ids}
        )
        ctx.store.write_json(correlation_json(attack_key), summary)
        recorded = {k: summary.get(k) for k in ("n", "svcca", "cosine_mean", "cosine_std", "idcor", "p_value")}
        return Outcome(recorded, _note(summary))

    run_rank0_stage(ctx, correlation_stage(attack_key), build)


def correlate_pairs(ctx: StageContext, attack_key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """The pairs' positions (P,), per-pair cosines (P,), the IdCor null distribution and the summary JSON.

    Fewer than 3 pairs: empty cosines and null, and the summary says why.
    """
    cfg = ctx.config
    positions, essential, adversarial = paired_maps(ctx.store, ESSENTIAL, adversarial_set(attack_key), cfg.pool)
    cosine, null_ids = np.zeros(0, np.float32), np.zeros(0, np.float32)
    if len(positions) < 3:
        summary = {"n": int(len(positions)), "error": f"only {len(positions)} images have both maps; need at least 3"}
    else:
        # degenerate maps (e.g. all identical): the metrics that fail are None with their reason
        # under "errors"; the per-pair cosines are kept whatever happens
        result = correlate(
            essential, adversarial, permutations=cfg.permutations, pool=cfg.pool,
            seed=ctx.stage_seed("correlate", attack_key), repairings=cfg.repairings, strict=False,
        )
        cosine = np.asarray(result.pop("cosine_values"), np.float32)
        null_ids = np.asarray(result.pop("null_ids"), np.float32)
        summary = {k: v for k, v in result.items() if not isinstance(v, list)}
        if ctx.store.has_array(npy_path(map_dir(ESSENTIAL), pooled_name(cfg.pool))):  # large maps: pooled when stored
            summary["pool"], summary["pool_size"] = cfg.pool, essential.shape[-1]
        if "errors" in summary:
            summary["error"] = "; ".join(f"{k}: {v}" for k, v in summary["errors"].items())
    summary["attack_key"] = attack_key
    return positions, cosine, null_ids, summary


def _note(summary: dict) -> str:
    if "cosine_mean" not in summary:
        return f"skipped, {summary['error']}"
    return (
        f"N={summary['n']} SVCCA {_fmt(summary['svcca'])}  cosine {_fmt(summary['cosine_mean'])} ± "
        f"{_fmt(summary['cosine_std'])}  IdCor {_fmt(summary['idcor'])} (p={_fmt(summary['p_value'])})"
        + (f"; not computable: {summary['error']}" if "error" in summary else "")
    )
