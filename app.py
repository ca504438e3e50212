"""The Streamlit app: explore essential and adversarial Fourier maps, their correlation and the defence.

Run from the project's root:

    streamlit run app.py

It reads experiments from the cache (assets/demo/, cache/, and the directories in FMAPS_CACHE;
FMAPS_ONLY=1 keeps only the latter) and never trains long jobs: build experiments with
`python -m precompute run`. This entry sets the page up, draws the sidebar's experiment picker
and runs the page the user chose; the pages live in pages/, their shared code in ui/.
"""

from __future__ import annotations

import os

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox (live attacks) imports GitPython

import streamlit as st  # noqa: E402

from ui.picker import experiment_picker  # noqa: E402
from ui.prewarm import prewarm_in_background  # noqa: E402
from ui.state import init_state  # noqa: E402

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/explore.py", title="Explore", icon=":material/image_search:"),
    st.Page("pages/correlations.py", title="Correlations", icon=":material/scatter_plot:"),
    st.Page("pages/defence.py", title="Defence", icon=":material/shield:"),
    st.Page("pages/lab.py", title="Lab", icon=":material/science:"),
    st.Page("pages/method.py", title="Method", icon=":material/menu_book:"),
]

# The icon is a file, not a Material symbol or an emoji: those the browser fetches from the internet.
ICON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "icon.png")  # a real class-level map
st.set_page_config(page_title="Frequency maps: implicit bias vs adversarial attacks", page_icon=ICON,
                   layout="wide")
init_state()
navigation = st.navigation(PAGES)
experiment_picker()
navigation.run()
prewarm_in_background()  # after the page is drawn: torch for the pages that need a model
