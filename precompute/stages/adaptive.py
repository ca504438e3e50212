"""Stages `adaptive-<row>__<maps>` and `robustness-curve-<maps>`: attacks that know the class-map defence.

Table IV (precompute/stages/defence.py) attacks the bare model and applies the defence afterwards; an attacker
who knows the defence attacks `core.defended.DefendedClassifier` itself. For every adaptive attack of
`--adaptive-attacks` (at every --eps for the fixed-budget ones) and every class-map set:

    defence/<row>__<maps>.npy       (N,) int64 defended predictions under the attack, e.g. 'pgd-8_bpda__pgd-8.npy'
                                    (experiments.format.adaptive_cell: '+' is '_' in file names)
    defence/linf/<row>__<maps>.npy  (N,) float32 L∞ norm of each adversarial (FMN: the smallest it found)
    defence/table.json "adaptive"   the table in Table IV's layout: rows = adaptive keys, which begin with the key
                                    they extend ('pgd-8+bpda' extends 'pgd-8'), columns = class-map keys,
                                    accuracy[row][column] over all N test images and accuracy_clean_correct over
                                    the images the bare model classifies correctly (the published denominator),
                                    n, n_clean_correct, the settings and the sanity checks' outcomes

With `--effort-check`, every adaptive PGD cell is attacked again with twice the steps and one more restart
(`effort-<row>__<maps>`, predictions in defence/effort/<cell>.npy, accuracies in the block's "effort"), and the
table's checks gain more_effort_does_not_help: the attack as run has converged when more effort finds no more
than one image it missed. A cell already at accuracy 0 has nothing left to lower and is not rerun.

With `--robustness-curve`, per class-map set: accuracy against ε = 0, 1, 2, 4, 8, 16/255 of the bare model,
of the defence under Table IV's PGD and under each fixed-budget adaptive attack (default pgd+bpda), and the
worst case over them, as `defence/curve-<maps>.json` with the per-image correctness (N, E) beside it.

Both are chunked over the test images (resumable; each chunk seeded by ctx.stage_seed), so the numbers do not
depend on how many ranks computed them.
"""

from __future__ import annotations

import numpy as np
import torch

from core.attack_keys import ADAPTIVE_ATTACKS, adaptive_attack_key, attack_order, parse_attack_key
from core.attacks_adaptive import (
    CURVE_EPS_255,
    AdaptiveResult,
    accuracy_falls_to_zero,
    adaptive_beats_non_adaptive,
    curve_correct,
    more_effort_does_not_help,
    run_adaptive_attack,
    white_box_beats_gradient_free,
)
from core.attacks_adaptive.curve import NON_ADAPTIVE, UNDEFENDED, WORST_CASE
from core.attacks_adaptive.pgd import FOOLBOX_STEPS
from core.defended import DefendedClassifier
from experiments.format import (
    ADAPTIVE,
    DEFENCE,
    DEFENCE_TABLE,
    EFFORT,
    ROBUSTNESS_CURVE,
    TEST,
    adaptive_cell,
    adaptive_linf_dir,
    adaptive_stage,
    class_maps_dir,
    classify_dir,
    data_stage,
    effort_dir,
    effort_stage,
    file_name,
    npy_path,
    robustness_curve_dir,
    robustness_curve_json,
    robustness_curve_stage,
)
from precompute.stages.base import Chunks, Outcome, run_chunked_stage, run_rank0_stage
from precompute.stages.chunked import StageParts
from precompute.stages.context import StageContext
from precompute.stages.denominators import DENOMINATORS

EFFORT_STEPS_FACTOR, EFFORT_EXTRA_RESTARTS = 2, 1  # the effort check: twice the steps, one more restart
DEFAULT_CURVE_ATTACKS = ("pgd+bpda",)  # the curve's adaptive attack when --adaptive-attacks names no fixed-budget one


def adaptive_units(adaptive_attacks: tuple[str, ...], eps_255: tuple[float, ...]) -> list[tuple[str, str, float | None]]:
    """(key, adaptive attack name, ε in (0, 1] or None) of each setting: a fixed-budget attack at every ε of
    `eps_255` (1/255 units), a minimum-norm one once. ValueError for an unknown attack or an ε outside (0, 1]."""
    units = []
    for name in adaptive_attacks:
        if name not in ADAPTIVE_ATTACKS:
            raise ValueError(f"expected an adaptive attack in {sorted(ADAPTIVE_ATTACKS)}, got {name!r}")
        budgets = [e / 255 for e in eps_255] if ADAPTIVE_ATTACKS[name].needs_eps else [None]
        units += [(adaptive_attack_key(name, eps), name, eps) for eps in budgets]
    return units


def curve_attacks(adaptive_attacks: tuple[str, ...]) -> tuple[str, ...]:
    """The fixed-budget adaptive attacks the robustness curve runs: those chosen, else pgd+bpda."""
    fixed = tuple(name for name in adaptive_attacks if ADAPTIVE_ATTACKS[name].needs_eps)
    return fixed or DEFAULT_CURVE_ATTACKS


def run_adaptive_stages(ctx: StageContext, maps_keys: list[str]) -> None:
    """Every adaptive attack setting on every class-map set, then the robustness curves (when asked for)."""
    config = ctx.config
    for key, name, eps in adaptive_units(config.adaptive_attacks, config.eps):
        for maps_key in maps_keys:
            run_adaptive_stage(ctx, key, name, eps, maps_key)
    if config.effort_check:
        for key, name, eps in adaptive_units(config.adaptive_attacks, config.eps):
            if ADAPTIVE_ATTACKS[name].attack == "pgd":
                for maps_key in maps_keys:
                    run_effort_stage(ctx, key, name, eps, maps_key)
    if config.robustness_curve:
        for maps_key in maps_keys:
            run_robustness_curve_stage(ctx, maps_key, curve_attacks(config.adaptive_attacks))


def defended_classifier(ctx: StageContext, maps_key: str) -> DefendedClassifier:
    """The experiment's model defended by the class maps trained against `maps_key`, on the device, filtering in
    the experiment's basis at its layer."""
    stored = torch.from_numpy(np.array(ctx.store.load_array(npy_path(class_maps_dir(maps_key), "maps"))))
    return DefendedClassifier.from_stored(ctx.model, stored.to(ctx.device), basis=ctx.config.map_basis(),
                                          layer=ctx.config.layer)


def run_adaptive_stage(ctx: StageContext, key: str, name: str, eps: float | None, maps_key: str) -> None:
    """Attack the defence (class maps of `maps_key`) with adaptive attack `name` at `eps`; add its row to the table."""
    cell = adaptive_cell(key, maps_key)
    stage = adaptive_stage(key, maps_key)
    check_adaptive_n(ctx, stage)

    def plan() -> Chunks:
        config = ctx.config
        labels = ctx.array(TEST, "labels")[: adaptive_n(ctx)]  # (N,): the first --adaptive-limit test images
        defended = defended_classifier(ctx, maps_key)
        restarts = config.adaptive_restarts if ADAPTIVE_ATTACKS[name].attack == "pgd" else 1  # only PGD restarts

        def compute(chunk: int, positions: np.ndarray) -> dict[str, np.ndarray]:
            result = run_adaptive_attack(
                name, defended, ctx.images(TEST, positions), torch.from_numpy(labels[positions]).to(ctx.device), eps,
                seed=ctx.stage_seed(ADAPTIVE, key, maps_key, chunk), steps=config.adaptive_steps, restarts=restarts,
                batch_size=config.batch_size,
            )
            return {"pred": result.pred.cpu().numpy().astype(np.int64),
                    "linf": result.linf.cpu().numpy().astype(np.float32)}

        def merge(parts: StageParts) -> Outcome:
            merged = parts.concatenated()
            ctx.store.write_arrays(DEFENCE, {cell: merged["pred"]})
            ctx.store.write_arrays(adaptive_linf_dir(), {cell: merged["linf"]})
            settings = {"attack": name, "eps_255": None if eps is None else round(eps * 255, 4),
                        "steps": config.adaptive_steps, "restarts": restarts, "chunk_size": config.chunk_size,
                        "seed": config.seed, "n": len(labels)}
            block = add_adaptive_cell(ctx, key, maps_key, merged["pred"], settings)
            accuracy = block["accuracy"][key][maps_key]
            return Outcome({"n": len(labels), "accuracy": accuracy,
                            "accuracy_clean_correct": block["accuracy_clean_correct"][key][maps_key]},
                           f"defended accuracy {accuracy:.3f} of {len(labels)}")

        return Chunks(len(labels), config.chunk_size, compute, merge, parts=file_name(stage))

    run_chunked_stage(ctx, stage, plan)


def effort_budget(config: object) -> tuple[int, int]:
    """(steps, restarts) of the effort check: twice the adaptive PGD's steps and one more restart."""
    steps = config.adaptive_steps or FOOLBOX_STEPS
    return EFFORT_STEPS_FACTOR * steps, config.adaptive_restarts + EFFORT_EXTRA_RESTARTS


def run_effort_stage(ctx: StageContext, key: str, name: str, eps: float, maps_key: str) -> None:
    """The effort check of adaptive PGD cell (`key`, `maps_key`): the same images attacked with more steps and
    restarts (another seed), its accuracy stored beside the cell's; skipped (recorded) when the cell is at 0."""
    cell = adaptive_cell(key, maps_key)
    stage = effort_stage(key, maps_key)
    check_adaptive_n(ctx, stage)
    steps, restarts = effort_budget(ctx.config)

    def plan() -> Chunks:
        labels = ctx.array(TEST, "labels")[: adaptive_n(ctx)]
        defended = defended_classifier(ctx, maps_key)

        def compute(chunk: int, positions: np.ndarray) -> dict[str, np.ndarray]:
            result = run_adaptive_attack(
                name, defended, ctx.images(TEST, positions), torch.from_numpy(labels[positions]).to(ctx.device), eps,
                seed=ctx.stage_seed(EFFORT, key, maps_key, chunk), steps=steps, restarts=restarts,
                batch_size=ctx.config.batch_size,
            )
            return {"pred": result.pred.cpu().numpy().astype(np.int64)}

        def merge(parts: StageParts) -> Outcome:
            pred = parts.concatenated()["pred"]
            ctx.store.write_arrays(effort_dir(), {cell: pred})
            accuracy = float((pred == labels).mean()) if len(labels) else 0.0
            base = add_effort_cell(ctx, key, maps_key, {"accuracy": accuracy, "steps": steps, "restarts": restarts,
                                                        "rerun": True})
            return Outcome({"n": len(labels), "accuracy": accuracy, "steps": steps, "restarts": restarts},
                           f"defended accuracy {accuracy:.3f} with {steps} steps, {restarts} restarts "
                           f"({base:.3f} as run)")

        return Chunks(len(labels), ctx.config.chunk_size, compute, merge, parts=file_name(stage))

    if not ctx.store.stage_done(stage):
        as_run = ctx.store.load_json(DEFENCE_TABLE)["adaptive"]["accuracy"][key][maps_key]
        if as_run == 0:  # nothing left to lower: recorded, not rerun
            def nothing_to_lower() -> Outcome:
                add_effort_cell(ctx, key, maps_key, {"accuracy": 0.0, "steps": steps, "restarts": restarts,
                                                     "rerun": False})
                return Outcome({"n": adaptive_n(ctx), "accuracy": 0.0, "rerun": False},
                               "accuracy already 0 as run: not rerun")

            run_rank0_stage(ctx, stage, nothing_to_lower)
            return
    run_chunked_stage(ctx, stage, plan)


def add_effort_cell(ctx: StageContext, key: str, maps_key: str, effort: dict) -> float:
    """Store one effort-check outcome in DEFENCE_TABLE's adaptive block, recompute the checks; the cell's own
    accuracy as run is returned."""
    table = ctx.store.load_json(DEFENCE_TABLE)
    block = table["adaptive"]
    block.setdefault("effort", {}).setdefault(key, {})[maps_key] = effort
    block["checks"] = adaptive_checks(ctx, table, block)
    ctx.store.write_json(DEFENCE_TABLE, table)
    return float(block["accuracy"][key][maps_key])


def clean_correct(ctx: StageContext) -> np.ndarray:
    """(N,) bool: the bare model classifies the clean test image correctly (the published denominator), for the
    first N = adaptive_n test images."""
    n = adaptive_n(ctx)
    return ctx.array(classify_dir(TEST), "pred")[:n] == ctx.array(TEST, "labels")[:n]


def adaptive_n(ctx: StageContext) -> int:
    """How many test images the adaptive attacks and curves attack: the first --adaptive-limit, else all."""
    total = int(ctx.store.stage_info(data_stage(TEST))["n"])
    return total if ctx.config.adaptive_limit is None else min(ctx.config.adaptive_limit, total)


def check_adaptive_n(ctx: StageContext, stage: str) -> None:
    """ValueError when this run's N differs from that of the stored adaptive stages: one table, one N."""
    n = adaptive_n(ctx)
    done = [s for s, info in ctx.store.manifest()["stages"].items()
            if s.startswith((ADAPTIVE, EFFORT, ROBUSTNESS_CURVE)) and info.get("status") == "complete" and "n" in info]
    other = {int(ctx.store.stage_info(s)["n"]) for s in done} - {n}
    if other:
        raise ValueError(f"expected --adaptive-limit to give the N = {min(other)} test images of the stored adaptive "
                         f"stages (stage {stage}), got N = {n}")


def add_adaptive_cell(ctx: StageContext, key: str, maps_key: str, pred: np.ndarray, settings: dict) -> dict:
    """Write one cell (row `key`, column `maps_key`) into DEFENCE_TABLE's "adaptive" block, recompute its sanity
    checks, and return the block."""
    labels = ctx.array(TEST, "labels")[: adaptive_n(ctx)]
    correct = clean_correct(ctx)
    table = ctx.store.load_json(DEFENCE_TABLE)
    block = table.get("adaptive") or {"rows": [], "columns": [], "accuracy": {}, "accuracy_clean_correct": {},
                                      "extends": {}, "settings": {}}
    block["rows"] = sorted({*block["rows"], key}, key=attack_order)
    block["columns"] = sorted({*block["columns"], maps_key}, key=attack_order)
    block["accuracy"].setdefault(key, {})[maps_key] = float((pred == labels).mean()) if len(labels) else 0.0
    block["accuracy_clean_correct"].setdefault(key, {})[maps_key] = (
        float((pred == labels)[correct].mean()) if correct.any() else 0.0)
    block["extends"][key] = parse_attack_key(key).base
    block["settings"][key] = settings
    block.update(n=int(len(labels)), n_clean_correct=int(correct.sum()), denominators=DENOMINATORS)
    block["checks"] = adaptive_checks(ctx, table, block)
    table["adaptive"] = block
    ctx.store.write_json(DEFENCE_TABLE, table)
    return block


def adaptive_checks(ctx: StageContext, table: dict, block: dict) -> list[dict]:
    """The sanity checks the adaptive table can answer, one dict per (check, row, column): every adaptive attack
    against the non-adaptive attack it extends (Table IV's row), and white-box PGD against gradient-free Square
    at the same ε."""
    labels = ctx.array(TEST, "labels")[: adaptive_n(ctx)]
    n = len(labels)
    checks = []
    for row in block["rows"]:
        base = block["extends"][row]
        for column in block["columns"]:
            if column not in block["accuracy"][row] or base not in table.get("accuracy", {}):
                continue
            if column in table["accuracy"][base]:
                check = adaptive_beats_non_adaptive(block["accuracy"][row][column], table["accuracy"][base][column], n)
                checks.append(_check_record(check, row, column, base))
    for row, by_column in block.get("effort", {}).items():
        for column, effort in by_column.items():
            if column in block["accuracy"].get(row, {}):
                check = more_effort_does_not_help(block["accuracy"][row][column], effort["accuracy"], n)
                record = _check_record(check, row, column, row)
                settings = block["settings"].get(row, {})
                record["message"] += (f"; {effort['steps']} steps and {effort['restarts']} restarts against "
                                      f"{settings.get('steps') or FOOLBOX_STEPS} and {settings.get('restarts', 1)}"
                                      + ("" if effort.get("rerun", True) else ", not rerun: nothing left to lower"))
                checks.append(record)
    for free in [r for r in block["rows"] if parse_attack_key(r).name == "square"]:
        for row in [r for r in block["rows"] if parse_attack_key(r).name == "pgd" and
                    parse_attack_key(r).eps_255 == parse_attack_key(free).eps_255]:
            for column in block["columns"]:
                if column in block["accuracy"][row] and column in block["accuracy"][free]:
                    check = white_box_beats_gradient_free(_result(ctx, row, column, labels),
                                                          _result(ctx, free, column, labels))
                    checks.append(_check_record(check, row, column, free))
    return checks


def _result(ctx: StageContext, row: str, column: str, labels: np.ndarray) -> AdaptiveResult:
    """A stored cell as an AdaptiveResult (predictions and labels; the adversarials are not kept)."""
    pred = torch.from_numpy(np.array(ctx.array(DEFENCE, adaptive_cell(row, column))))  # a writable copy
    n = len(labels)
    return AdaptiveResult(torch.zeros(n, 0), pred, torch.from_numpy(labels), torch.zeros(n))


def _check_record(check: object, row: str, column: str, against: str) -> dict:
    return {"check": check.name, "row": row, "column": column, "against": against, "passed": bool(check.passed),
            "measured": check.measured, "message": check.message}


def run_robustness_curve_stage(ctx: StageContext, maps_key: str, attacks: tuple[str, ...]) -> None:
    """Accuracy against ε (CURVE_EPS_255) of the bare model and of the defence with the maps of `maps_key`."""
    folder = robustness_curve_dir(maps_key)
    check_adaptive_n(ctx, robustness_curve_stage(maps_key))

    def plan() -> Chunks:
        config = ctx.config
        labels = ctx.array(TEST, "labels")[: adaptive_n(ctx)]
        defended = defended_classifier(ctx, maps_key)

        def compute(chunk: int, positions: np.ndarray) -> dict[str, np.ndarray]:
            correct = curve_correct(
                defended, ctx.images(TEST, positions), torch.from_numpy(labels[positions]).to(ctx.device),
                CURVE_EPS_255, attacks=attacks, seed=ctx.stage_seed(ROBUSTNESS_CURVE, maps_key, chunk),
                steps=config.adaptive_steps, baseline_steps=config.attack_steps, restarts=config.adaptive_restarts,
                batch_size=config.batch_size,
            )
            return {file_name(row): rows.cpu().numpy().astype(bool) for row, rows in correct.items()}  # (B, E) each

        def merge(parts: StageParts) -> Outcome:
            merged = parts.concatenated()
            ctx.store.write_arrays(folder, merged)
            merged = {row: merged[file_name(row)] for row in (UNDEFENDED, NON_ADAPTIVE, *attacks, WORST_CASE)}
            summary = curve_summary(merged, clean_correct(ctx), attacks, config)
            ctx.store.write_json(robustness_curve_json(maps_key), summary)
            worst = summary["accuracy"][WORST_CASE]
            return Outcome({"n": summary["n"]}, "worst-case accuracy by ε/255 "
                           + ", ".join(f"{e:g}: {a:.2f}" for e, a in zip(CURVE_EPS_255, worst, strict=True)))

        return Chunks(len(labels), config.chunk_size, compute, merge)

    run_chunked_stage(ctx, robustness_curve_stage(maps_key), plan)  # its name holds no '+': a safe parts folder


def curve_summary(correct: dict[str, np.ndarray], clean: np.ndarray, attacks: tuple[str, ...], config: object) -> dict:
    """The curve's JSON: ε, rows, accuracy over all N and over the clean-correct images, settings, checks."""
    rows = [UNDEFENDED, NON_ADAPTIVE, *attacks, WORST_CASE]
    n = len(clean)

    def shares(mask: np.ndarray) -> dict[str, list[float]]:
        return {row: [float(v) for v in correct[row][mask].mean(axis=0)] if mask.any() else [0.0] * len(CURVE_EPS_255)
                for row in rows}

    accuracy = shares(np.ones(n, bool))
    positive = [e for e in CURVE_EPS_255 if e > 0]
    checks = []
    for row in (*attacks, WORST_CASE):
        by_eps = dict(zip(CURVE_EPS_255, accuracy[row], strict=True))
        check = accuracy_falls_to_zero(lambda eps, by_eps=by_eps: by_eps[round(eps * 255, 4)], positive)
        checks.append({"check": check.name, "row": row, "passed": bool(check.passed), "measured": check.measured,
                       "message": check.message})
    return {"eps_255": list(CURVE_EPS_255), "rows": rows, "accuracy": accuracy,
            "accuracy_clean_correct": shares(clean), "n": n, "n_clean_correct": int(clean.sum()),
            "denominators": DENOMINATORS, "checks": checks,
            "settings": {"attacks": list(attacks), "steps": config.adaptive_steps,
                         "baseline_steps": config.attack_steps, "restarts": config.adaptive_restarts,
                         "chunk_size": config.chunk_size, "seed": config.seed}}
