"""The shipped .streamlit/config.toml: every option is one Streamlit knows, with the values the README's
`streamlit run app.py` relies on: for its speed (no file watcher, no forced GC after each run) and for an
offline reader's menu."""

from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit import config

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"


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
