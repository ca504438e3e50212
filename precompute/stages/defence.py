"""Stage `defence`: the Table IV matrix, picking each image's class map by the model's own prediction.

Rows: the test images as they are ("clean") and attacked by each attack; columns: no map, and
the class maps trained against each attack. A cell is top-1 accuracy against the true labels
over all N test images. An extra row reproduces the published evaluation, which filtered clean
images with the map of their *true* label (a defence cannot know it): labelled as such. Beside the
accuracy over all N, `accuracy_clean_correct` counts only the images the bare model classifies correctly when
clean (the published denominator); precompute/stages/adaptive.py adds the adaptive attacks' rows as "adaptive".
The maps filter in the experiment's basis at its layer (core.defended.DefendedClassifier, as the adaptive stage).
"""

from __future__ import annotations

import numpy as np
import torch

from core.defended import DefendedClassifier
from experiments.format import (
    DEFENCE,
    DEFENCE_TABLE,
    TEST,
    attack_dir,
    class_maps_dir,
    classify_dir,
    defence_cell,
    npy_path,
)
from precompute.stages.base import Outcome, run_rank0_stage
from precompute.stages.context import StageContext
from precompute.stages.denominators import DENOMINATORS


def run_defence_stage(ctx: StageContext, attack_keys: list[str]) -> None:
    """Write `defence/table.json` and `defence/<row>__<column>.npy` (defended predictions)."""

    def build() -> Outcome:
        labels = ctx.array(TEST, "labels")  # (N,)
        n = len(labels)
        rows = {"clean": None, **{key: key for key in attack_keys}}
        columns = ["none", *attack_keys]
        defences = defended_classifiers(ctx, attack_keys)
        batches = [np.arange(b, min(n, b + ctx.config.batch_size)) for b in range(0, n, ctx.config.batch_size)]
        correct = ctx.array(classify_dir(TEST), "pred") == labels  # (N,) the published denominator's images
        table: dict[str, dict[str, float]] = {}
        table_correct: dict[str, dict[str, float]] = {}
        arrays: dict[str, np.ndarray] = {}
        for row, key in rows.items():
            first = ctx.array(classify_dir(TEST), "pred") if key is None else ctx.array(attack_dir(TEST, key), "adv_pred")
            table[row] = {"none": float((first == labels).mean())}
            table_correct[row] = {"none": _share((first == labels)[correct])}
            defended = defended_predictions(ctx, key, defences, batches)
            for column in attack_keys:
                arrays[defence_cell(row, column)] = defended[column]
                table[row][column] = float((defended[column] == labels).mean())
                table_correct[row][column] = _share((defended[column] == labels)[correct])
        published = {column: true_label_accuracy(ctx, defences[column], labels, batches) for column in attack_keys}
        ctx.store.write_arrays(DEFENCE, arrays)
        result = {"rows": list(rows), "columns": columns, "accuracy": table, "n": n,
                  "clean_true_label_map": published, "accuracy_clean_correct": table_correct,
                  "n_clean_correct": int(correct.sum()), "denominators": DENOMINATORS}
        ctx.store.write_json(DEFENCE_TABLE, result)
        note = "; ".join(f"{r}: " + " ".join(f"{c}={table[r][c]:.2f}" for c in columns) for r in table)
        return Outcome({"n": n}, note)

    run_rank0_stage(ctx, DEFENCE, build)


def _share(correct: np.ndarray) -> float:
    """Share of True in a (M,) bool array; 0 for none (as the table's other cells)."""
    return float(correct.mean()) if len(correct) else 0.0


def defended_classifiers(ctx: StageContext, attack_keys: list[str]) -> dict[str, DefendedClassifier]:
    """Attack key -> the model defended by its class maps (stored in display order), in the experiment's basis at
    its layer, on the device."""
    basis = ctx.config.map_basis()
    return {
        key: DefendedClassifier.from_stored(
            ctx.model, torch.from_numpy(np.array(ctx.store.load_array(npy_path(class_maps_dir(key), "maps"))))
            .to(ctx.device), basis=basis, layer=ctx.config.layer)
        for key in attack_keys
    }


def defended_predictions(
    ctx: StageContext, attack_key: str | None, defences: dict[str, DefendedClassifier], batches: list[np.ndarray]
) -> dict[str, np.ndarray]:
    """Column -> (N,) int64 predictions of one row's images, each filtered with the map its first prediction picks."""
    defended: dict[str, list[np.ndarray]] = {column: [] for column in defences}
    for positions in batches:  # one batch of images in memory at a time (224x224 sets are large)
        images = _row_images(ctx, attack_key, positions)
        for column, classifier in defences.items():
            _, pred = classifier.predictions(images)
            defended[column].append(pred.cpu().numpy().astype(np.int64))
    return {column: np.concatenate(preds) if preds else np.zeros(0, np.int64) for column, preds in defended.items()}


def true_label_accuracy(ctx: StageContext, defended: DefendedClassifier, labels: np.ndarray,
                        batches: list[np.ndarray]) -> float:
    """The published evaluation: accuracy on the clean images filtered with the map of their true label."""
    correct = 0
    for positions in batches:
        with torch.no_grad():
            logits = defended.branch(ctx.images(TEST, positions), torch.from_numpy(labels[positions]).to(ctx.device))
            correct += int((logits.argmax(1).cpu().numpy() == labels[positions]).sum())
    return correct / len(labels) if len(labels) else 0.0


def _row_images(ctx: StageContext, attack_key: str | None, positions: np.ndarray) -> torch.Tensor:
    """Test images at `positions` (B, C, H, W) in [0, 1]: clean, or attacked by `attack_key`."""
    if attack_key is None:
        return ctx.images(TEST, positions)
    adversarial = ctx.store.load_array(npy_path(attack_dir(TEST, attack_key), "adversarial"))  # memory-mapped
    return torch.from_numpy(np.asarray(adversarial[positions])).to(ctx.device)
