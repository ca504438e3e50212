"""Per-session state, set up once behind a guard. User data lives here only (never in module globals).

Keys:
    lab_result     ImageViews | None   the last live training's views with its LabRun (ui.compute.train_live)
    lab_error      str | None    the last Lab error shown to the user
    lab_figures    dict          the Plotly figures of lab_result (built once per result)
    explore_image  int            (widget) the image picked in Explore; set by gallery buttons too
"""

from __future__ import annotations

import streamlit as st

DEFAULTS: dict[str, object] = {
    "lab_result": None,
    "lab_error": None,
}


def init_state() -> None:
    """Fill in the defaults the first time a session runs (later runs keep what the user did)."""
    if st.session_state.get("_state_ready"):
        return
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    st.session_state["_state_ready"] = True


def set_value(key: str, value: object) -> None:
    """Widget callback helper: put `value` into session state under `key`."""
    st.session_state[key] = value
