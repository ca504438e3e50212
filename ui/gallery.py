"""A clickable thumbnail gallery drawn as one page element (a Streamlit components v2 component).

Why not a column, an st.image and an st.button per thumbnail: each is an element the server sends and the
browser draws again on every rerun, and Explore reruns on every image switch. With 24 thumbnails that was
about 70 of the page's 136 messages and half of a cached switch's time (bench/app_latency.py). Here the
thumbnails travel as data URIs inside one element and the browser keeps its buttons between reruns,
only moving the highlight. Components v2 render in the page itself (no iframe), so the thumbnails are
ordinary buttons: keyboard and screen readers work, and tests find them by role and name ("#12").
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import streamlit as st
from PIL import Image

THUMB_PX = 64  # the drawn size of a thumbnail in CSS pixels
MAX_SENT_PX = 96  # larger pictures are sent downscaled to this side (JPEG); smaller ones exact (PNG)


class GalleryItem(NamedTuple):
    index: int  # what a click reports
    src: str  # the picture as a data URI (thumbnail_uri)
    title: str  # tooltip: what the number alone does not say (class, prediction, maps)


def thumbnail_uri(picture: np.ndarray) -> str:
    """uint8 (H, W, 3) picture -> a data URI to draw at THUMB_PX.

    Pictures up to MAX_SENT_PX a side are sent exactly (PNG; the browser enlarges them with crisp pixels);
    larger ones are downscaled (area averaging) and sent as JPEG, a few kB instead of a 224×224 PNG's 100.
    """
    picture = np.ascontiguousarray(picture, dtype=np.uint8)
    if picture.ndim != 3 or picture.shape[2] != 3:
        raise ValueError(f"expected a (H, W, 3) uint8 picture, got shape {picture.shape}")
    image = Image.fromarray(picture)
    buffer = io.BytesIO()
    if max(image.size) <= MAX_SENT_PX:
        image.save(buffer, format="PNG")
        mime = "image/png"
    else:
        image.thumbnail((MAX_SENT_PX, MAX_SENT_PX), Image.Resampling.BOX)  # keeps the aspect ratio
        image.save(buffer, format="JPEG", quality=88)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


_HTML = ""  # the script builds the grid: its content depends on the data

_CSS = f"""
.fmaps-gallery {{
    display: grid;
    grid-template-columns: repeat(auto-fill, minmax({THUMB_PX + 8}px, 1fr));
    gap: 0.4rem;
    font-family: var(--st-font);
}}
.fmaps-gallery button {{
    display: flex; flex-direction: column; align-items: center; gap: 0.15rem;
    padding: 3px; margin: 0; cursor: pointer;
    background: var(--st-background-color); color: var(--st-text-color);
    border: 1px solid var(--st-border-color); border-radius: var(--st-base-radius);
    font: inherit; font-size: 0.85rem; line-height: 1.2;
}}
.fmaps-gallery button:hover {{ border-color: var(--st-primary-color); color: var(--st-primary-color); }}
.fmaps-gallery button:focus-visible {{ outline: 2px solid var(--st-primary-color); outline-offset: 1px; }}
.fmaps-gallery button[aria-pressed="true"] {{
    border: 2px solid var(--st-primary-color); padding: 2px; font-weight: 600; color: var(--st-primary-color);
}}
.fmaps-gallery img {{
    width: {THUMB_PX}px; height: {THUMB_PX}px; object-fit: cover; display: block;
}}
"""

# Called on every rerun with the new data. The buttons are rebuilt only when the thumbnails change
# (data.version); otherwise only the highlight moves. One click listener on the grid reads the button.
_JS = """
export default function ({ data, parentElement, setTriggerValue }) {
    let grid = parentElement.querySelector(".fmaps-gallery");
    if (!grid) {
        grid = document.createElement("div");
        grid.className = "fmaps-gallery";
        grid.setAttribute("role", "group");
        parentElement.appendChild(grid);
    }
    grid.setAttribute("aria-label", data.label);
    grid.onclick = (event) => {
        const button = event.target.closest("button[data-index]");
        if (button) setTriggerValue("picked", Number(button.dataset.index));
    };
    if (grid.dataset.version !== data.version) {
        grid.replaceChildren(...data.items.map(([index, src, title]) => {
            const button = document.createElement("button");
            button.type = "button";
            button.dataset.index = String(index);
            button.title = title;
            const img = document.createElement("img");
            img.src = src;
            img.alt = "";
            // small pictures are sent exactly (PNG) and enlarged with crisp pixels; downscaled ones (JPEG) smoothly
            img.style.imageRendering = src.startsWith("data:image/png") ? "pixelated" : "auto";
            const number = document.createElement("span");
            number.textContent = "#" + index;
            button.append(img, number);
            return button;
        }));
        grid.dataset.version = data.version;
    }
    for (const button of grid.children) {
        button.setAttribute("aria-pressed", String(Number(button.dataset.index) === data.selected));
    }
}
"""


def _component() -> Callable:
    # Registered on every call (cheap; the same definition again is not a change), so that it exists in
    # whichever runtime runs the page, AppTest's included.
    return st.components.v2.component("fmaps_gallery", html=_HTML, css=_CSS, js=_JS, isolate_styles=False)


def image_gallery(items: Sequence[GalleryItem], selected: int | None, key: str, on_pick: Callable[[int], None],
                  label: str = "Gallery") -> None:
    """Thumbnails as buttons labelled "#index" in a responsive grid; the `selected` one is highlighted.

    Clicking one calls on_pick(index) as a callback, before the rerun it causes (so it may set the state of
    widgets drawn earlier on the page, such as an image picker).
    """
    version = hashlib.sha1("\n".join(f"{i.index}\t{i.src}" for i in items).encode()).hexdigest()[:16]

    def picked() -> None:
        value = st.session_state[key]["picked"]
        if value is not None:
            on_pick(int(value))

    data = {"items": [[int(i.index), i.src, i.title] for i in items], "selected": selected, "version": version,
            "label": label}
    _component()(key=key, data=data, on_picked_change=picked)


__all__ = ["MAX_SENT_PX", "THUMB_PX", "GalleryItem", "image_gallery", "thumbnail_uri"]
