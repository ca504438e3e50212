"""Make every page run through app.py, also when a browser opens a page's address first.

Streamlit treats a `pages/` folder beside the entry script as a v1 multipage app until the entry script
has called `st.navigation` once in the server process. Until then, a first request for `/correlations`
(a bookmark, or a browser tab reconnecting after a server restart) runs pages/correlations.py on its
own: no experiment picker, no page titles, an "app" page in the sidebar. `through_app` notices that
case and runs app.py instead, in the same script run (so a click that started the run is kept);
app.py's `st.navigation` then runs this page again, as it always does.
"""

from __future__ import annotations

import runpy

import streamlit as st

from core.paths import repo_path

APP = repo_path("app.py")


def through_app() -> None:
    """Call first in every page file: when Streamlit ran this page on its own, run app.py and stop."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the v1 pages mode: nothing to fix
        return
    if PagesManager.uses_pages_directory:  # True only until st.navigation runs (AppTest resets it every run)
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(APP), run_name="__main__")  # its st.navigation runs the requested page
        st.stop()  # this copy of the page has drawn nothing; the one app.py ran is the page
