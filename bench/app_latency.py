"""How responsive is the app? Time to the first rendered page, and image switching in Explore.

Starts `streamlit run app.py` on localhost and drives headless Chromium (Playwright, Debian's
/usr/bin/chromium) like a user:
  1. first page: from the server answering its health check to the Home page's first chart drawn;
  2. Explore: click gallery images one after another (first visit: computed; second: cached) and
     time each click until the new image's heading and charts are on the screen.
Targets (issue 5): first page within 2 s, a cached image switch within 300 ms.

    python bench/app_latency.py                 # the experiments the app finds (the shipped demo)
    python bench/app_latency.py --cache DIR     # only the experiments under DIR
    python bench/app_latency.py --images 6      # gallery images to switch between
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cache: str | None) -> tuple[subprocess.Popen, str, float]:
    env = dict(os.environ, GIT_PYTHON_REFRESH="quiet")
    if cache:
        env.update(FMAPS_CACHE=os.path.abspath(cache), FMAPS_ONLY="1")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return process, url, time.perf_counter()
        except OSError:
            time.sleep(0.25)
    process.kill()
    raise SystemExit("the server did not start within 5 minutes")


IDLE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.getAttribute('data-test-script-state');
    return state === 'notRunning' && document.querySelectorAll('[data-stale="true"]').length === 0;
}"""


def idle(page) -> None:
    """Until the script run has finished and no element is stale (the page shows the new state)."""
    page.wait_for_function(IDLE_JS, timeout=600_000, polling=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="only the experiments under this directory (FMAPS_CACHE + FMAPS_ONLY)")
    parser.add_argument("--images", type=int, default=6, help="gallery images to switch between")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    process, url, ready = start_server(args.cache)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(600_000)
            page.goto(url)
            page.locator(".js-plotly-plot").first.wait_for()
            first_page = time.perf_counter() - ready
            idle(page)

            page.goto(f"{url}/explore")
            page.get_by_role("heading", name="Explore one image").wait_for()
            idle(page)
            buttons = page.locator('[data-testid="stButton"] button').filter(has_text=re.compile(r"^#\d+$"))
            numbers = [buttons.nth(i).inner_text() for i in range(min(args.images, buttons.count()))]
            timings: dict[str, list[float]] = {"first visit": [], "cached": []}
            headings: dict[str, list[float]] = {"first visit": [], "cached": []}
            for label in ("first visit", "cached"):
                for number in numbers:
                    start = time.perf_counter()
                    page.get_by_role("button", name=number, exact=True).click()
                    page.get_by_text(re.compile(rf"Image {re.escape(number)} ·")).first.wait_for()
                    headings[label].append(time.perf_counter() - start)  # the server answered, the page updates
                    idle(page)
                    page.evaluate("() => new Promise(requestAnimationFrame)")  # one painted frame after the last chart
                    timings[label].append(time.perf_counter() - start)
            browser.close()
    finally:
        process.terminate()
        process.wait(10)

    print(f"first page (health ok -> Home chart drawn): {1000 * first_page:.0f} ms   (target < 2000 ms)")
    for label, values in timings.items():
        if values:
            print(f"Explore image switch, {label}: new heading after median {1000 * statistics.median(headings[label]):.0f} ms, "
                  f"all charts drawn after median {1000 * statistics.median(values):.0f} ms (max {1000 * max(values):.0f} ms) "
                  f"over {len(values)} clicks" + ("   (target < 300 ms)" if label == "cached" else ""))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
