"""pyproject.toml's package: the same pins as requirements.txt, and every folder of the project's code in it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_the_dependencies_and_the_test_extra_are_requirements_txt_in_order():
    project = PROJECT["project"]
    pins = project["dependencies"] + project["optional-dependencies"]["test"]
    assert pins == _requirements()
    assert all(pin.count("==") == 1 for pin in pins), pins  # exact versions: what the tests ran with
    assert "streamlit==" in " ".join(project["dependencies"]) and "pytest==" not in " ".join(project["dependencies"])


def test_every_folder_of_code_is_a_package_of_the_distribution():
    """Against a walk of the tree: each folder under the code's top folders that holds a .py file."""
    tops = ("core", "experiments", "precompute", "ui", "pages", "bench")
    walked = {str(folder.relative_to(REPO)).replace("/", ".") for top in tops for folder in [REPO / top, *(REPO / top).rglob("*")]
              if folder.is_dir() and any(folder.glob("*.py"))}
    found = set(find_namespace_packages(str(REPO), **PROJECT["tool"]["setuptools"]["packages"]["find"]))
    assert found == walked
    assert all((REPO / name.replace(".", "/") / "__init__.py").is_file() for name in found)  # regular packages
