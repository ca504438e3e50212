"""`python -m precompute report DIR`: the paper's Tables I, III and IV for one experiment, as markdown.

Our numbers stand beside the paper's, with N beside every statistic, the re-paired baseline
beside every similarity, and the sparsity of each map set (non-zero entries, zero-frequency-only share).
The header names the maps' basis, layer and shape (the manifest's "basis", "layer", "map_shape").
Where the statistics stage ran: Table I again with 95 % intervals, the within-class p-value and baselines,
CKA, the half-spectrum values and the pairs IdCor would need; and the noise ceiling where it was computed.
"""

from __future__ import annotations

import argparse

from core.attack_keys import attack_label, eps_of, keys_of_attack, parse_attack_key
from core.bases import BASES
from core.metrics.caveats import correlation_caveats
from core.metrics.correlate import null_idcor_median
from experiments.format import (
    DEFAULT_LAYER,
    ESSENTIAL,
    TEST,
    adversarial_set,
    attack_stage,
    classify_stage,
    map_space,
    maps_stage,
)
from experiments.paper_numbers import TABLE_I, TABLE_IV, table_iii_row
from experiments.reader import Experiment
from experiments.statistics_text import interval_text, mean_std_text, pairs_needed_text
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


def statistics_table(experiment: Experiment) -> list[str]:
    """Table I with 95 % intervals, the within-class p and baselines, CKA and the pairs IdCor would need."""
    lines = [
        "| Attack | N | cosine [95 % CI] | SVCCA [95 % CI] | IdCor [95 % CI] | p | within-class p | within-class re-paired "
        "cosine | within-class re-paired SVCCA | CKA | re-paired CKA | pairs for p < 0.05 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in experiment.attack_keys:
        stats = experiment.statistics(key)
        if stats is None:
            continue
        full = stats.get("full")
        if full is None:
            lines.append(f"| {attack_label(key)} | {stats['n']} | not computed: {stats.get('error', '?')} |" + " – |" * 9)
            continue
        lines.append(
            f"| {attack_label(key)} | {stats['n']} | {_f(full.get('cosine_mean'))} {interval_text(full.get('cosine_mean_ci'))} | "
            f"{_f(full.get('svcca'))} {interval_text(full.get('svcca_ci'))} | {_f(full.get('idcor'))} "
            f"{interval_text(full.get('idcor_ci'))} | {_f(full.get('p_value'), 3)} | {_f(full.get('p_value_within_class'), 3)} | "
            f"{mean_std_text(full, 'within_class_repaired_cosine')} | {mean_std_text(full, 'within_class_repaired_svcca')} | "
            f"{_f(full.get('cka'))} | {mean_std_text(full, 'repaired_cka')} | {pairs_needed_text(stats.get('power'))} |"
        )
    return lines if len(lines) > 2 else []


def half_spectrum_table(experiment: Experiment) -> list[str]:
    """Each metric on the non-redundant half spectrum, with how far it moved from the full spectrum's."""
    names = (("cosine_mean", "cosine", 2), ("svcca", "SVCCA", 2), ("cka", "CKA", 2), ("idcor", "IdCor", 2),
             ("p_value", "p", 3), ("p_value_within_class", "within-class p", 3))
    lines = ["| Attack | N | " + " | ".join(label for _, label, _ in names) + " |", "|---" * (len(names) + 2) + "|"]
    for key in experiment.attack_keys:
        stats = experiment.statistics(key) or {}
        half, delta = stats.get("half_spectrum"), stats.get("half_spectrum_delta", {})
        if half is None:
            continue
        cells = [f"{_f(half.get(k), d)} ({delta[k]:+.{d}f})" if k in delta else _f(half.get(k), d) for k, _, d in names]
        lines.append(f"| {attack_label(key)} | {stats['n']} | " + " | ".join(cells) + " |")
    return lines if len(lines) > 2 else []


def noise_ceiling_lines(experiment: Experiment) -> list[str]:
    """The noise ceiling in one paragraph, or nothing when the experiment has none."""
    ceiling = experiment.noise_ceiling()
    if ceiling is None:
        return []
    if ceiling.get("cosine_mean") is None:
        return [f"Noise ceiling: not computed ({ceiling.get('error', '?')}).", ""]
    orders = {True: "BatchNorm folded", False: "BatchNorm unfolded"}
    return [
        f"**Noise ceiling** (the essential maps trained twice, {orders[ceiling['fold_batchnorm']]} and "
        f"{orders[ceiling['repeat_fold_batchnorm']]}; N = {ceiling['n']}): cosine {_f(ceiling['cosine_mean'])} ± "
        f"{_f(ceiling['cosine_std'])}, SVCCA {_f(ceiling.get('svcca'))}, CKA {_f(ceiling.get('cka'))}, IdCor "
        f"{_f(ceiling.get('idcor'))} (p {_f(ceiling.get('p_value'), 3)}); kept in one training only: "
        f"{ceiling['kept_first_only']} and {ceiling['kept_repeat_only']} images. The highest essential–adversarial "
        "similarity maps this unstable could show.",
        "",
    ]


def statistics_section(experiment: Experiment) -> list[str]:
    """The statistics stage's tables and notes, or nothing for an experiment without that stage."""
    table = statistics_table(experiment)
    ceiling = noise_ceiling_lines(experiment)
    if not table and not ceiling:
        return []
    b = next((s.get("bootstrap") for k in experiment.attack_keys if (s := experiment.statistics(k))), None)
    out = ["## Table I with uncertainty and stronger baselines", ""]
    if table:
        out += [*table, "", f"Intervals: 95 %, from {b} resamples (cosine: percentile bootstrap; SVCCA and IdCor: "
                "half-sampling, half of the pairs). Within-class: the permutation test and the re-pairings keep every "
                "image in its true class, so what the pairs beat them by belongs to the image, not to its class. "
                "CKA: linear centred kernel alignment, beside its re-paired baseline. Pairs for p < 0.05: where "
                "IdCor's median p on random subsets falls below 0.05, read off the power curve or extrapolated "
                "(z ∝ √N, a rough guide).", ""]
        half = half_spectrum_table(experiment)
        out += [nonredundant_sentence(experiment), "", *half, ""] if half else []
    return out + ceiling


def nonredundant_sentence(experiment: Experiment) -> str:
    """What the second statistics table counts: the half spectrum for Fourier maps, every coefficient otherwise."""
    basis = map_space(experiment.manifest)[0]
    if not BASES[basis.split("-")[0]].orthonormal:  # the key names the basis first: 'wavelet-haar-L3'
        return ("The same on the non-redundant half spectrum (each Hermitian pair of frequencies once; the change "
                "from the full spectrum in brackets):")
    return (f"The same on the non-redundant coefficients: the {basis} basis is orthonormal and repeats none, so "
            "these are all of them and the numbers are those above (change in brackets):")


def map_space_sentence(manifest: dict) -> str:
    """Which basis the maps filter in, where, and their shape, e.g. 'Maps: basis `dct` at layer `input`, 3 × 32 × 32'."""
    basis, layer, shape = map_space(manifest)
    where = "the input image" if layer == DEFAULT_LAYER else f"the features of layer `{layer}`"
    return f"Maps: basis `{basis}` on {where}, {' × '.join(map(str, shape))}, stored in the basis's display order."


def _eps_text(key: str) -> str:
    """Table III's ε cell of a PGD key: 'pgd-8' -> '8/255', 'pgd-8+bpda' -> '8/255 + bpda'."""
    parsed = parse_attack_key(key)
    return f"{parsed.eps_255:g}/255" + (f" + {parsed.variant}" if parsed.variant else "")


def table_iii(experiment: Experiment) -> list[str]:
    lines = ["| ε | attack success rate (of N correct) | IdCor | shuffled IdCor | p | N pairs | paper success | paper IdCor | paper p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in [k for k in keys_of_attack(experiment.attack_keys, "pgd") if eps_of(k) is not None]:
        stage = experiment.stage(attack_stage(TEST, key))
        c = experiment.correlation(key) or {}
        p = table_iii_row(key) or {}
        lines.append(
            f"| {_eps_text(key)} | {100 * stage.get('success_rate', 0):.2f}% (of {stage.get('n_correct')}) | "
            f"{_f(c.get('idcor'))} | {_f(null_idcor_median(c))} | {_f(c.get('p_value'), 3)} | {c.get('n', 0)} | "
            f"{_f(100 * p['success_rate']) + '%' if p else '–'} | {_f(p.get('idcor'))} | {_f(p.get('p_value'))} |"
        )
    return lines


def table_iv(experiment: Experiment) -> list[str]:
    table = experiment.defence_table()
    if table is None:
        return ["(no class-level maps in this experiment: run with --train-data)"]
    columns = table["columns"]
    head = "| data \\ map | " + " | ".join(attack_label(c) for c in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for row in table["rows"]:
        paper = TABLE_IV.get(row, {})
        cells = [
            f"{table['accuracy'][row][c]:.2f}" + (f" ({paper[c]:.2f})" if c in paper else "") for c in columns
        ]
        lines.append(f"| {attack_label(row)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"N = {table['n']} test images; the paper's value in brackets. The map is picked by the model's own "
                 "first prediction. Published evaluation (clean images filtered by the map of their *true* label): "
                 + ", ".join(f"{attack_label(k)} {v:.2f}" for k, v in table["clean_true_label_map"].items()) + ".")
    lines += [denominator_line(table), "", *table_iv_clean_correct(table)]
    return lines


def denominator_line(table: dict) -> str:
    """Which images a defence table's cells count: all N, and the clean-correct ones where the table has them."""
    if "n_clean_correct" not in table:
        return f"Cells count all N = {table['n']} test images."
    return (f"Cells count all N = {table['n']} test images; the table below counts only the "
            f"{table['n_clean_correct']} the bare model classifies correctly when clean (the published denominator).")


def table_iv_clean_correct(table: dict) -> list[str]:
    """Table IV again over the clean-correct images, where the table has them."""
    if "accuracy_clean_correct" not in table:
        return []
    columns = table["columns"]
    lines = [f"Table IV over the {table['n_clean_correct']} images the bare model classifies correctly when clean:",
             "", "| data \\ map | " + " | ".join(attack_label(c) for c in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for row in table["rows"]:
        lines.append(f"| {attack_label(row)} | "
                     + " | ".join(f"{table['accuracy_clean_correct'][row][c]:.2f}" for c in columns) + " |")
    return [*lines, ""]


def adaptive_table(experiment: Experiment) -> list[str]:
    """The adaptive attacks' accuracies beside the Table IV row each extends and the paper's value of that row."""
    table = experiment.defence_table()
    block = (table or {}).get("adaptive")
    if not block:
        return ["(no adaptive attacks in this experiment: run with --adaptive-attacks pgd+bpda ...)"]
    columns = block["columns"]
    head = "| attack on the defence \\ map | " + " | ".join(
        f"{attack_label(c)}: adaptive / Table IV (paper)" for c in columns) + " | settings |"
    lines = [head, "|---" * (len(columns) + 2) + "|"]
    for row in block["rows"]:
        base = block["extends"].get(row, "")
        paper = TABLE_IV.get(base, {})
        cells = []
        for c in columns:
            ours = block["accuracy"][row].get(c)
            ours_correct = block["accuracy_clean_correct"][row].get(c)
            non_adaptive = table["accuracy"].get(base, {}).get(c)
            cells.append(f"{_f(ours)} [{_f(ours_correct)}] / {_f(non_adaptive)}"
                         + (f" ({paper[c]:.2f})" if c in paper else ""))
        settings = block["settings"].get(row, {})
        shown = ", ".join(f"{k} {v}" for k, v in settings.items() if k in ("steps", "restarts") and v is not None)
        lines.append(f"| {attack_label(row)} | " + " | ".join(cells) + f" | {shown or 'defaults'} |")
    lines += ["", f"N = {block['n']} test images; in square brackets the accuracy over the {block['n_clean_correct']} "
              "the bare model classifies correctly when clean (the published denominator). After the slash: Table "
              "IV's accuracy under the non-adaptive attack the row extends, the paper's in brackets. "
              "Steps: None means each attack's default (PGD 40, FMN 100, Square 1000 queries).", ""]
    return lines + check_lines(block.get("checks", []), experiment.robustness_curves())


def check_lines(checks: list[dict], curves: dict[str, dict]) -> list[str]:
    """The sanity checks' outcomes, one bullet each: the adaptive table's and the robustness curves'."""
    lines = [f"- {'passed' if c['passed'] else '**failed**'} {c['check']} ({attack_label(c['row'])}, "
             f"{attack_label(c['column'])} maps): {c['message']}" for c in checks]
    for maps_key, curve in curves.items():
        lines += [f"- {'passed' if c['passed'] else '**failed**'} {c['check']} ({c['row']}, {attack_label(maps_key)} "
                  f"maps): {c['message']}" for c in curve.get("checks", [])]
    return ["Sanity checks (Carlini et al. 2019):", "", *lines, ""] if lines else []


def curve_tables(experiment: Experiment) -> list[str]:
    """Accuracy against ε per class-map set, one table each."""
    out = []
    for maps_key, curve in experiment.robustness_curves().items():
        eps = curve["eps_255"]
        out += [f"Robustness curve, class maps trained against {attack_label(maps_key)} (N = {curve['n']}):", "",
                "| row | " + " | ".join(f"ε = {e:g}/255" for e in eps) + " |", "|---" * (len(eps) + 1) + "|"]
        out += [f"| {row} | " + " | ".join(_f(a) for a in curve["accuracy"][row]) + " |" for row in curve["rows"]]
        out.append("")
    return out


def sparsity_table(experiment: Experiment) -> list[str]:
    lines = ["| map set | kept / attempted | mean steps | mean non-zero entries | median | zero-frequency-only share |",
             "|---|---|---|---|---|---|"]
    for name in [ESSENTIAL, *[adversarial_set(k) for k in experiment.attack_keys]]:
        s = experiment.stage(maps_stage(name))
        if not s:
            continue
        lines.append(
            f"| {name} | {s['n_kept']} / {s['n_attempted']} | {_f(s.get('mean_steps'), 0)} | "
            f"{_f(s.get('mean_nonzero'), 1)} | {_f(s.get('median_nonzero'), 0)} | {_f(s.get('dc_only_share'))} |"
        )
    return lines


def device_note(manifest: dict) -> str:
    """What the device line needs besides the device's name, from what the manifest recorded.

    CPU runs: ' (CPU model name, instruction set)'. CUDA runs: ' (convolutions TF32, matmuls float32)', which
    float32 arithmetic the GPU was allowed. Older manifests lack either field and get no note.
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
        f"clean accuracy {100 * experiment.stage(classify_stage(TEST)).get('accuracy', 0):.2f}%. "
        f"Computed on {m.get('device')}{device_note(m)} with torch {m.get('versions', {}).get('torch')}, commit {m.get('git_commit', '?')[:10]}.",
        map_space_sentence(m),
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
        *statistics_section(experiment),
        "## Table III: PGD with variable ε",
        "",
        *table_iii(experiment),
        "",
        "## Table IV: class-level maps as a defence (accuracy)",
        "",
        *table_iv(experiment),
        "",
        "## Adaptive attacks on the defence (accuracy)",
        "",
        *adaptive_table(experiment),
        *curve_tables(experiment),
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
