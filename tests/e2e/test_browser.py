"""End to end: `streamlit run app.py` on localhost, every page visited in headless Chromium (Playwright).

Checks each page's key elements, clicks through Explore (gallery, attack, pictures and interactive
charts) and the live defence, trains maps in the Lab, and saves full-page screenshots to
artifacts/screenshots/ (gitignored).
Uses the shipped demo (assets/demo/) when present, else a synthetic experiment
(tests/fake_experiment.py). Needs Debian's Chromium at /usr/bin/chromium (`apt-get install chromium`);
skipped with the reason when it is missing.

    python -m pytest tests/e2e -m e2e -q
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.page_js import IDLE_JS, PICTURES_LOADED_JS

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 180  # server start on a busy 2-core machine
RENDER_TIMEOUT_MS = 240_000  # the first render imports torch and builds the model

pytestmark = pytest.mark.e2e
PAGE_ERRORS: list[str] = []  # JavaScript errors the browser reported
OUTSIDE_REQUESTS: list[str] = []  # requests for anything not on this machine (the app must work offline)
LOCAL = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo_present() -> bool:
    demo = REPO / "assets" / "demo"
    return demo.is_dir() and any((d / "manifest.json").is_file() for d in demo.iterdir())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser test")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    env = dict(os.environ, GIT_PYTHON_REFRESH="quiet")
    if not _demo_present():
        from tests.conftest import AKAMASTER, CIFAR_TEST
        from tests.fake_experiment import cifar_pictures, write_fake_experiment

        root = tmp_path_factory.mktemp("cache")
        if CIFAR_TEST.is_dir() and AKAMASTER.is_file():  # real pictures and a real model when ../shared has them
            classes = tuple(sorted(os.listdir(CIFAR_TEST)))
            write_fake_experiment(str(root), n=12, classes=classes, images=cifar_pictures(str(CIFAR_TEST), 12, classes),
                                  checkpoint=str(AKAMASTER), input_norm="imagenet")
        else:
            write_fake_experiment(str(root), n=12)
        env.update(FMAPS_CACHE=str(root), FMAPS_ONLY="1")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.seek(0)
            pytest.fail(f"streamlit did not start within {START_TIMEOUT_S} s:\n{log.read()[-3000:]}")
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1500, "height": 1000}, device_scale_factor=1)
        tab = context.new_page()
        tab.set_default_timeout(RENDER_TIMEOUT_MS)
        tab.on("pageerror", lambda err: PAGE_ERRORS.append(str(err)))
        tab.on("request", lambda request: None if request.url.startswith(LOCAL) else OUTSIDE_REQUESTS.append(request.url))
        yield tab
        browser.close()






def settle(tab) -> None:
    """Wait until Streamlit has finished the script run, no element is stale and every picture has loaded,
    then let Plotly draw."""
    tab.wait_for_timeout(400)  # a click's rerun starts within this
    tab.wait_for_function(IDLE_JS, timeout=RENDER_TIMEOUT_MS, polling=200)
    tab.wait_for_function(PICTURES_LOADED_JS, timeout=RENDER_TIMEOUT_MS, polling=200)
    tab.wait_for_timeout(800)


def picture_captions(tab, at_least: int = 1) -> list[str]:
    """The captions under the main area's st.image pictures, in order, once there are `at_least` of them."""
    captions = tab.locator('[data-testid="stMain"] [data-testid="stImageCaption"]')
    captions.nth(at_least - 1).wait_for()
    return [text.strip() for text in captions.all_inner_texts()]


def no_exceptions(tab) -> None:
    assert tab.locator('[data-testid="stException"]').count() == 0, tab.locator('[data-testid="stException"]').first.inner_text()
    assert not PAGE_ERRORS, PAGE_ERRORS


def open_page(tab, server: str, path: str, heading: str) -> None:
    tab.goto(f"{server}/{path}")
    tab.get_by_role("heading", name=heading).first.wait_for()
    settle(tab)
    no_exceptions(tab)


def shoot(tab, name: str) -> None:
    """Save the whole page: Streamlit scrolls inside its main block, so grow the window to its height first."""
    height = tab.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                          " return m ? m.scrollHeight : document.body.scrollHeight; }")
    tab.set_viewport_size({"width": 1500, "height": int(min(max(1000, height + 40), 16000))})
    tab.wait_for_timeout(1500)  # let Plotly re-lay out
    settle(tab)
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    tab.set_viewport_size({"width": 1500, "height": 1000})


def choose(tab, label: str, text: str) -> None:
    """Pick the option containing `text` in the select box labelled `label` (type to filter, then Enter)."""
    box = tab.locator('[data-testid="stSelectbox"]').filter(has=tab.get_by_text(label, exact=True)).first
    box.locator("input").click()
    tab.keyboard.type(text)
    tab.wait_for_timeout(300)
    tab.keyboard.press("Enter")
    settle(tab)


def test_first_visit_to_a_page_address(page, server):
    """The server's very first request is a page's own address (a bookmark, a tab reconnecting after a
    restart): the page must still run through app.py, with its title, the picker and the named pages.
    Must stay the module's first test: afterwards the server has left Streamlit's pages/ fallback."""
    open_page(page, server, "method", "How it works")
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_text("Experiment to show").count() == 1
    assert sidebar.get_by_role("link", name="Home").count() == 1
    assert sidebar.get_by_role("link", name="app").count() == 0
    assert page.url.rstrip("/").endswith("/method")


def test_home(page, server):
    open_page(page, server, "", "Essential and adversarial frequencies of an image classifier")
    # the Fig. 1 picture: 3 rows of 4 pictures (original, adversarial, both filtered), no Plotly on the first page
    captions = picture_captions(page, 12)
    assert len(captions) == 12 and all("predicted: " in c for c in captions), captions
    assert page.get_by_text("D: B × adversarial map", exact=True).count() == 1
    assert page.locator(".js-plotly-plot").count() == 0
    assert page.get_by_text("python -m precompute run --preset cifar10-paper").count() >= 1
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_text("Experiment to show").count() == 1
    for name in ("Explore", "Correlations", "Defence", "Lab", "Method"):
        assert sidebar.get_by_role("link", name=name).count() == 1
    shoot(page, "home")


def test_explore_click_through(page, server):
    open_page(page, server, "explore", "Explore one image")
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Experiment to show").count() == 1  # on every page
    page.get_by_role("button", name="#3", exact=True).click()
    settle(page)
    page.get_by_text(re.compile(r"Image #3 ·")).first.wait_for()
    choose(page, "Attack", "PGD")
    page.get_by_text(re.compile(r"attack: PGD")).first.wait_for()
    no_exceptions(page)
    # pictures (the default): every view, the top-3 classes and the radial profile as tables, no Plotly
    captions = picture_captions(page, 19)  # images 3, RGB maps 2, channels 6 + bar, filtered 2, spectra 4 + bar
    for start in ("Clean image ·", "Adversarial image ·", "Perturbation, amplified", "Essential map, RGB composite",
                  "Adversarial map, RGB composite", "essential map · red channel", "adversarial map · blue channel",
                  "map value:", "Clean image × essential map", "Adversarial image × adversarial map",
                  "Spectrum of the clean image", "Spectrum of the filtered adversarial image", "log(1 + |F x|)"):
        assert sum(c.startswith(start) for c in captions) == 1, (start, captions)
    assert page.get_by_role("columnheader", name="clean × essential map").count() == 1  # the top-3 table
    assert page.get_by_role("columnheader", name="radius (cycles/image)").count() == 1
    assert page.locator(".js-plotly-plot").count() == 0
    shoot(page, "explore")
    # the same views as interactive Plotly charts, one click away
    page.get_by_text("Interactive charts (zoom, hover values)").click()
    settle(page)
    page.locator(".js-plotly-plot").nth(6).wait_for()  # images, top 3, RGB maps, radial, channels, filtered, spectra
    no_exceptions(page)
    shoot(page, "explore_interactive")


def test_correlations(page, server):
    open_page(page, server, "correlations", "Correlations")
    assert page.locator('[data-testid="stDataFrame"]').count() == 1
    page.locator(".js-plotly-plot").nth(3).wait_for()  # cosine histogram, null distribution, per class, class maps
    shoot(page, "correlations")


def test_defence_live(page, server):
    open_page(page, server, "defence", "Defence with class-level maps")
    choose(page, "Image", "#4 ")
    page.get_by_text(re.compile(r"Defended prediction:")).first.wait_for()
    assert page.get_by_text(re.compile(r"Defended prediction:")).count() == 2  # clean and adversarial
    assert page.get_by_text(re.compile(r"Table IV")).count() >= 1
    no_exceptions(page)
    shoot(page, "defence")


def test_lab_trains(page, server):
    open_page(page, server, "lab", "Lab: train maps live")
    for label, value in (("Step limit", "40"), ("No stop before step", "20")):
        field = page.get_by_role("spinbutton", name=label)
        field.fill(value)
        field.press("Enter")
        settle(page)
    page.get_by_role("button", name="Train the two maps").click()
    page.get_by_text(re.compile(r"Result for")).first.wait_for()
    settle(page)
    no_exceptions(page)
    shoot(page, "lab")



def kept_share(tab) -> float:
    """The mask editor's "Entries kept" metric, in percent."""
    metric = tab.locator('[data-testid="stMetric"]').filter(has=tab.get_by_text("Entries kept", exact=True)).first
    return float(metric.locator('[data-testid="stMetricValue"]').inner_text().strip().rstrip(" %"))


def test_lab_mask_editor(page, server):
    """The editor from all ones: a low-pass band keeps fewer entries and the filtered image and top 3 follow;
    clicking one coefficient of the heat map flips it; the mask downloads."""
    open_page(page, server, "lab", "Lab: train maps live")
    page.get_by_text("Open the mask editor").click()
    settle(page)
    choose(page, "Start from", "all ones")
    assert kept_share(page) == 100.0
    page.get_by_text("the image filtered by the mask").first.wait_for()
    assert page.get_by_text("The model's top 3 through the mask").count() == 1
    page.locator('[data-testid="stRadio"]').filter(has=page.get_by_text("Radial band", exact=True)).get_by_text(
        "low-pass", exact=True).click()
    settle(page)
    low_pass = kept_share(page)
    assert 0 < low_pass < 100, low_pass  # radius 4 of 16 cycles per image: a small disc of the spectrum
    no_exceptions(page)
    # one click on the heat map's plot area flips the coefficient under it (the centre: the zero frequency, kept)
    plots = page.locator('[data-testid="stMain"] .js-plotly-plot')
    assert plots.count() == 1, plots.count()
    drag = plots.first.locator(".nsewdrag").first
    drag.scroll_into_view_if_needed()
    area = drag.bounding_box()  # in the viewport's coordinates, now that it is in view
    centre = (area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    page.mouse.move(*centre)
    page.wait_for_timeout(300)  # Plotly finds the point under the pointer on hover
    page.mouse.click(*centre)
    settle(page)
    clicked = kept_share(page)
    assert clicked < low_pass, (clicked, low_pass)  # 1 coefficient of 1024 per channel removed: 0.1 points
    assert page.get_by_role("button", name="Clear the clicks").is_enabled()
    with page.expect_download() as download:
        page.get_by_role("button", name="Mask (.npy)").click()
    assert download.value.suggested_filename == "mask_fourier.npy"
    no_exceptions(page)
    shoot(page, "lab_editor")

def test_method(page, server):
    open_page(page, server, "method", "How it works")
    assert page.locator(".katex").count() >= 6  # the formulas rendered
    shoot(page, "method")


def test_nothing_was_fetched_from_outside(page, server):
    """Last, after every page and click above: the browser asked nothing of the internet (a Material-symbol
    page icon, for one, is fetched from fonts.gstatic.com)."""
    assert OUTSIDE_REQUESTS == []
