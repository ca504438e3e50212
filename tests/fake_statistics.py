"""The statistics stage and the noise ceiling on a fake experiment (tests/fake_experiment.py), for tests.

    path = write_fake_experiment(root, n=40)
    add_statistics(path)          # statistics-<key> for every attack, with small B, permutations and grid
    add_noise_ceiling(path)       # a second essential map set (the first, perturbed) and the noise-ceiling stage

No model is needed: the statistics stage reads maps only, and the repeat map set is written here as a finished
stage, so the noise ceiling's map stage finds it done and only the correlation runs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from experiments.config import ExperimentConfig
from experiments.format import ESSENTIAL, ESSENTIAL_REPEAT, map_dir, maps_stage, npy_path
from experiments.store import ExperimentStore
from precompute.distributed import DistContext
from precompute.progress import Progress
from precompute.stages.context import StageContext

SMALL = {"bootstrap": 20, "permutations": 10, "repairings": 3, "power_sizes": 3, "power_repeats": 2}


def fake_context(path: str, **overrides: object) -> StageContext:
    """A StageContext on the experiment at `path` (its stored config, `overrides` applied), without a model."""
    store = ExperimentStore(path)
    config = replace(ExperimentConfig.from_dict(store.manifest()["config"]), **{**SMALL, **overrides})
    return StageContext(config, store, None, None, DistContext(), Progress(quiet=True))


def add_statistics(path: str, **overrides: object) -> StageContext:
    """Run the statistics stage of every attack of the experiment; returns the context it ran with."""
    from experiments.reader import Experiment
    from precompute.stages.statistics import run_statistics_stage

    ctx = fake_context(path, **overrides)
    for key in Experiment(path, verify=False).attack_keys:
        run_statistics_stage(ctx, key)
    return ctx


def write_repeat_maps(path: str, seed: int = 1) -> None:
    """The essential map set again, every non-zero entry moved by up to ±20 % and one map lost: a stand-in for a
    second training, marked complete so that the map stage skips it."""
    store = ExperimentStore(path)
    folder = map_dir(ESSENTIAL)
    arrays = {name: np.array(store.load_array(npy_path(folder, name))) for name in
              ("maps", "steps", "final_loss", "kept", "final_pred", "positions", "row", "status", "nonzero", "dc_only")}
    rng = np.random.default_rng(seed)
    arrays["maps"] = (arrays["maps"] * rng.uniform(0.8, 1.2, arrays["maps"].shape)).astype(np.float32)
    lost = int(arrays["positions"][-1])
    arrays["status"][lost] = 3  # STATUS_LOST: kept in the first training only
    arrays["kept"][-1] = False
    store.write_arrays(map_dir(ESSENTIAL_REPEAT), arrays)
    store.mark_stage(maps_stage(ESSENTIAL_REPEAT), n_attempted=len(arrays["positions"]),
                     n_kept=int(arrays["kept"].sum()), map_set=ESSENTIAL_REPEAT)


def add_noise_ceiling(path: str, **overrides: object) -> StageContext:
    """Write the repeat map set and run the noise-ceiling stages; returns the context they ran with."""
    from precompute.stages.noise_ceiling import run_noise_ceiling_stages

    write_repeat_maps(path)
    ctx = fake_context(path, **overrides)
    run_noise_ceiling_stages(ctx)
    return ctx
