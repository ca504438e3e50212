"""Correlations: Table I/III rows beside the paper's, with intervals and stronger baselines where the statistics
stage ran; cosine and IdCor distributions, IdCor's power curve, per class, ε sweep, the noise ceiling."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.attack_keys import attack_label, eps_of, keys_of_attack
from core.metrics.caveats import correlation_caveats
from core.metrics.correlate import null_idcor_median
from experiments.format import TEST, attack_stage
from experiments.paper_numbers import TABLE_III, paper_row
from experiments.reader import Experiment
from experiments.statistics_text import interval_text, mean_std_text, pairs_needed_text
from ui import figures
from ui.basis_table import config_where, per_basis_rows, where_groups
from ui.downloads import csv_bytes
from ui.entry import through_app
from ui.loaders import class_averages, list_experiments, open_experiment, repaired_cosines
from ui.picker import require_experiment, show_results_only
from ui.roots import cache_roots, roots_stamp
from ui.views import caption, chart, html_download


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table_rows(experiment: Experiment) -> list[dict]:
    """One row per attack: this experiment's numbers and the paper's (Table I / II / III)."""
    rows = []
    config = experiment.config
    for key in experiment.attack_keys:
        summary = experiment.correlation(key) or {}
        paper = paper_row(config.model, config.image_size, key) or {}
        rate = experiment.stage(attack_stage(TEST, key)).get("success_rate")
        rows.append({
            "attack": attack_label(key),
            "success rate": _fmt(100 * rate, 1) + " %" if rate is not None else "–",
            "N pairs": summary.get("n"),
            "SVCCA": _fmt(summary.get("svcca")),
            "cosine mean ± std": (f"{summary['cosine_mean']:.2f} ± {summary['cosine_std']:.2f}"
                                  if summary.get("cosine_mean") is not None else "–"),
            "IdCor": _fmt(summary.get("idcor")),
            "p": _fmt(summary.get("p_value"), 3),
            "shuffled IdCor (median)": _fmt(null_idcor_median(summary)),
            "re-paired cosine": _fmt(summary.get("repaired_cosine_mean")),
            "re-paired SVCCA": _fmt(summary.get("repaired_svcca_mean")),
            "paper: SVCCA / cosine / IdCor / p": " / ".join([
                _fmt(paper.get("svcca")),
                f"{paper['cosine_mean']:.2f} ± {paper['cosine_std']:.2f}" if "cosine_mean" in paper else "–",
                _fmt(paper.get("idcor")), _fmt(paper.get("p_value"))]) if paper else "–",
            **({"note": summary["error"]} if summary.get("error") else {}),
        })
    return rows


def correlations_ui(experiment: Experiment) -> dict:
    """Widgets -> {"attack": key with a correlation, or None}."""
    keys = [k for k in experiment.attack_keys if experiment.correlation(k) is not None]
    if not keys:
        return {"attack": None}
    attack = st.selectbox("Attack for the distributions below", keys, format_func=attack_label, key="corr_attack")
    return {"attack": attack}


def render_table(experiment: Experiment) -> None:
    st.subheader("Correlation between essential and adversarial maps, beside the paper")
    rows = table_rows(experiment)
    if not rows:
        st.info("This experiment has no attack, so there is nothing to correlate.")
        return
    st.dataframe(rows, hide_index=True, key="corr_table")
    config = experiment.config
    table = "Table I (CIFAR-10, ResNet-20)" if config.image_size <= 32 else f"Table II (Imagenette, {config.model})"
    caption(f"This experiment: N images with both maps, λ = {config.lam:g}. Paper: {table}; PGD at ε ≠ 8/255 "
            "from Table III (IdCor and p only). SVCCA and cosine compare the maps linearly; IdCor compares the "
            "intrinsic dimension of the two sets with that of their concatenation and catches non-linear relations. "
            "The re-paired columns pair each essential map with another image's adversarial map: the similarity "
            "all maps share, which the true pairing has to beat. The shuffled IdCor is the same for IdCor: the median "
            "over the permutation test's shuffled pairings (not 0: TwoNN is biased at these sizes). p = 0.01 is the floor of "
            "100 permutations.")
    render_caveats(experiment)
    st.download_button("Table (CSV)", data=csv_bytes(rows), file_name=f"{experiment.id}_correlations.csv",
                       mime="text/csv", key="corr_table_csv")


def render_per_basis(experiment: Experiment) -> None:
    """Table I per basis and layer, one column group each, when the loaded experiments of this model and data set
    include other bases or layers (ui.basis_table)."""
    roots = cache_roots()
    listings = [item for item in list_experiments(tuple(roots), roots_stamp(roots)) if item.ok]
    current = experiment.manifest["config"]
    groups = where_groups(current, [(experiment.path, current), *((item.path, item.config) for item in listings)])
    if not groups:
        return
    st.subheader("Table I per basis and layer")
    summaries = {}
    for where, path in groups.items():
        other = experiment if path == experiment.path else open_experiment(path)
        summaries[where] = {key: other.correlation(key) for key in other.attack_keys if other.correlation(key)}
    st.dataframe(per_basis_rows(summaries), hide_index=True, key="corr_per_basis")
    caption(f"The loaded experiments of {current.get('model')} on {current.get('data')} whose maps filter in another "
            f"basis or at another layer, side by side (this one: {config_where(current)}, λ "
            f"{float(current.get('lam', 0.5)):g}). N: pairs of images with both maps; the re-paired cosine pairs "
            "each essential map with another image's adversarial map, the baseline the true pairs must beat; "
            "IdCor with its permutation p. Maps of different bases have different coordinates, so each "
            "group's numbers compare essential with adversarial maps within that basis only.")


def render_caveats(experiment: Experiment) -> None:
    """Say which SVCCA and IdCor values the sample size forces or makes unreliable (the demo's, for one)."""
    caveats = {key: correlation_caveats(experiment.correlation(key) or {}) for key in experiment.attack_keys}
    lines = [f"- **{attack_label(key)}**: " + " ".join(texts) for key, texts in caveats.items() if texts]
    if lines:
        st.warning("**Read these numbers with care: this experiment is small.**\n" + "\n".join(lines)
                   + "\n\nThe cosine similarities and their re-paired baseline remain comparable; build a larger "
                   "experiment (Home page) for SVCCA and IdCor.")


def statistics_rows(experiment: Experiment) -> list[dict]:
    """One row per attack with a statistics stage: intervals, within-class nulls, CKA, half spectrum, pairs needed."""
    rows = []
    for key in experiment.attack_keys:
        stats = experiment.statistics(key)
        if stats is None:
            continue
        full, half = stats.get("full") or {}, stats.get("half_spectrum") or {}
        delta = stats.get("half_spectrum_delta", {})
        rows.append({
            "attack": attack_label(key),
            "N pairs": stats["n"],
            "cosine [95 % CI]": f"{_fmt(full.get('cosine_mean'))} {interval_text(full.get('cosine_mean_ci'))}",
            "SVCCA [95 % CI]": f"{_fmt(full.get('svcca'))} {interval_text(full.get('svcca_ci'))}",
            "IdCor [95 % CI]": f"{_fmt(full.get('idcor'))} {interval_text(full.get('idcor_ci'))}",
            "p": _fmt(full.get("p_value"), 3),
            "within-class p": _fmt(full.get("p_value_within_class"), 3),
            "within-class re-paired cosine": mean_std_text(full, "within_class_repaired_cosine"),
            "within-class re-paired SVCCA": mean_std_text(full, "within_class_repaired_svcca"),
            "CKA": _fmt(full.get("cka")),
            "re-paired CKA": mean_std_text(full, "repaired_cka"),
            "half spectrum: cosine / SVCCA / CKA / IdCor (change)": " / ".join(
                f"{_fmt(half.get(k))} ({delta[k]:+.2f})" if k in delta else _fmt(half.get(k))
                for k in ("cosine_mean", "svcca", "cka", "idcor")),
            "pairs for p < 0.05": pairs_needed_text(stats.get("power")),
            **({"note": stats["error"]} if stats.get("error") else {}),
        })
    return rows


def render_statistics(experiment: Experiment) -> None:
    """Table I with intervals and stronger baselines, and what each number means, when the stage ran."""
    rows = statistics_rows(experiment)
    if not rows:
        return
    st.subheader("How sure, and how specific: Table I with intervals and stronger baselines")
    st.dataframe(rows, hide_index=True, key="corr_statistics")
    b = next((s.get("bootstrap") for k in experiment.attack_keys if (s := experiment.statistics(k))), None)
    caption(
        f"N pairs: images with both maps, the same pairs as Table I above. **[95 % CI]**: the range the value would "
        f"likely fall in if the experiment were repeated on other images of the same kind ({b} resamples of the pairs; "
        "SVCCA and IdCor from random halves). **within-class p**: IdCor's permutation test with the adversarial maps "
        "shuffled only among images of the same true class; small means the pairs share more than their class does. "
        "**within-class re-paired**: each essential map against the adversarial map of another image *of its own "
        "class*, the similarity a class alone explains; the true pairing has to beat it. **CKA**: linear centred "
        "kernel alignment, another linear similarity that weights directions by their variance, beside its "
        "re-paired baseline. **half spectrum**: the same metrics with each pair of mirror frequencies {k, −k} counted "
        "once (a real image's spectrum repeats itself there); the change in brackets. **pairs for p < 0.05**: how "
        "many pairs IdCor's test would need to be significant, read off the power curve below or extrapolated.")
    st.download_button("Statistics (CSV)", data=csv_bytes(rows), file_name=f"{experiment.id}_statistics.csv",
                       mime="text/csv", key="corr_statistics_csv")


def render_power(experiment: Experiment, attack: str) -> None:
    """IdCor's p against the number of pairs, with the 0.05 line and the experiment's N."""
    stats = experiment.statistics(attack) or {}
    power = stats.get("power")
    if not power or not len(power.get("sizes", [])):
        return
    fig = figures.power_curve_figure(list(power["sizes"]), power["p_values"], int(stats["n"]),
                                     f"IdCor's p against the number of pairs, {attack_label(attack)}",
                                     alpha=power.get("alpha", 0.05), pairs_needed=power.get("pairs_needed"))
    chart(fig, key="corr_power", filename=f"idcor_power_{attack}")
    caption(f"Each dot: IdCor's permutation p on a random subset of this many pairs ({power['repeats']} subsets per "
            f"size, {power['permutations']} permutations); line: their median; red: p = {power.get('alpha', 0.05):g}; "
            f"green: this experiment's N = {stats['n']}. Below the red line the test calls the pairing significant. "
            f"Pairs for a median p < {power.get('alpha', 0.05):g}: {pairs_needed_text(power)}"
            + (" (extrapolated with z ∝ √N: a rough guide, a factor of two either way)."
               if power.get("pairs_needed_method") == "extrapolated" else "."))


def render_noise_ceiling(experiment: Experiment) -> None:
    """Two trainings of the essential maps against each other, beside every attack's pairs."""
    ceiling = experiment.noise_ceiling()
    if ceiling is None:
        return
    st.subheader("Noise ceiling: the essential maps trained twice")
    if ceiling.get("cosine_mean") is None:
        st.warning(f"The noise ceiling could not be computed: {ceiling.get('error', 'unknown reason')}")
        return
    metrics = {"cosine": "cosine_mean", "SVCCA": "svcca", "CKA": "cka", "IdCor": "idcor"}
    attacks = {attack_label(k): [(experiment.correlation(k) or {}).get(v) if v != "cka" else
                                 ((experiment.statistics(k) or {}).get("full") or {}).get("cka")
                                 for v in metrics.values()] for k in experiment.attack_keys}
    chart(figures.noise_ceiling_figure(list(metrics), [ceiling.get(v) for v in metrics.values()], attacks,
                                       "Noise ceiling beside the essential–adversarial similarity"),
          key="corr_ceiling", filename="noise_ceiling")
    orders = {True: "BatchNorm folded into the convolutions", False: "BatchNorm as a separate layer"}
    caption(f"Grey: the essential maps of N = {ceiling['n']} images trained a second time with another operation "
            f"order ({orders[ceiling['fold_batchnorm']]}, then {orders[ceiling['repeat_fold_batchnorm']]}: the same "
            "function up to rounding), compared with the first training. That is as alike as two sets of these maps "
            "can be when only rounding differs, so an essential–adversarial similarity (coloured) near the grey bar "
            "would be as high as these maps allow. "
            f"{ceiling['kept_first_only']} images kept a map in the first training only, "
            f"{ceiling['kept_repeat_only']} in the second only.")


def render_distributions(experiment: Experiment, attack: str) -> None:
    summary = experiment.correlation(attack)
    if summary is None:
        return
    if summary.get("error"):
        st.warning(f"{attack_label(attack)}: {summary['error']}")
        return
    cols = st.columns(2)
    with cols[0]:
        repaired = repaired_cosines(experiment, attack)
        fig = figures.cosine_histogram_figure(summary["cosine"], repaired,
                                              f"Cosine similarity per image pair, {attack_label(attack)}")
        stored = summary.get("repaired_cosine_mean")
        if not len(repaired) and stored is not None:  # no maps to re-pair (results-only copy): the stored mean
            left = stored < float(np.mean(summary["cosine"])) if len(summary["cosine"]) else False
            fig.add_vline(x=stored, line_dash="dash", line_color="#ff7f0e", annotation_text=f"re-paired mean {stored:.2f}",
                          annotation_font_color="#ff7f0e", annotation_position="top left" if left else "top right")
        chart(fig, key="corr_cosine_hist", filename=f"cosine_{attack}")
        caption("Blue: each image's essential map against its own adversarial map. Orange: against another "
                "image's adversarial map (random re-pairings). The gap between the two is what the pairing adds."
                + (" This copy holds no maps, so only the re-paired mean is drawn." if experiment.maps_dropped else ""))
    with cols[1]:
        fig = figures.null_distribution_figure(summary["null_ids"], float(summary["id_joint"]), summary.get("p_value"),
                                               f"IdCor permutation test, {attack_label(attack)}")
        chart(fig, key="corr_null", filename=f"idcor_null_{attack}")
        caption(f"Grey: the intrinsic dimension of [essential | adversarial] when the adversarial maps are "
                f"shuffled between images ({summary.get('permutations', len(summary['null_ids']))} times). Red: the "
                f"true pairing, ID {summary['id_joint']:.2f} (essential {summary.get('id_a', float('nan')):.2f}, "
                f"adversarial {summary.get('id_b', float('nan')):.2f}). Related sets share dimensions, so the true "
                "joint ID falls below the shuffled ones; p = (shuffles with a lower joint ID + 1) / (shuffles + 1)."
                + (f" In IdCor: {summary['idcor']:.2f} observed, {null_median:.2f} for the median shuffle."
                   if (null_median := null_idcor_median(summary)) is not None and summary.get("idcor") is not None
                   else ""))
        html_download(fig, key="corr_null_html", filename=f"idcor_null_{attack}.html")


def render_per_class(experiment: Experiment, attack: str) -> None:
    summary = experiment.correlation(attack)
    if summary is None or summary.get("error"):
        return
    st.subheader("Per class")
    classes = experiment.classes
    labels = experiment.labels()[summary["positions"]]
    cosines = summary["cosine"]
    counts = np.bincount(labels, minlength=len(classes))
    means = np.array([cosines[labels == c].mean() if counts[c] else np.nan for c in range(len(classes))])
    stds = np.array([cosines[labels == c].std() if counts[c] else np.nan for c in range(len(classes))])
    chart(figures.per_class_figure(classes, means, stds, counts, f"Cosine similarity by class, {attack_label(attack)}"),
          key="corr_per_class", filename=f"per_class_{attack}")
    caption("Mean ± standard deviation of the per-pair cosine within each true class (N pairs under each name). "
            "Classes with few pairs give noisy numbers; IdCor is not split by class because estimating an "
            "intrinsic dimension needs many points.")
    averages = class_averages(experiment, attack)
    if averages:
        fig = figures.map_pair_grid_figure(
            [("essential", averages["essential"]), ("adversarial", averages["adversarial"])],
            [f"{c}<br>({n})" for c, n in zip(classes, averages["counts"], strict=True)],
            f"Class-averaged maps (channel mean), {attack_label(attack)}",
        )
        chart(fig, key="corr_class_maps", filename=f"class_averaged_maps_{attack}")
        caption("Top row: the average essential map of the images of each class; bottom row: their average "
                "adversarial map (images with both maps, count in brackets). Each panel spans the frequencies "
                "−H/2 … H/2 − 1 cycles/image on both axes, zero frequency in the centre. Similar rows mean the attack targets "
                "the frequencies the class relies on." + (" Large maps are shown pooled to 32×32."
                                                          if experiment.config.image_size > 32 else ""))
    elif experiment.maps_dropped:
        show_results_only(experiment, "the class-averaged maps")


def render_eps_sweep(experiment: Experiment) -> None:
    pgd = [k for k in keys_of_attack(experiment.attack_keys, "pgd", plain=True) if eps_of(k) is not None]
    if not pgd:
        return
    st.subheader("PGD: budget ε sweep (Table III)")
    eps = [eps_of(k) for k in pgd]
    summaries = [experiment.correlation(k) or {} for k in pgd]
    series = {
        "attack success rate": [experiment.stage(attack_stage(TEST, k)).get("success_rate") for k in pgd],
        "IdCor": [s.get("idcor") for s in summaries],
        "cosine mean": [s.get("cosine_mean") for s in summaries],
        "SVCCA": [s.get("svcca") for s in summaries],
    }
    paper_eps = sorted(TABLE_III)
    paper = {"attack success rate": [TABLE_III[e]["success_rate"] for e in paper_eps],
             "IdCor": [TABLE_III[e]["idcor"] for e in paper_eps]}
    show_paper = experiment.config.model == "resnet20" and experiment.config.image_size <= 32
    chart(figures.eps_sweep_figure(eps, series, paper if show_paper else None, paper_eps if show_paper else [],
                                   "Success rate and correlation against the PGD budget"),
          key="corr_eps_sweep", filename="pgd_eps_sweep")
    note = "" if len(pgd) > 1 else " This experiment holds one ε only; build more with --eps 1 3 8."
    caption("Solid: this experiment; dashed: the paper's Table III (ResNet-20 on CIFAR-10). A larger budget "
            "fools the model more often; the paper finds the correlation (IdCor) about the same at every ε." + note)


through_app()
st.title("Correlations")
current = require_experiment()
render_table(current)
render_per_basis(current)
render_statistics(current)
params = correlations_ui(current)
if params["attack"] is not None:
    render_distributions(current, params["attack"])
    render_power(current, params["attack"])
    render_per_class(current, params["attack"])
render_eps_sweep(current)
render_noise_ceiling(current)
