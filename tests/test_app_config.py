"""The shipped .streamlit/config.toml: every option is one Streamlit knows, with the values the README's
`streamlit run app.py` relies on: for its speed (no file watcher, no forced GC after each run), for an
offline reader's menu, and for sending nothing anywhere (no usage statistics, no notice about them)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

from streamlit import config

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / ".streamlit" / "config.toml"
TELEMETRY_NOTICE = "Collecting usage statistics"  # what a headless Streamlit prints when it will send them
START_TIMEOUT_S = 120  # a server start on a busy 2-core machine


def _options() -> dict[str, object]:
    with CONFIG.open("rb") as f:
        sections = tomllib.load(f)
    return {f"{section}.{name}": value for section, table in sections.items() for name, value in table.items()}


def test_every_option_is_a_streamlit_option() -> None:
    known = config.get_config_options()
    unknown = sorted(set(_options()) - set(known))
    assert not unknown, f"not Streamlit options (a typo is ignored silently): {unknown}"


def test_settings_the_app_relies_on() -> None:
    options = _options()
    assert options["server.fileWatcherType"] == "none"
    assert options["runner.postScriptGC"] is False
    assert options["client.toolbarMode"] == "viewer"  # no "Deploy" button offering a cloud an offline tool can't reach
    assert options["browser.gatherUsageStats"] is False  # the page sends no usage statistics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_output(app_dir: Path, home: Path) -> str:
    """What `streamlit run app.py` prints when it starts headless in app_dir (until its health check answers).

    HOME is a fresh folder, so neither a ~/.streamlit/config.toml nor saved credentials of this machine count."""
    port = _free_port()
    log = home / "streamlit.log"
    env = dict(os.environ, HOME=str(home), GIT_PYTHON_REFRESH="quiet")
    env = {k: v for k, v in env.items() if not k.startswith("STREAMLIT_")}  # no option set from outside the file
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                   "--server.address", "127.0.0.1", "--server.port", str(port)],
                                  cwd=app_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                        if answer.read() == b"ok":
                            break
                except OSError:
                    pass
                assert server.poll() is None, f"streamlit exited with {server.returncode}: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"no health check answer in {START_TIMEOUT_S} s"
                time.sleep(0.2)
            time.sleep(0.5)  # the start-up lines are printed before the server answers; let them reach the log
        finally:
            server.terminate()
            server.wait(timeout=30)
    return log.read_text()


def test_streamlit_run_prints_no_telemetry_notice(tmp_path: Path) -> None:
    """The app's start prints no notice; a bare app without the config, started the same way, does (so the
    check would see one)."""
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "app.py").write_text("import streamlit as st\n\nst.title('bare')\n")
    (tmp_path / "home-bare").mkdir()
    (tmp_path / "home-app").mkdir()
    reference = _start_output(bare, tmp_path / "home-bare")
    assert TELEMETRY_NOTICE in reference, reference[-2000:]
    output = _start_output(REPO, tmp_path / "home-app")
    assert "You can now view your Streamlit app" in output, output[-2000:]  # the start-up lines were read
    assert TELEMETRY_NOTICE not in output and "gatherUsageStats" not in output, output[-2000:]
