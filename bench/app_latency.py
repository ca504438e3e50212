"""How responsive is the app? Time to the first rendered page, and image switching in Explore.

Starts `streamlit run app.py` on localhost and drives headless Chromium (Playwright, Debian's
/usr/bin/chromium) like a user:
  1. first page: Chromium is launched while the server starts (the browser's own start-up is the
     user's, not the app's); the clock starts at the health check's first "ok" and stops when the
     Home page's first picture (the Fig. 1 rows' first st.image) has loaded and is drawn; the whole
     picture (every panel loaded, the script run finished) is reported too. Twice: a fresh browser
     context (cold browser cache, cold server) and, after the Explore clicks below, a second visit in
     a new tab of the same context (warm browser cache, warm server; the clock starts at the navigation).
  2. Explore: click gallery images one after another (first visit: computed; second: cached) and
     time each click, in the page's own clock, until the new image's heading is there and until the
     page shows the new state (script run finished, nothing stale, every picture loaded, two frames
     painted): in the default pictures mode, then in interactive (Plotly) mode for comparison (there
     "drawn" is approximate: Plotly may finish drawing its charts a little later).
  3. Defence: pick images in the live defence's select box (first visit: the model runs; second: cached),
     timed the same way from the Enter that picks the option.
Targets: first page within 2 s, a cached image switch within 300 ms.

    python -m bench.app_latency                 # what a fresh clone shows: the shipped experiments only
    python -m bench.app_latency --cache DIR     # only the experiments under DIR
    python -m bench.app_latency --cache ''      # whatever the app finds (./cache too: checked on the first page)
    python -m bench.app_latency --images 6      # gallery images to switch between
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

from bench.page_js import PICTURES_LOADED_JS

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The longest any wait may take (the first Defence pick imports torch and loads the model: seconds): a page that
# never gets there fails with Playwright's message naming what it waited for, instead of hanging the benchmark.
WAIT_MS = 120_000

SHIPPED = os.pathsep.join(str(REPO / "assets" / d) for d in ("demo", "results"))  # a fresh clone's experiments


def start_server(cache: str | None, app_dir: Path = REPO) -> tuple[subprocess.Popen, str, float]:
    """Start `streamlit run app.py` (the README's command, so .streamlit/config.toml applies) without waiting
    for it -> (process, url, start time).

    cache: os.pathsep-separated directories, the only ones the app shows; None or "": all it finds.
    app_dir: the directory holding app.py (bench/first_page.py's baselines run elsewhere)."""
    env = dict(os.environ, GIT_PYTHON_REFRESH="quiet")
    if cache:
        env.update(FMAPS_CACHE=os.pathsep.join(os.path.abspath(d) for d in cache.split(os.pathsep)), FMAPS_ONLY="1")
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=app_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}", started


def wait_ready(process: subprocess.Popen, url: str, timeout_s: float = 300) -> float:
    """Poll the health check every 20 ms -> the time of its first "ok"."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return time.perf_counter()
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with code {process.returncode}") from None
            time.sleep(0.02)
    process.kill()
    raise SystemExit(f"the server did not start within {timeout_s:.0f} s")


IDLE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.getAttribute('data-test-script-state');
    return state === 'notRunning' && document.querySelectorAll('[data-stale="true"]').length === 0;
}"""


# The first picture of the main area (on Home: the Fig. 1 rows' first panel) has loaded and has a size.
FIRST_PICTURE_JS = """() => {
    const img = document.querySelector('[data-testid="stMain"] [data-testid="stImage"] img');
    return !!img && img.complete && img.naturalWidth > 0;
}"""


def idle(page) -> None:
    """Until the script run has finished, no element is stale and every picture has loaded (the page shows
    the new state), then one painted frame."""
    page.wait_for_function(IDLE_JS, timeout=WAIT_MS, polling=20)
    page.wait_for_function(PICTURES_LOADED_JS, timeout=WAIT_MS, polling=20)
    page.evaluate("() => new Promise(requestAnimationFrame)")


# The main area's title is drawn: the page shows its text and widgets (pictures may still be on their way).
FIRST_TITLE_JS = """() => {
    const h1 = document.querySelector('[data-testid="stMain"] h1');
    return !!h1 && h1.innerText.trim().length > 0;
}"""


def first_page(page, url: str, start: float) -> tuple[float, float, float]:
    """Open Home -> seconds from `start` to its first picture drawn, to the whole page drawn, and (in between,
    for reference) to its title drawn. The first picture is the measure the 2-s target is read against."""
    page.goto(url)
    page.wait_for_function(FIRST_TITLE_JS, timeout=WAIT_MS, polling=10)
    page.evaluate("() => new Promise(requestAnimationFrame)")  # painted
    title = time.perf_counter() - start
    page.wait_for_function(FIRST_PICTURE_JS, timeout=WAIT_MS, polling=10)
    page.evaluate("() => new Promise(requestAnimationFrame)")  # painted
    first = time.perf_counter() - start
    idle(page)
    return first, time.perf_counter() - start, title


# Click a gallery button and time, in the page's own clock (no round trips to Playwright), until the new image's
# heading is there and then until the page shows the new state: script run finished, no stale element, every
# picture loaded; checked at every animation frame, so a time is that of the frame that painted it.
SWITCH_JS = """({number, waitMs}) => new Promise((resolve, reject) => {
    const button = [...document.querySelectorAll('.fmaps-gallery button')]
        .find(b => b.innerText.trim() === number);
    if (!button) { reject(new Error('no gallery button ' + number)); return; }
    const idle = (IDLE_JS);
    const loaded = (PICTURES_LOADED_JS);
    const start = performance.now();
    let heading = null;
    let settled = 0;
    button.click();
    const check = () => {
        const now = performance.now();
        if (now - start > waitMs) { reject(new Error('image ' + number + ' did not show')); return; }
        const headings = [...document.querySelectorAll('h3')];
        if (heading === null && headings.some(h => h.innerText.startsWith('Image ' + number + ' ·'))) heading = now - start;
        settled = heading !== null && idle() && loaded() ? settled + 1 : 0;
        if (settled === 2) { resolve([heading / 1000, (now - start) / 1000]); return; }  // 2 frames: drawn, painted
        requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
})""".replace("IDLE_JS", IDLE_JS).replace("PICTURES_LOADED_JS", PICTURES_LOADED_JS)


def switch_images(page, numbers: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    """Click each gallery number twice over -> {"first visit" | "cached": (heading times, drawn times)} (s)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for label in ("first visit", "cached"):
        headings: list[float] = []
        drawn: list[float] = []
        for number in numbers:
            heading, done = page.evaluate(SWITCH_JS, {"number": number, "waitMs": WAIT_MS})
            headings.append(heading)  # the server answered, the page updates
            drawn.append(done)
            idle(page)
        out[label] = (headings, drawn)
    return out


# Press Enter in the focused select box (an option already typed) and time, in the page's own clock, until the
# script run that follows has finished and every picture has loaded (two painted frames).
SELECT_JS = """(waitMs) => new Promise((resolve, reject) => {
    const idle = (IDLE_JS);
    const loaded = (PICTURES_LOADED_JS);
    const pictures = () => [...document.querySelectorAll('[data-testid="stMain"] img')].map(i => i.src).join(' ');
    const before = pictures();
    const input = document.activeElement;
    const start = performance.now();
    let started = false;
    let settled = 0;
    input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode: 13, bubbles: true}));
    const check = () => {
        if (performance.now() - start > waitMs) { reject(new Error('the pick did not rerun the page')); return; }
        // the rerun has begun: seen running, or (a rerun too quick to catch between two frames) new pictures
        if (!started) { started = !idle() || pictures() !== before; requestAnimationFrame(check); return; }
        settled = idle() && loaded() ? settled + 1 : 0;
        if (settled === 2) { resolve((performance.now() - start) / 1000); return; }
        requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
})""".replace("IDLE_JS", IDLE_JS).replace("PICTURES_LOADED_JS", PICTURES_LOADED_JS)


def defence_switches(page, url: str, count: int) -> dict[str, list[float]]:
    """Pick `count` images in the Defence page's live select box, twice over -> {"first visit" | "cached": s}."""
    page.goto(f"{url}/defence")
    page.get_by_role("heading", name="Live: defend one image").wait_for()
    idle(page)
    box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Image", exact=True)).first
    out: dict[str, list[float]] = {}
    for label in ("first visit", "cached"):
        times = []
        for number in range(1, count + 1):
            box.locator("input").click()
            page.keyboard.type(f"#{number} ")
            page.wait_for_timeout(300)  # the option list filtered
            times.append(page.evaluate(SELECT_JS, WAIT_MS))
            idle(page)
        out[label] = times
    return out


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=SHIPPED,
                        help="only the experiments under these directories (os.pathsep-separated; FMAPS_CACHE + "
                             "FMAPS_ONLY); default: the shipped ones, as on a fresh clone; '': all the app finds")
    parser.add_argument("--images", type=int, default=6, help="gallery images to switch between")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    process, url, started = start_server(args.cache)
    try:
        with sync_playwright() as p:
            launch = time.perf_counter()
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            launched = time.perf_counter() - launch
            ready = wait_ready(process, url)
            cold = first_page(page, url, ready)
            print(f"server start (process -> health ok): {ms(ready - started)}; Chromium launched meanwhile in "
                  f"{ms(launched)} (neither counted below)")
            print(f"first page, fresh browser (cold browser cache, cold server): health ok -> first Home picture "
                  f"drawn {ms(cold[0])}, whole page drawn {ms(cold[1])}   (target < 2000 ms); title drawn {ms(cold[2])}",
                  flush=True)

            page.goto(f"{url}/explore")
            page.get_by_role("heading", name="Explore one image").wait_for()
            idle(page)
            shown = page.get_by_text(re.compile(r"Image #\d+ ·")).first.inner_text()
            current = re.search(r"#\d+", shown).group(0)
            buttons = page.locator('.fmaps-gallery button').filter(has_text=re.compile(r"^#\d+$"))
            numbers = [n for n in (buttons.nth(i).inner_text() for i in range(buttons.count())) if n != current]
            numbers = numbers[:args.images]  # every click changes the image shown
            print_switches("pictures (default)", switch_images(page, numbers))
            page.get_by_text("Interactive charts (zoom, hover values)").click()
            page.wait_for_timeout(300)
            idle(page)
            print_switches("interactive charts", switch_images(page, numbers))
            for label, times in defence_switches(page, url, args.images).items():
                print(f"Defence live image switch, pictures (default), {label}: all drawn after median "
                      f"{ms(statistics.median(times))} (max {ms(max(times))}) over {len(times)} picks", flush=True)
            second_tab = context.new_page()  # after Explore: the server has imported torch and loaded the model
            warm = first_page(second_tab, url, time.perf_counter())
            print(f"first page, second visit in a new tab (warm browser cache, warm server): navigation -> first Home "
                  f"picture drawn {ms(warm[0])}, whole page drawn {ms(warm[1])}; title drawn {ms(warm[2])}")
            browser.close()
    finally:
        process.terminate()
        process.wait(10)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


def print_switches(mode: str, timings: dict) -> None:
    """One line per visit (first, cached) of `switch_images`' timings -> stdout, at once."""
    for label, (headings, drawn) in timings.items():
        print(f"Explore image switch, {mode}, {label}: new heading after median {ms(statistics.median(headings))}, "
              f"all drawn after median {ms(statistics.median(drawn))} (max {ms(max(drawn))}) over {len(drawn)} "
              "clicks" + ("   (target < 300 ms)" if label == "cached" and mode.startswith("pictures") else ""),
              flush=True)


if __name__ == "__main__":
    main()
