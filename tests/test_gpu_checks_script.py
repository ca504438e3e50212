"""bench/gpu_checks.sh, the script that measures the GPU figures: its checks of the input, and one cheap step.

Its benchmarks need a GPU and minutes; here only what fails fast and the `info` step, on the CPU."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO, SHARED, needs_shared

SCRIPT = str(REPO / "bench" / "gpu_checks.sh")
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(*steps: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", SCRIPT, *steps], env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=300)


def test_a_missing_data_folder_stops_it_with_the_path_expected(tmp_path):
    done = _run("info", FMAPS_SHARED=str(tmp_path / "nowhere"), LOGS=str(tmp_path / "logs"))
    assert done.returncode == 2
    assert f"expected {tmp_path / 'nowhere'}/data/cifar10/test-1000" in done.stderr
    assert not (tmp_path / "logs").exists()  # stopped before any work


@needs_shared(SHARED / "data" / "cifar10" / "test-1000")
def test_an_unknown_step_is_named_and_the_info_step_logs_the_versions(tmp_path):
    done = _run("info", "bogus", FMAPS_SHARED=str(SHARED), LOGS=str(tmp_path / "logs"))
    assert done.returncode == 2
    assert "unknown step 'bogus' (expected info, tests, maps, step, bases, idcor, pipeline or precision)" in done.stderr
    log = (tmp_path / "logs" / "info.log").read_text()  # the step before it ran and kept its output
    assert "torch " in log and "available:" in log
