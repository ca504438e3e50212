"""The first page against Streamlit's own floor: a fresh browser's time to the first picture, for the app, for the
bare skeleton of the app's structure, and for a bare Streamlit page, in alternating runs.

The target is the app's first page within 2 s of the server being ready. On a slow machine most of that
is Streamlit's own JavaScript, which any Streamlit page pays. Two baselines, with the same server settings
(a copy of .streamlit/config.toml), run in the same process and interleaved with the app:
  bare      a title and one picture;
  skeleton  the app's structure and nothing else: st.navigation over six st.Page files with the app's
            Material icons, a sidebar select box, then the same title and picture.
The app's own share is its difference from the skeleton.

    python -m bench.first_page              # 5 rounds, the shipped experiments (what a fresh clone shows)
    python -m bench.first_page --rounds 10

Each round starts a server, launches headless Chromium meanwhile (not counted), waits for the health check,
opens the page in a fresh browser context and stops the clock when the main area's first picture is drawn
(bench/app_latency.py's first-page measure); the time its title was drawn is printed beside.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.app_latency import ARGS, CHROMIUM, REPO, SHIPPED, first_page, start_server, wait_ready

PAGE = '''import numpy as np
import streamlit as st

st.title("A bare Streamlit page")
st.image(np.full((96, 96, 3), 128, dtype=np.uint8), caption="one picture")
'''

SKELETON_APP = '''import streamlit as st

ICONS = ["home", "image_search", "scatter_plot", "shield", "science", "menu_book"]  # the app's page icons
navigation = st.navigation([st.Page(f"pages/page_{i}.py", title=f"Page {i}", icon=f":material/{icon}:", default=i == 0)
                            for i, icon in enumerate(ICONS)])
with st.sidebar:
    st.subheader("Experiment")
    st.selectbox("Experiment to show", ["a small experiment", "a large experiment"])
navigation.run()
'''


def baseline_dir(root: Path, skeleton: bool) -> Path:
    """A directory holding a baseline app and a copy of the project's .streamlit/config.toml (same settings)."""
    (root / ".streamlit").mkdir(parents=True)
    shutil.copy(REPO / ".streamlit" / "config.toml", root / ".streamlit" / "config.toml")
    if not skeleton:
        (root / "app.py").write_text(PAGE)
        return root
    (root / "pages").mkdir()
    (root / "app.py").write_text(SKELETON_APP)
    (root / "pages" / "page_0.py").write_text(PAGE)
    for i in range(1, 6):
        (root / "pages" / f"page_{i}.py").write_text(f"import streamlit as st\n\nst.title('Page {i}')\n")
    return root


def time_first_picture(playwright: Any, app_dir: Path, cache: str | None) -> tuple[float, float]:
    """One cold start: seconds from the health check's first "ok" to the first picture drawn, and to the title.

    playwright: the started sync_playwright() object; cache: as start_server's (None for the baselines)."""
    process, url, _ = start_server(cache, app_dir)
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
        ready = wait_ready(process, url)
        first, _, title = first_page(page, url, ready)
        browser.close()
        return first, title
    finally:
        process.terminate()
        process.wait(10)


def summary(name: str, times: list[float]) -> str:
    return f"{name} {1000 * statistics.median(times):.0f} ms ({1000 * min(times):.0f}-{1000 * max(times):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs of each page")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    pictures: dict[str, list[float]] = {"bare": [], "skeleton": [], "app": []}
    titles: dict[str, list[float]] = {name: [] for name in pictures}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        dirs = {"bare": baseline_dir(Path(tmp) / "bare", skeleton=False),
                "skeleton": baseline_dir(Path(tmp) / "skeleton", skeleton=True), "app": REPO}
        for _ in range(args.rounds):
            for name, app_dir in dirs.items():
                picture, title = time_first_picture(p, app_dir, SHIPPED if name == "app" else None)
                pictures[name].append(picture)
                titles[name].append(title)
                time.sleep(0.5)
            print("  " + ", ".join(f"{name} {1000 * pictures[name][-1]:.0f} ms (title {1000 * titles[name][-1]:.0f})"
                                   for name in pictures), flush=True)
    med = {name: statistics.median(times) for name, times in pictures.items()}
    print(f"first picture drawn, health ok -> picture, median of {args.rounds} (range): "
          + ", ".join(summary(name, times) for name, times in pictures.items())
          + f"; app / skeleton = {med['app'] / med['skeleton']:.2f} (the app's own share "
          f"{1000 * (med['app'] - med['skeleton']):.0f} ms), app / bare = {med['app'] / med['bare']:.2f}   "
          "(target: app < 2000 ms)")
    print("title drawn, median (range): " + ", ".join(summary(name, times) for name, times in titles.items()))


if __name__ == "__main__":
    main()
