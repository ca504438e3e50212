"""Streamlit building blocks the pages share: a Plotly chart with a PNG button, its HTML download, a teaching
caption, and a row of pictures as one st.image element.

One image's full set of views (Explore and the Lab) is drawn by ui.pair_views with these.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st

from ui import figures
from ui.downloads import figure_html
from ui.pictures import Shown


def chart(fig: go.Figure, key: str, filename: str | None = None) -> None:
    """A Plotly chart whose toolbar camera button saves a PNG (browser-rendered; no kaleido needed)."""
    st.plotly_chart(fig, key=key, config=figures.figure_config(filename or key))


def html_download(fig: go.Figure, key: str, filename: str, label: str = "Figure (interactive HTML)") -> None:
    """Download button that builds the figure's standalone HTML only when clicked."""
    st.download_button(label, data=lambda: figure_html(fig), file_name=filename, mime="text/html", key=key)


def caption(text: str) -> None:
    """A teaching caption under a view."""
    st.caption(text)


def show_pictures(row: Sequence[Shown], where: object = st) -> None:
    """Panels side by side as one st.image element, each at its own pixel size (crisp pixels, no browser
    scaling), the caption under each; as panels of one size share a width, rows of different sections line up.

    One element per row rather than a column per panel: every element is a message to send and a
    component to draw, and an image switch redraws them all.
    """
    if row:
        where.image([png for png, _, _ in row], caption=[text for _, text, _ in row], width=row[0][2],
                    output_format="PNG")
