"""Many users at once: N concurrent sessions browse the app and train maps live in the Lab, over HTTP + WebSocket.

Starts `streamlit run app.py` on a free 127.0.0.1 port and opens one headless Chromium (Debian's
/usr/bin/chromium, Playwright) with one browser context per user, so each user is its own Streamlit
session (its own WebSocket, cookies and uploads). Then, for a bounded time:

- browsing sessions (about half) switch pages from the sidebar, click gallery images in Explore,
  change the attack, and now and then open the Lab, where they must see no one's upload or result;
- Lab sessions open the Lab, upload a PNG of their own (a solid colour per session with the session's
  number drawn on it, named load_sNN.png), set a small step limit and train the two maps live,
  waiting for the result; again while time is left.

Measured: every action's latency, from the click to the expected element being visible ("visible")
and to the script run having finished with nothing stale on the page ("settled"); errors
(exceptions and error messages shown on the page, JavaScript errors, lost connections, timeouts);
whether a Lab session had to wait for a live slot (ui/live.py shows "Waiting for a free slot"), and
the server's own count of slots held at once (the server runs with ui.live's semaphore wrapped in
one that logs each acquire and release; no file of the app is changed). Isolation: each Lab result
must name the session's own file; the upload preview, the downloaded clean image of the result and,
at the end, the preview again must be the session's own picture (nearest of all sessions' pictures,
within JPEG noise), never another session's; a browsing session that opens the Lab must see no
upload and no result.

    python -m bench.load_test                       # 10 sessions (5 browsing, 5 Lab), at most 180 s
    python -m bench.load_test --sessions 4 --seconds 120 --lab-steps 30
    python -m bench.load_test --cache DIR           # only the experiments under DIR

Exit status: 0; 1 if isolation failed (a session saw another's upload or result); 3 if more trainings
ran at once than the Lab's slot limit; 2 if no Lab result could be checked at all.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.page_js import IDLE_JS

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOST = "127.0.0.1"
RESERVE_S = 30.0  # no new action starts in the last RESERVE_S seconds of the hard limit; of those,
GRACE_S = 12.0  # waits begun before may run GRACE_S more, the final isolation check FINAL_S more, the rest: shutdown
FINAL_S = 10.0
MATCH_LIMIT = 12.0  # mean absolute difference (0-255) under which a picture counts as a session's own

PAGES = {  # sidebar link -> a heading only that page has
    "Home": "Essential and adversarial frequencies of an image classifier",
    "Explore": "Explore one image",
    "Correlations": "Correlations",
    "Defence": "Defence with class-level maps",
    "Lab": "Lab: train maps live",
    "Method": "How it works",
}
ATTACK_TEXT = {"FMN": "FMN", "PGD": "PGD", "DeepFool": "DeepFool"}  # option typed -> label in Explore's heading


# Lab sessions: browser-side times (Date.now(), one clock for all contexts) of the live-training texts, and
# when the script run the Train click started ("ran"), so that the end of that run can be told from an old page.
MARKS_JS = """(() => {
    window.__armed = false;
    window.__marks = {};
    const check = () => {
        if (!window.__armed || !document.body) return;
        const m = window.__marks, now = Date.now();
        const app = document.querySelector('[data-testid="stApp"]');
        if (!m.ran && app && app.getAttribute('data-test-script-state') === 'running') m.ran = now;
        if (m.done) return;
        const t = document.body.textContent;
        if (!m.start && !m.wait && t.includes('Waiting for a free slot')) m.wait = now;
        if (!m.start && (t.includes('Attacking the image') || t.includes('Training the maps'))) m.start = now;
        if (m.start && /Done in \\d/.test(t)) m.done = now;
    };
    new MutationObserver(check).observe(document, {subtree: true, childList: true, characterData: true,
                                                   attributes: true, attributeFilter: ['data-test-script-state']});
})();"""

EXCEPTION = '[data-testid="stException"]'
ERROR_MESSAGE = '[data-testid="stAlertContentError"]:not([data-testid="stException"] *)'  # st.error, not st.exception

# The script run started by the Train click has finished and the page shows its outcome: the result (after the
# progress bar's "Done in"), an error message or an exception. (Not just "the page says no run is going": after a
# WebSocket reconnect it may say so while the training still runs on the server.)
TRAINED_JS = """() => {
    const m = window.__marks || {};
    const app = document.querySelector('[data-testid="stApp"]');
    if (!m.ran || !app || app.getAttribute('data-test-script-state') !== 'notRunning'
        || document.querySelectorAll('[data-stale="true"]').length) return false;
    const fresh = e => !e.closest('[data-stale="true"]');
    const result = [...document.querySelectorAll('h3')].some(h => h.textContent.startsWith('Result for') && fresh(h));
    return (!!m.done && result) || [...document.querySelectorAll('[data-testid="stAlertContentError"], '
        + '[data-testid="stException"]')].some(fresh);
}"""


class TimeUp(Exception):
    """The load phase is over (not an error)."""


@dataclass
class Stats:
    visible: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    settled: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (session, kind, detail)
    isolation: list[tuple[str, str, bool, str]] = field(default_factory=list)  # (session, check, ok, detail)
    trainings: list[dict] = field(default_factory=list)  # session, waited, click/start/done/result times
    cut_off: int = 0  # trainings the time limit ended before their result


@dataclass
class Session:
    number: int
    kind: str  # "browse" or "lab"
    page: object = None
    sockets: int = 0  # WebSockets the page opened (Streamlit's /_stcore/stream): more than one = reconnected
    name: str = ""  # Lab: upload name without extension
    upload: bytes = b""
    page_errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"s{self.number:02d}/{self.kind}"


# Runs `streamlit run` in a process whose Lab slot semaphore (ui.live._SLOTS) also counts its holders and logs
# every acquire and release (JSON lines: time, event, holders): the server's own record of the slot bound.
# The app's files are not touched; without ui.live._SLOTS the server runs unobserved.
LAUNCHER = r"""
import json, sys, threading, time
import ui.live as live

class CountingSemaphore(threading.BoundedSemaphore):
    def __init__(self, value, path):
        super().__init__(value)
        self._count_lock = threading.Lock()
        self.holders = 0
        self._log = open(path, "a", buffering=1)

    def _note(self, event):
        self._log.write(json.dumps({"t": time.time(), "event": event, "holders": self.holders}) + "\n")

    def acquire(self, blocking=True, timeout=None):
        got = super().acquire(blocking, timeout)
        if got:
            with self._count_lock:
                self.holders += 1  # after the real acquire, and down before the real release: never over-counts
                self._note("acquire")
        return got

    def release(self, n=1):
        with self._count_lock:
            self.holders -= n
            self._note("release")
        super().release(n)

if isinstance(getattr(live, "_SLOTS", None), threading.BoundedSemaphore):
    live._SLOTS = CountingSemaphore(live.LIVE_SLOTS, sys.argv[1])
from streamlit.web import cli
sys.argv = ["streamlit"] + sys.argv[2:]
sys.exit(cli.main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(cache: str | None, log: object, slot_log: str, deadline: float) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, GIT_PYTHON_REFRESH="quiet")
    if cache:
        env.update(FMAPS_CACHE=os.path.abspath(cache), FMAPS_ONLY="1")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, slot_log, "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", HOST, "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://{HOST}:{port}"
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return process, url
        except OSError:
            time.sleep(0.25)
    stop_server(process)
    raise SystemExit("the server did not start in time (or exited); see its log above")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def session_picture(number: int, total: int) -> bytes:
    """A 64x64 PNG: a solid colour of its own (hues spread over the circle) with the session's number drawn."""
    import colorsys

    from PIL import Image, ImageDraw, ImageFont

    r, g, b = colorsys.hsv_to_rgb(number / max(total, 1), 0.85, 0.9)
    picture = Image.new("RGB", (64, 64), (int(255 * r), int(255 * g), int(255 * b)))
    draw = ImageDraw.Draw(picture)
    draw.text((8, 10), f"{number:02d}", fill=(255, 255, 255) if (r + g + b) < 1.8 else (0, 0, 0),
              font=ImageFont.load_default(size=36))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def model_input(data: bytes, size: int) -> np.ndarray:
    """What the app makes of an upload: (size, size, 3) in 0-255 (a plain bilinear resize, as
    core.data.user_image.load_user_image does for an RGB PNG)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as picture:
        rgb = picture.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.float64)


def shrink(data: bytes, size: int) -> np.ndarray:
    """A picture the page shows (enlarged preview, JPEG; or a downloaded PNG) back to (size, size, 3) in 0-255."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as picture:
        pixels = np.asarray(picture.convert("RGB"), dtype=np.float64)
    h, w = pixels.shape[:2]
    if h % size == 0 and w % size == 0:  # nearest-neighbour enlargement: average each block
        return pixels.reshape(size, h // size, size, w // size, 3).mean(axis=(1, 3))
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64)


def whose(observed: np.ndarray, references: dict[int, np.ndarray]) -> tuple[int | None, float]:
    """The session whose picture `observed` is (nearest, within MATCH_LIMIT), and the distance; None if no one's."""
    distances = {n: float(np.abs(observed - ref).mean()) for n, ref in references.items() if ref.shape == observed.shape}
    if not distances:
        return None, math.inf
    best = min(distances, key=distances.get)
    return (best if distances[best] <= MATCH_LIMIT else None), distances[best]


def slot_record(path: str) -> dict:
    """The server's slot log -> acquires, most holders at once, seconds each slot was held; {} if there is none."""
    import json

    try:
        with open(path) as f:
            events = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return {}
    held, opened = [], []
    for event in events:
        if event["event"] == "acquire":
            opened.append(event["t"])
        elif opened:
            held.append(event["t"] - opened.pop(0))  # FIFO pairing: durations are indicative, the count is exact
    return {"acquires": sum(e["event"] == "acquire" for e in events),
            "most": max((e["holders"] for e in events), default=0), "held": held}


def cpu_seconds(server_pid: int) -> tuple[float, float]:
    """CPU time (user + system, s) so far of the server process and of this script's other descendants
    (Chromium, Playwright's driver), from /proc; (nan, nan) where /proc is missing."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, used = {}, {}
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry)] = int(fields[1])
                used[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    except OSError:
        return math.nan, math.nan
    me, browser = os.getpid(), 0.0
    for pid in used:
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, me, server_pid):
            ancestor = parents.get(ancestor)
        if ancestor == me and pid != server_pid:
            browser += used[pid]
    return used.get(server_pid, math.nan), browser


def brief(err: Exception) -> str:
    """An error's first line and, for Playwright's, the last line of its call log (what it was waiting for)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return (lines[0][:160] + (f" ... {lines[-1][:160]}" if len(lines) > 1 else "")).replace("\n", " ")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class LoadTest:
    def __init__(self, args: argparse.Namespace, url: str, stop_at: float) -> None:
        self.args, self.url, self.stop_at = args, url, stop_at
        self.stats = Stats()
        self.references: dict[int, np.ndarray] = {}  # Lab session -> its picture as the model sees it
        self.uploads: dict[int, bytes] = {}  # Lab session -> the PNG it uploads
        self.uploaded: set[int] = set()  # Lab sessions whose upload the page showed
        self.size: int | None = None
        self.slots: int | None = None
        self.lab_visits = 0
        self.server_pid = 0
        self.slot_log = ""
        self.load_seconds = 0.0
        self.cpu = [math.nan, math.nan]  # CPU seconds of the server and of the browser during the load phase

    # ---- timing helpers -------------------------------------------------------------------------------------
    def begin(self) -> None:
        """TimeUp once the load phase is over: no new action starts after stop_at."""
        if time.monotonic() >= self.stop_at:
            raise TimeUp

    def left_ms(self, cap_s: float | None = None, *, final: bool = False) -> float:
        """A wait's timeout (ms): cap_s (default --action-timeout) or what is left of the grace period."""
        end = self.stop_at + GRACE_S + (FINAL_S if final else 0.0)
        left = end - time.monotonic()
        if left <= 0.5:
            raise TimeUp
        return 1000 * min(left, cap_s if cap_s is not None else self.args.action_timeout)

    async def settle(self, page: object, *, final: bool = False) -> None:
        await page.wait_for_function(IDLE_JS, timeout=self.left_ms(final=final), polling=100)

    async def check_page(self, s: Session, action: str) -> None:
        """Exceptions, error messages, JavaScript errors and lost connections now on the page -> errors."""
        page = s.page
        for selector, kind in ((EXCEPTION, "exception"), (ERROR_MESSAGE, "error message"),
                               ('[data-testid="stConnectionStatus"]', "connection lost")):
            located = page.locator(selector)
            if await located.count():
                try:
                    text = (await located.first.inner_text(timeout=2000)).strip().splitlines()
                except Exception:  # gone again meanwhile
                    text = []
                self.stats.errors.append((s.label, kind, f"after {action}: {text[0] if text else ''}"[:200]))
        while s.page_errors:
            self.stats.errors.append((s.label, "page error", s.page_errors.pop(0)[:200]))

    async def act(self, s: Session, action: str, do: object, expect: object, *, timeout_s: float | None = None) -> bool:
        """do() (a click), then wait for `expect` (a locator to be visible, or a JavaScript predicate): record the
        latencies to that and to the settled page, then check the page for errors. False if the step failed."""
        self.begin()
        start = time.perf_counter()
        try:
            await do()
            if isinstance(expect, str):
                await s.page.wait_for_function(expect, timeout=self.left_ms(timeout_s), polling=100)
            elif expect is not None:
                await expect.first.wait_for(state="visible", timeout=self.left_ms(timeout_s))
            visible = time.perf_counter() - start
            await self.settle(s.page)
            settled = time.perf_counter() - start
        except TimeUp:
            raise
        except Exception as err:  # Playwright's TimeoutError and any other failure of the step
            if time.monotonic() >= self.stop_at + GRACE_S - 1:
                raise TimeUp from err
            kind = "timeout" if "Timeout" in type(err).__name__ else "failure"
            self.stats.errors.append((s.label, kind, f"{action}: {brief(err)}"))
            return False
        self.stats.visible[action].append(visible)
        self.stats.settled[action].append(settled)
        await self.check_page(s, action)
        return True

    def on_websocket(self, s: Session, socket: object) -> None:
        s.sockets += 1
        if s.sockets > 1:
            self.stats.errors.append((s.label, "WebSocket reconnect", "the page opened a new connection to the server"))

    def isolation(self, s: Session, check: str, ok: bool, detail: str) -> None:
        self.stats.isolation.append((s.label, check, ok, detail))

    # ---- browsing -------------------------------------------------------------------------------------------
    async def nav(self, s: Session, name: str, first: bool = False) -> bool:
        page = s.page
        heading = page.get_by_role("heading", name=PAGES[name])
        if first:
            path = "" if name == "Home" else name.lower()
            return await self.act(s, f"first load ({name})", lambda: page.goto(f"{self.url}/{path}"), heading,
                                  timeout_s=max(self.args.action_timeout, 120))
        link = page.locator('[data-testid="stSidebar"]').get_by_role("link", name=name, exact=True)
        return await self.act(s, f"page: {name}", link.click, heading)

    async def browse(self, s: Session, rng: random.Random) -> None:
        await self.nav(s, "Home", first=True)
        current, attack, numbers = "Home", "FMN", []
        while True:
            self.begin()
            try:
                current, attack, numbers = await self.browse_round(s, rng, current, attack, numbers)
            except TimeUp:
                raise
            except Exception as err:  # a step outside the timed ones failed: count it, go on from another page
                self.stats.errors.append((s.label, "failure", brief(err)))
                current = "unknown"

    async def browse_round(self, s: Session, rng: random.Random, current: str, attack: str,
                           numbers: list[int]) -> tuple[str, str, list[int]]:
        """To Explore, 1-3 gallery images, another attack, then another page (the Lab now and then)."""
        page = s.page
        image_heading = page.get_by_text(re.compile(r"Image #\d+ ·")).first
        if current != "Explore":
            ok = await self.nav(s, "Explore")
            current = "Explore" if ok else current
            if ok and not numbers:
                buttons = page.locator('.fmaps-gallery button').filter(has_text=re.compile(r"^#\d+$"))
                numbers = [int((await buttons.nth(i).inner_text()).strip("#")) for i in range(await buttons.count())]
                shown = re.search(r"attack: (\w+)", await image_heading.inner_text(timeout=self.left_ms()))
                attack = shown.group(1) if shown else attack
        if current == "Explore" and numbers:
            for _ in range(rng.randint(1, 3)):
                await asyncio.sleep(self.args.think * rng.uniform(0.5, 1.5))
                now = re.search(r"#(\d+)", await image_heading.inner_text(timeout=self.left_ms()))
                pick = rng.choice([n for n in numbers if not now or n != int(now.group(1))] or numbers)
                await self.act(s, "Explore: gallery image", page.get_by_role("button", name=f"#{pick}", exact=True).click,
                               page.get_by_text(re.compile(rf"Image #{pick} ·")))
            await asyncio.sleep(self.args.think * rng.uniform(0.5, 1.5))
            attack = rng.choice([a for a in ATTACK_TEXT if a != attack])
            await self.act(s, "Explore: change attack", lambda a=attack: self.choose(page, "Attack", a),
                           page.get_by_text(re.compile(rf"attack: {ATTACK_TEXT[attack]}")))
        await asyncio.sleep(self.args.think * rng.uniform(0.5, 1.5))
        target = rng.choice(["Home", "Correlations", "Defence", "Method", "Lab"])
        if await self.nav(s, target):
            current = target
            if target == "Lab":  # this session uploaded nothing: it must see no upload and no result
                self.lab_visits += 1
                seen = await page.get_by_role("heading", name=re.compile(r"^Result for")).count()
                previews = await page.locator('[data-testid="stImage"]').count()
                self.isolation(s, "Lab seen by a browsing session", seen == 0 and previews == 0,
                               f"{seen} result(s), {previews} picture(s) shown")
        await asyncio.sleep(self.args.think * rng.uniform(0.5, 1.5))
        return current, attack, numbers

    @staticmethod
    async def choose(page: object, label: str, text: str) -> None:
        """Pick the option containing `text` in the select box labelled `label` (type to filter, then Enter)."""
        box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).first
        await box.locator("input").click()
        await page.keyboard.type(text)
        await page.wait_for_timeout(300)
        await page.keyboard.press("Enter")

    # ---- Lab ------------------------------------------------------------------------------------------------
    async def set_number(self, s: Session, label: str, value: int) -> None:
        field_ = s.page.get_by_role("spinbutton", name=label)

        async def do() -> None:
            await field_.fill(str(value))
            await field_.press("Enter")
            await s.page.wait_for_timeout(300)  # the rerun starts

        await self.act(s, "Lab: set a field", do, None)

    async def lab(self, s: Session) -> None:
        page = s.page
        if not await self.nav(s, "Lab", first=True):
            return
        caption = await page.get_by_text(re.compile(r"At most \d+ trainings")).first.inner_text()
        self.slots = int(re.search(r"At most (\d+) trainings", caption).group(1))
        await self.act(s, "Lab: choose upload", page.get_by_text("my own image (PNG or JPEG)", exact=True).click,
                       page.locator('[data-testid="stFileUploader"]'))
        upload = page.locator('[data-testid="stFileUploader"] input[type="file"]')
        preview = page.locator('[data-testid="stImage"]').filter(has_text="as the model sees it")
        files = {"name": f"{s.name}.png", "mimeType": "image/png", "buffer": s.upload}
        if not await self.act(s, "Lab: upload", lambda: upload.set_input_files(files), preview):
            return
        caption = await preview.first.inner_text()
        if self.size is None:  # every Lab session's picture as the model sees it: the candidates of each check
            self.size = int(re.search(r"(\d+)×\d+ px", caption).group(1))
            self.references = {n: model_input(data, self.size) for n, data in self.uploads.items()}
        self.uploaded.add(s.number)
        await self.check_preview(s, "upload preview")
        await self.set_number(s, "Step limit", self.args.lab_steps)
        await self.set_number(s, "No stop before step", min(self.args.lab_min_steps, self.args.lab_steps))
        await self.act(s, "Lab: set a field", lambda: self.choose(page, "Attack", self.args.lab_attack), None)
        for run in range(self.args.lab_runs):
            if time.monotonic() > self.stop_at - self.args.lab_start_margin:
                break
            if run:
                await asyncio.sleep(self.args.think)
            await self.train(s)

    async def train(self, s: Session) -> None:
        page = s.page
        result = page.get_by_role("heading", name=re.compile(r"^Result for"))
        await page.evaluate("() => { window.__marks = {}; window.__armed = true; }")
        record = {"session": s.label, "click": time.time()}
        try:
            ok = await self.act(s, "Lab: train (click -> result)", page.get_by_role("button", name="Train the two maps").click,
                                TRAINED_JS, timeout_s=self.args.seconds)
        except TimeUp:
            self.stats.cut_off += 1
            raise
        marks = await page.evaluate("() => window.__marks")
        record.update(waited="wait" in marks, **{k: marks[k] / 1000 for k in ("wait", "start", "done") if k in marks})
        self.stats.trainings.append(record)
        if not ok or "done" not in marks or not await result.count():
            if ok and await page.locator(f"{ERROR_MESSAGE}, {EXCEPTION}").count():
                return  # counted as an error message already
            body = (await page.locator('[data-testid="stMain"]').inner_text()).strip().splitlines()
            times = ", ".join(f"{k} +{v / 1000 - record['click']:.1f} s" for k, v in sorted(marks.items(), key=lambda kv: kv[1]))
            self.stats.errors.append((s.label, "no result", f"page ends {' | '.join(body[-3:])[:120]!r}; seen: {times}"))
            return
        heading = await result.first.inner_text()
        named = re.search(r"Result for\s+(\S+)\s+·", heading)
        self.isolation(s, "result heading names own upload", bool(named) and named.group(1) == s.name,
                       f"heading: {heading[:80]!r}, own name {s.name}")
        await self.check_download(s)

    async def check_preview(self, s: Session, check: str, *, final: bool = False) -> None:
        img = s.page.locator('[data-testid="stImage"]').filter(has_text="as the model sees it").locator("img")
        if not await img.count():  # nothing to compare (e.g. an exception ended the page first): an error, not a leak
            self.stats.errors.append((s.label, "no preview", f"{check}: the page shows no preview of the upload"))
            return
        src = await img.first.evaluate("e => e.src")
        response = await s.page.request.get(src, timeout=self.left_ms(30, final=final))
        owner, distance = whose(shrink(await response.body(), self.size), self.references)
        self.isolation(s, check, owner == s.number,
                       f"picture is session {owner}'s (mean |diff| {distance:.1f}), {src.rsplit('/', 1)[-1]}")

    async def check_download(self, s: Session) -> None:
        """The result's clean image as the Lab's download button gives it: must be this session's upload."""
        page = s.page
        expander = page.get_by_text(re.compile(r"^Downloads: maps"))
        button = page.get_by_role("button", name="clean image (PNG)", exact=True)
        for attempt in range(2):  # a failed download counts as an error; once more, to still check the result
            try:
                if not await button.is_visible():
                    await expander.first.click()
                    await button.wait_for(state="visible", timeout=self.left_ms(30))
                async with page.expect_download(timeout=self.left_ms(60)) as info:
                    await button.click()
                download = await info.value
                data = Path(await download.path()).read_bytes()
                await self.settle(page)  # a download button reruns the script
                break
            except TimeUp:
                raise
            except Exception as err:
                if time.monotonic() >= self.stop_at + GRACE_S - 1:
                    raise TimeUp from err
                self.stats.errors.append((s.label, "download", brief(err)))
                if attempt:
                    return
                await self.settle(page)
        owner, distance = whose(shrink(data, self.size), self.references)
        named = s.name in download.suggested_filename
        self.isolation(s, "downloaded result image", owner == s.number and named,
                       f"{download.suggested_filename}: session {owner}'s picture (mean |diff| {distance:.1f})")

    async def final_check(self, s: Session) -> None:
        """After every session has finished: does this Lab session still show its own upload and result?"""
        try:
            await self.check_preview(s, "final preview (after all sessions)", final=True)
            heading = s.page.get_by_role("heading", name=re.compile(r"^Result for"))
            if await heading.count():
                text = await heading.first.inner_text()
                named = re.search(r"Result for\s+(\S+)\s+·", text)
                self.isolation(s, "final result heading", bool(named) and named.group(1) == s.name, text[:80])
        except Exception as err:  # the time limit or a failed fetch: say so, never hang
            self.stats.errors.append((s.label, "final check", brief(err)))

    # ---- sessions -------------------------------------------------------------------------------------------
    async def run_session(self, browser: object, s: Session) -> None:
        await asyncio.sleep(self.args.ramp * s.number)
        if time.monotonic() >= self.stop_at:
            return
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        if s.kind == "lab":
            await context.add_init_script(MARKS_JS)
        s.page = await context.new_page()
        s.page.on("pageerror", lambda err: s.page_errors.append(str(err)))
        s.page.on("websocket", lambda socket: self.on_websocket(s, socket))
        s.page.set_default_timeout(1000 * self.args.action_timeout)
        try:
            if s.kind == "lab":
                await self.lab(s)
            else:
                await self.browse(s, random.Random(s.number))
        except TimeUp:
            pass
        except Exception as err:  # a failure outside any timed step: count it, end this session
            self.stats.errors.append((s.label, "failure", brief(err)))

    async def run(self, sessions: list[Session]) -> None:
        from playwright.async_api import async_playwright

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                warm = await browser.new_page()  # first render imports torch and lists experiments: not measured
                await warm.goto(self.url, timeout=self.left_ms(240))
                await warm.get_by_role("heading", name=PAGES["Home"]).wait_for(timeout=self.left_ms(240))
                await warm.wait_for_function(IDLE_JS, timeout=self.left_ms(240), polling=200)
                await warm.close()
                started, cpu_before = time.monotonic(), cpu_seconds(self.server_pid)
                await asyncio.gather(*(self.run_session(browser, s) for s in sessions))
                self.load_seconds = time.monotonic() - started
                self.cpu = [b - a for a, b in zip(cpu_before, cpu_seconds(self.server_pid), strict=True)]
                await asyncio.gather(*(self.final_check(s) for s in sessions
                                       if s.number in self.uploaded))
            finally:
                await browser.close()


def summary(test: LoadTest, sessions: list[Session], url: str) -> int:
    stats, args = test.stats, test.args
    n_lab = sum(s.kind == "lab" for s in sessions)
    actions = sum(len(v) for v in stats.visible.values())
    print(f"\nload test: {len(sessions)} sessions ({len(sessions) - n_lab} browsing, {n_lab} Lab), "
          f"{test.load_seconds:.0f} s of load on {url}; one Chromium, one context per session")
    server_cpu, browser_cpu = test.cpu
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; during the load phase the server used "
          f"{server_cpu:.0f} CPU-s, the browser {browser_cpu:.0f} CPU-s (of {os.cpu_count() * test.load_seconds:.0f} "
          f"available); Lab: step limit {args.lab_steps}, no stop before {min(args.lab_min_steps, args.lab_steps)}, "
          f"attack {args.lab_attack}")
    print(f"\n{'action':34s} {'n':>4s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}   "
          f"{'settled p50':>11s} {'settled max':>11s}")
    for action in sorted(stats.visible):
        v, w = stats.visible[action], stats.settled[action]
        print(f"{action:34s} {len(v):4d} {1000 * percentile(v, .5):8.0f} {1000 * percentile(v, .95):8.0f} "
              f"{1000 * max(v):8.0f}   {1000 * percentile(w, .5):11.0f} {1000 * max(w):11.0f}")
    print(f"actions completed: {actions}")

    kinds = defaultdict(int)
    for _, kind, _ in stats.errors:
        kinds[kind] += 1
    print(f"\nerrors: {len(stats.errors)}" + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")"
                                              if kinds else ""))
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)  # the same error in several sessions: one line
    for label, kind, detail in stats.errors:
        grouped[(kind, detail)].append(label)
    for (kind, detail), labels in list(grouped.items())[:15]:
        print(f"  {len(labels)}x {kind}: {detail}   [{', '.join(sorted(set(labels)))}]")

    done = [t for t in stats.trainings if "done" in t]
    waited = [t for t in stats.trainings if t.get("waited")]
    waits = [t["start"] - t["wait"] for t in waited if "start" in t]
    slots = slot_record(test.slot_log)
    held = slots.get("held", [])
    print(f"\nLab: {len(stats.trainings)} trainings started, {len(done)} finished, {stats.cut_off} cut off by the time limit; "
          f"{len(waited)} waited for a free slot"
          + (f" (wait p50 {percentile(waits, .5):.1f} s, max {max(waits):.1f} s)" if waits else "")
          + (f"; a slot held p50 {percentile(held, .5):.1f} s, max {max(held):.1f} s" if held else ""))
    bound_ok = not slots or test.slots is None or slots["most"] <= test.slots
    if slots:
        print(f"slot bound (the server's count): {slots['acquires']} slots taken, at most {slots['most']} at once, "
              f"limit {test.slots}: {'ok' if bound_ok else 'EXCEEDED'}")
    else:
        print("slot bound: not observed (no ui.live._SLOTS semaphore to count)")

    failures = [i for i in stats.isolation if not i[2]]
    counts = defaultdict(int)
    for _, check, _, _ in stats.isolation:
        counts[check] += 1
    verdict = "FAIL" if failures else ("PASS" if stats.isolation else "NOT CHECKED")
    print(f"\nisolation: {verdict}: {len(stats.isolation) - len(failures)} of {len(stats.isolation)} checks passed ("
          + ", ".join(f"{check} {n}" for check, n in counts.items()) + ")")
    for label, check, _, detail in failures[:12]:
        print(f"  {label} {check}: {detail}")
    if failures:
        return 1
    if not bound_ok:
        return 3
    if not any(check.startswith("result") for _, check, _, _ in stats.isolation):
        return 2
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help="concurrent user sessions (browser contexts)")
    parser.add_argument("--lab-sessions", type=int, help="of which Lab sessions (default: half, rounded down)")
    parser.add_argument("--seconds", type=float, default=180, help="hard time limit of the whole run, server start included")
    parser.add_argument("--lab-steps", type=int, default=40, help="Lab step limit (>= 20)")
    parser.add_argument("--lab-min-steps", type=int, default=20, help="Lab: no stop before this step")
    parser.add_argument("--lab-runs", type=int, default=2, help="trainings per Lab session at most")
    parser.add_argument("--lab-attack", default="DeepFool", choices=sorted(ATTACK_TEXT), help="attack in the Lab")
    parser.add_argument("--lab-start-margin", type=float, default=30,
                        help="start no training later than this many seconds before the load phase ends")
    parser.add_argument("--action-timeout", type=float, default=60, help="seconds any one step may take")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a browsing user's actions (s)")
    parser.add_argument("--ramp", type=float, default=0.5, help="seconds between session starts")
    parser.add_argument("--cache", help="only the experiments under this directory (FMAPS_CACHE + FMAPS_ONLY)")
    args = parser.parse_args()
    if args.lab_steps < 20 or args.sessions < 1:
        parser.error("--lab-steps must be >= 20 (the Lab's minimum) and --sessions >= 1")
    n_lab = args.sessions // 2 if args.lab_sessions is None else max(0, min(args.sessions, args.lab_sessions))

    t0 = time.monotonic()
    hard = t0 + args.seconds
    sessions = [Session(i, "lab" if i < n_lab else "browse") for i in range(args.sessions)]
    for s in sessions:
        if s.kind == "lab":
            s.name, s.upload = f"load_s{s.number:02d}", session_picture(s.number, max(n_lab, 1))

    log = tempfile.NamedTemporaryFile("w+", prefix="load_test_streamlit_", suffix=".log", delete=False)
    slot_log = log.name[:-4] + ".slots.jsonl"
    process = None

    def watchdog() -> None:  # the last resort if anything hangs past the hard limit
        if process is not None:
            process.kill()
        print(f"load test: hard time limit ({args.seconds:.0f} s + 30 s) reached; stopped", file=sys.stderr, flush=True)
        os._exit(124)

    timer = threading.Timer(args.seconds + 30, watchdog)
    timer.daemon = True
    timer.start()
    try:
        try:
            process, url = start_server(args.cache, log, slot_log, min(hard - RESERVE_S, t0 + 180))
        except SystemExit:
            log.seek(0)
            print(log.read()[-3000:], file=sys.stderr)
            raise
        print(f"server up on {url} after {time.monotonic() - t0:.1f} s (log: {log.name})", flush=True)
        test = LoadTest(args, url, hard - RESERVE_S)
        test.uploads = {s.number: s.upload for s in sessions if s.kind == "lab"}
        test.server_pid, test.slot_log = process.pid, slot_log
        try:
            asyncio.run(asyncio.wait_for(test.run(sessions), timeout=hard - 5 - time.monotonic()))
        except TimeoutError:
            print("load test: the hard time limit ended the run; figures so far follow", file=sys.stderr)
        if process.poll() is not None:
            test.stats.errors.append(("server", "crash", f"streamlit exited with {process.returncode}"))
    finally:
        if process is not None:
            stop_server(process)
        timer.cancel()
        log.close()
    status = summary(test, sessions, url)
    print(f"wall time {time.monotonic() - t0:.0f} s (limit {args.seconds:.0f} s); exit status {status}")
    sys.exit(status)


if __name__ == "__main__":
    main()
