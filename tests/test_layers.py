"""app.py, the Streamlit entry, imports nothing from precompute (the app only reads the cache).

import-linter's contracts (pyproject.toml) cover the packages ui/ and pages/ but cannot list a single-file
module, so app.py's own imports are read here; what they import in turn is the contracts' part."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# first-party packages that import precompute: the app may import neither
FORBIDDEN = ("precompute", "bench")


def imported_modules(source: str) -> set[str]:
    """Every module a Python source imports by name, function-level imports included (relative ones skipped)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def forbidden_imports(source: str) -> list[str]:
    return sorted(m for m in imported_modules(source) if m.split(".")[0] in FORBIDDEN)


@pytest.mark.parametrize("source, expected", [
    ("import precompute.presets", ["precompute.presets"]),
    ("from precompute import presets as p", ["precompute", "precompute.presets"]),
    ("def f():\n    from precompute.presets import PRESETS\n", ["precompute.presets", "precompute.presets.PRESETS"]),
    ("from bench.page_js import IDLE_JS", ["bench.page_js", "bench.page_js.IDLE_JS"]),
    ("import ui.roots\nfrom . import precompute\nimport precomputed", []),
], ids=["import", "from-import", "function-level", "bench", "allowed"])
def test_the_check_finds_each_form_of_import(source, expected):
    assert forbidden_imports(source) == expected


def test_app_py_imports_nothing_from_precompute():
    source = (REPO / "app.py").read_text()
    assert "ui.picker" in imported_modules(source)  # the file read is the entry that draws the app
    assert forbidden_imports(source) == []
