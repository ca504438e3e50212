"""`python -m precompute report DIR`: the paper's Tables I, III and IV for one experiment, as markdown.

Our numbers stand beside the paper's, with N beside every statistic, the re-paired baseline
beside every similarity, and the sparsity of each map set (non-zero entries, zero-frequency-only share).
"""

from __future__ import annotations

import argparse

from core.metrics.caveats import correlation_caveats
from core.metrics.correlate import null_idcor_median
from experiments.format import ESSENTIAL, adversarial_set
from experiments.paper_numbers import TABLE_I, TABLE_III, TABLE_IV, attack_label
from experiments.reader import Experiment
from experiments.store import CacheError


def _f(value: object, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table_i(experiment: Experiment) -> list[str]:
    lines = [
        "| Attack | N | SVCCA | re-paired SVCCA | Cosine sim | re-paired cosine | IdCor | shuffled IdCor | p | paper SVCCA | paper cosine | paper IdCor | paper p |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in experiment.attack_keys:
        c = experiment.correlation(key)
        if c is None or "error" in c:
            reason = (c or {}).get("error", "not computed").replace("|", "/")
            lines.append(f"| {attack_label(key)} | {(c or {}).get('n', 0)} | not computed: {reason} |" + " – |" * 10)
            continue
        p = TABLE_I.get(key, {})
        lines.append(
            f"| {attack_label(key)} | {c['n']} | {_f(c['svcca'])} | {_f(c.get('repaired_svcca_mean'))} | "
            f"{_f(c['cosine_mean'])} ± {_f(c['cosine_std'])} | "
            f"{_f(c.get('repaired_cosine_mean'))} ± {_f(c.get('repaired_cosine_std'))} | {_f(c['idcor'])} | "
            f"{_f(null_idcor_median(c))} | {_f(c['p_value'], 3)} | {_f(p.get('svcca'))} | "
            f"{_f(p.get('cosine_mean'))} ± {_f(p.get('cosine_std'))} | {_f(p.get('idcor'))} | {_f(p.get('p_value'))} |"
            if p else
            f"| {attack_label(key)} | {c['n']} | {_f(c['svcca'])} | {_f(c.get('repaired_svcca_mean'))} | "
            f"{_f(c['cosine_mean'])} ± {_f(c['cosine_std'])} | "
            f"{_f(c.get('repaired_cosine_mean'))} ± {_f(c.get('repaired_cosine_std'))} | {_f(c['idcor'])} | "
            f"{_f(null_idcor_median(c))} | {_f(c['p_value'], 3)} | – | – | – | – |"
        )
    return lines


def caveat_lines(experiment: Experiment) -> list[str]:
    """A bullet per attack whose SVCCA or IdCor is forced or unreliable at its N (see core.metrics.caveats)."""
    lines = []
    for key in experiment.attack_keys:
        for text in correlation_caveats(experiment.correlation(key) or {}):
            lines.append(f"- **{attack_label(key)}**: {text}")
    return ["**Caveats at this sample size:**", "", *lines, ""] if lines else []


def table_iii(experiment: Experiment) -> list[str]:
    lines = ["| ε | attack success rate (of N correct) | IdCor | shuffled IdCor | p | N pairs | paper success | paper IdCor | paper p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in [k for k in experiment.attack_keys if k.startswith("pgd-")]:
        stage = experiment.stage(f"test-attack-{key}")
        c = experiment.correlation(key) or {}
        p = TABLE_III.get(key, {})
        lines.append(
            f"| {key.removeprefix('pgd-')}/255 | {100 * stage.get('success_rate', 0):.2f}% (of {stage.get('n_correct')}) | "
            f"{_f(c.get('idcor'))} | {_f(null_idcor_median(c))} | {_f(c.get('p_value'), 3)} | {c.get('n', 0)} | "
            f"{_f(100 * p['success_rate']) + '%' if p else '–'} | {_f(p.get('idcor'))} | {_f(p.get('p_value'))} |"
        )
    return lines


def table_iv(experiment: Experiment) -> list[str]:
    table = experiment.defence_table()
    if table is None:
        return ["(no class-level maps in this experiment: run with --train-data)"]
    columns = table["columns"]
    head = "| data \\ map | " + " | ".join("no map" if c == "none" else attack_label(c) for c in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for row in table["rows"]:
        paper = TABLE_IV.get(row, {})
        cells = [
            f"{table['accuracy'][row][c]:.2f}" + (f" ({paper[c]:.2f})" if c in paper else "") for c in columns
        ]
        lines.append(f"| {'clean' if row == 'clean' else attack_label(row)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"N = {table['n']} test images; the paper's value in brackets. The map is picked by the model's own "
                 "first prediction. Published evaluation (clean images filtered by the map of their *true* label): "
                 + ", ".join(f"{attack_label(k)} {v:.2f}" for k, v in table["clean_true_label_map"].items()) + ".")
    return lines


def sparsity_table(experiment: Experiment) -> list[str]:
    lines = ["| map set | kept / attempted | mean steps | mean non-zero entries | median | zero-frequency-only share |",
             "|---|---|---|---|---|---|"]
    for name in [ESSENTIAL, *[adversarial_set(k) for k in experiment.attack_keys]]:
        s = experiment.stage(f"maps-{name}")
        if not s:
            continue
        lines.append(
            f"| {name} | {s['n_kept']} / {s['n_attempted']} | {_f(s.get('mean_steps'), 0)} | "
            f"{_f(s.get('mean_nonzero'), 1)} | {_f(s.get('median_nonzero'), 0)} | {_f(s.get('dc_only_share'))} |"
        )
    return lines


def device_note(manifest: dict) -> str:
    """What the device line needs besides the device's name, from what the manifest recorded.

    CPU runs: ' (CPU model name, instruction set)' (recorded since session 11). CUDA runs: ' (convolutions
    TF32, matmuls float32)', which float32 arithmetic the GPU was allowed (recorded since session 13).
    """
    if str(manifest.get("device", "")).startswith("cpu"):
        cpu = manifest.get("cpu")
        return f" ({cpu})" if cpu else ""
    arithmetic = manifest.get("float32_arithmetic")
    return f" ({arithmetic})" if arithmetic and arithmetic != "float32" else ""


def build_report(experiment: Experiment) -> str:
    """The whole markdown report of one experiment."""
    cfg = experiment.config
    m = experiment.manifest
    out = [
        f"# Report: {experiment.id}",
        "",
        f"Model `{cfg.model}` (input norm {cfg.input_norm}), data `{cfg.data}` split {cfg.split}, "
        f"N = {experiment.n}, λ = {cfg.lam}, steps {cfg.min_steps}–{cfg.max_steps}, IdCor permutations {cfg.permutations}, "
        f"clean accuracy {100 * experiment.stage('test-classify').get('accuracy', 0):.2f}%. "
        f"Computed on {m.get('device')}{device_note(m)} with torch {m.get('versions', {}).get('torch')}, commit {m.get('git_commit', '?')[:10]}.",
        "",
        "## Table I: correlation between essential and adversarial frequency maps",
        "",
        *table_i(experiment),
        "",
        "Re-paired: the essential map of image i against the adversarial map of another image j ≠ i "
        f"(mean over {cfg.repairings} random re-pairings): the similarity that all maps share, whoever they belong to. "
        "Shuffled IdCor: the median IdCor of the permutation test's shuffled pairings, IdCor's own baseline.",
        "",
        *caveat_lines(experiment),
        "## Table III: PGD with variable ε",
        "",
        *table_iii(experiment),
        "",
        "## Table IV: class-level maps as a defence (accuracy)",
        "",
        *table_iv(experiment),
        "",
        "## Map sparsity",
        "",
        *sparsity_table(experiment),
        "",
    ]
    return "\n".join(out)


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="print Tables I, III, IV of an experiment as markdown, beside the paper's")
    p.add_argument("dir", help="experiment directory")


def run(args: argparse.Namespace) -> int:
    try:
        experiment = Experiment(args.dir)
    except CacheError as err:
        raise ValueError(str(err)) from None
    print(build_report(experiment))
    return 0
