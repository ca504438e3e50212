"""The sidebar's experiment picker (drawn by app.py on every run) and the pages' access to its choice.

Damaged experiments are listed with their problem and skipped; with no usable experiment every
page explains how to build one instead of failing.
"""

from __future__ import annotations

import os

import streamlit as st

from experiments.format import TEST, classify_dir, data_stage, npy_path
from experiments.reader import Experiment, ExperimentListing
from experiments.rebuild import rebuild_command
from experiments.store import CacheError
from ui.loaders import list_experiments, open_experiment
from ui.roots import BUILD_COMMAND, DEMO_ROOT, RESULTS_ROOT, USER_ROOT, cache_roots, roots_stamp

PICKER_KEY = "experiment"


def _listings() -> list[ExperimentListing]:
    roots = cache_roots()
    try:
        return list_experiments(tuple(roots), roots_stamp(roots))
    except OSError as err:  # an unreadable cache root: say so, show nothing from it
        st.sidebar.error(f"Could not read the experiment caches: {err}")
        return []


def _origin(path: str) -> str:
    parent = os.path.dirname(os.path.abspath(path))
    if parent == DEMO_ROOT:
        return "shipped demo"
    if parent == RESULTS_ROOT:
        return "shipped results"
    if parent == USER_ROOT or parent == os.path.abspath("cache"):
        return "cache/"
    return parent


def _label(item: ExperimentListing) -> str:
    """The picker's name for an experiment: its description and where it was found."""
    return f"{item.describe()} [{_origin(item.path)}]"


def experiment_picker() -> None:
    """Sidebar: a select box over the usable experiments, then the damaged ones with their problems."""
    listings = _listings()
    usable = [item for item in listings if item.ok]
    damaged = [item for item in listings if not item.ok]
    labels = {item.path: _label(item) for item in usable}
    with st.sidebar:
        st.subheader("Experiment")
        if usable:
            picked = st.selectbox("Experiment to show", options=list(labels), format_func=labels.get, key=PICKER_KEY,
                                  help="Experiments found in assets/demo/, cache/ and the FMAPS_CACHE directories")
            st.caption(labels[picked])  # the whole label: the narrow box cuts it (the demo's "N=20" showed as "N=2")
        else:
            st.info(f"No experiment found. Build one with `{BUILD_COMMAND}`.")
        if damaged:
            with st.expander(f"{len(damaged)} damaged experiment(s) skipped", expanded=not usable):
                for item in damaged:
                    st.warning(f"**{item.id}**: {item.problems[0]}" + (f" (+{len(item.problems) - 1} more)" if len(item.problems) > 1 else ""))
        st.caption("Looked in: " + ", ".join(f"`{root}`" for root in cache_roots()))


def other_large_experiments(current: Experiment, at_least: int = 100) -> list[str]:
    """Picker labels of the usable experiments with at least `at_least` test images, other than `current`:
    what a reader of the small demo should switch to for numbers worth reading (the shipped reproduction)."""
    labels = []
    for item in _listings():
        if not item.ok or os.path.abspath(item.path) == os.path.abspath(current.path):
            continue
        n = item.stages.get(data_stage(TEST), {}).get("n")
        if isinstance(n, int) and n >= at_least:
            labels.append(_label(item))
    return labels


def current_experiment() -> Experiment | None:
    """The picked experiment, opened; None (with an error on the page) if there is none or it fails to open."""
    usable = [item.path for item in _listings() if item.ok]
    path = st.session_state.get(PICKER_KEY)
    if path not in usable:
        path = usable[0] if usable else None
    if path is None:
        return None
    try:
        experiment = open_experiment(path)
    except (CacheError, OSError, KeyError, ValueError) as err:
        st.error(f"Could not open the experiment {os.path.basename(path)}: {err}")
        return None
    if not experiment.has(npy_path(classify_dir(TEST), "probs")):  # a run still in progress, or stopped early
        st.warning(f"The experiment {experiment.id} is incomplete: its images are not classified yet. Finish it by "
                   "running its `python -m precompute run` command again (it resumes), or pick another one.")
        return None
    return experiment


def show_how_to_build() -> None:
    """The message every page shows when there is no experiment."""
    st.info(
        "No experiment to show yet. Build the demo (a few minutes on a CPU) from the project's root:\n\n"
        f"```\n{BUILD_COMMAND}\n```\n\nthen reload this page. The app also lists experiments in `assets/demo/`, "
        "`cache/` and any directory named in the `FMAPS_CACHE` environment variable."
    )


def show_results_only(experiment: Experiment, what: str) -> None:
    """The message shown in place of a view that needs the images or maps a pruned copy lacks."""
    gone = (["images", "adversarial images"] if not experiment.has_images else []) + \
        (["per-image maps"] if experiment.maps_dropped else [])
    gone_text = " and ".join([", ".join(gone[:-1]), gone[-1]] if len(gone) > 1 else gone) or "bulky arrays"
    kind = "a **results-only copy**" if experiment.results_only else "a trimmed copy"
    st.info(
        f"Not available here: {what}. This experiment is {kind}: its {gone_text} were dropped to keep the "
        "repository small (every number, per-pair cosine and null distribution is still here). Rebuild it in full "
        "(it needs the data set and the model's weights; it is written to `cache/`):"
        f"\n\n```\n{rebuild_command(experiment.config)}\n```"
    )


def require_experiment() -> Experiment:
    """The picked experiment, or the how-to-build message and the end of this page's run."""
    experiment = current_experiment()
    if experiment is None:
        show_how_to_build()
        st.stop()
    return experiment
