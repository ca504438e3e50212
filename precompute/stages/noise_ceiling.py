"""Stages `maps-essential-repeat` and `noise-ceiling`: how alike two trainings of the same essential maps are.

A map is the sparse optimum of an L1-penalised objective, and a different floating-point operation order can
land a map on another optimum. The repeat trains the essential maps once more through the same trainer as the
maps stage (precompute/stages/maps.py), with `fold_batchnorm` flipped: BatchNorm unfolded when the experiment
folds it (the published arithmetic), folded when it does not. The same function up to float rounding, so the
two sets differ only by the maps' instability. Their cosine, SVCCA, CKA and IdCor are the noise ceiling: the
highest essential–adversarial similarity one could expect from maps this unstable.

Optional (`--noise-ceiling`, off by default): it costs one more essential map set. Writes
`maps/essential-repeat/` (a map set like any other) and `noise-ceiling/{summary.json, positions, cosine,
null_ids}`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.metrics.correlate import correlate
from experiments.format import (
    ESSENTIAL,
    ESSENTIAL_REPEAT,
    NOISE_CEILING,
    NOISE_CEILING_JSON,
    STATUS_KEPT,
    map_dir,
)
from precompute.stages.base import Outcome, run_rank0_stage
from precompute.stages.context import StageContext
from precompute.stages.correlations import paired_maps
from precompute.stages.maps import run_map_stage

CEILING_KEYS = ("n", "cosine_mean", "cosine_std", "svcca", "cka", "idcor", "p_value")  # recorded in the manifest


def run_noise_ceiling_stages(ctx: StageContext) -> None:
    """Train the repeat map set with fold_batchnorm flipped, then correlate it with the essential maps."""
    repeat = replace(ctx, config=replace(ctx.config, fold_batchnorm=not ctx.config.fold_batchnorm))
    run_map_stage(repeat, ESSENTIAL_REPEAT, None)

    def build() -> Outcome:
        cfg = ctx.config
        positions, first, second = paired_maps(ctx.store, ESSENTIAL, ESSENTIAL_REPEAT, cfg.pool)
        status = [ctx.array(map_dir(name), "status") for name in (ESSENTIAL, ESSENTIAL_REPEAT)]
        summary = ceiling_summary(first, second, permutations=cfg.permutations, pool=cfg.pool,
                                  seed=ctx.stage_seed(NOISE_CEILING), repairings=cfg.repairings)
        cosine = np.asarray(summary.pop("cosine_values", []), np.float32)
        null_ids = np.asarray(summary.pop("null_ids", []), np.float32)
        summary.update(
            fold_batchnorm=cfg.fold_batchnorm, repeat_fold_batchnorm=not cfg.fold_batchnorm,
            kept_first_only=int(((status[0] == STATUS_KEPT) & (status[1] != STATUS_KEPT)).sum()),
            kept_repeat_only=int(((status[0] != STATUS_KEPT) & (status[1] == STATUS_KEPT)).sum()),
        )
        ctx.store.write_arrays(NOISE_CEILING, {"positions": positions.astype(np.int64), "cosine": cosine,
                                               "null_ids": null_ids})
        ctx.store.write_json(NOISE_CEILING_JSON, summary)
        return Outcome({k: summary.get(k) for k in CEILING_KEYS}, _note(summary))

    run_rank0_stage(ctx, NOISE_CEILING, build)


def ceiling_summary(first: np.ndarray, second: np.ndarray, *, permutations: int, pool: str, seed: int,
                    repairings: int) -> dict:
    """correlate's summary (with CKA) of two trainings (P, C, H, W) of the same maps; an "error" below 3 pairs."""
    if len(first) < 3:
        return {"n": int(len(first)), "error": f"only {len(first)} images have both essential maps; need at least 3"}
    summary = correlate(first, second, permutations=permutations, pool=pool, seed=seed, repairings=repairings,
                        strict=False, cka=True)
    if "errors" in summary:
        summary["error"] = "; ".join(f"{k}: {v}" for k, v in summary["errors"].items())
    return summary


def _note(summary: dict) -> str:
    if "cosine_mean" not in summary:
        return f"skipped, {summary['error']}"
    values = ", ".join(f"{k} {summary[k]:.3f}" for k in ("cosine_mean", "svcca", "cka", "idcor")
                       if summary.get(k) is not None)
    return f"N={summary['n']} two trainings of the essential maps: {values}"


__all__ = ["ceiling_summary", "run_noise_ceiling_stages"]
