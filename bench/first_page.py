"""The first page against Streamlit's own floor: a fresh browser's time to the first picture, for the app and for
a bare Streamlit page (a title and one picture, same server settings), in alternating runs.

Issue 5's target is the app's first page within 2 s of the server being ready. On a slow machine most of that
is Streamlit's own JavaScript, which any Streamlit page pays: the bare page measures that floor on the same
machine, in the same process, so the app's own share is the difference (and the ratio) between the two.

    python bench/first_page.py              # 5 rounds, the shipped experiments (what a fresh clone shows)
    python bench/first_page.py --rounds 10

Each round starts a server, launches headless Chromium meanwhile (not counted), waits for the health check,
opens the page in a fresh browser context and stops the clock when the main area's first picture is drawn
(bench/app_latency.py's first-page measure).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from app_latency import ARGS, CHROMIUM, REPO, SHIPPED, first_page, start_server, wait_ready  # bench/ on sys.path

BARE_APP = '''import numpy as np
import streamlit as st

st.title("A bare Streamlit page")
st.image(np.full((96, 96, 3), 128, dtype=np.uint8), caption="one picture")
'''


def bare_app_dir(root: Path) -> Path:
    """A directory holding the bare app and a copy of the project's .streamlit/config.toml (same settings)."""
    (root / ".streamlit").mkdir(parents=True)
    shutil.copy(REPO / ".streamlit" / "config.toml", root / ".streamlit" / "config.toml")
    (root / "app.py").write_text(BARE_APP)
    return root


def time_first_picture(playwright: Any, app_dir: Path, cache: str | None) -> tuple[float, float]:
    """One cold start: seconds from the health check's first "ok" to the first picture drawn, and to the title.

    playwright: the started sync_playwright() object; cache: as start_server's (None for the bare page)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs of each page")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    app, bare, app_title = [], [], []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        bare_dir = bare_app_dir(Path(tmp) / "bare")
        for _ in range(args.rounds):
            bare.append(time_first_picture(p, bare_dir, None)[0])
            picture, title = time_first_picture(p, REPO, SHIPPED)
            app.append(picture)
            app_title.append(title)
            print(f"  bare {1000 * bare[-1]:.0f} ms, app {1000 * picture:.0f} ms (its title {1000 * title:.0f} ms)",
                  flush=True)
            time.sleep(0.5)
    med_app, med_bare = statistics.median(app), statistics.median(bare)
    print(f"first picture drawn, health ok -> picture, median of {args.rounds} (range): app {1000 * med_app:.0f} ms "
          f"({1000 * min(app):.0f}-{1000 * max(app):.0f}), bare Streamlit page {1000 * med_bare:.0f} ms "
          f"({1000 * min(bare):.0f}-{1000 * max(bare):.0f}); app / bare = {med_app / med_bare:.2f}, the app's own "
          f"share {1000 * (med_app - med_bare):.0f} ms   (target: app < 2000 ms); the app's title is drawn after "
          f"{1000 * statistics.median(app_title):.0f} ms ({1000 * min(app_title):.0f}-{1000 * max(app_title):.0f})")


if __name__ == "__main__":
    main()
