"""bench/reproduce_cifar10.sh, the whole CIFAR-10 reproduction, on a few images with tiny step counts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_reproduction_script_runs_reports_and_ships(tmp_path):
    """Three runs (λ = 0.5 with class maps and the defence, then Table I at λ = 0.1 and 0.02), each timed and
    reported; the results-only copies go to assets/results/ unless SHIP=0 (here: the repository stays as it is)."""
    extra = ("--limit 8 --train-limit 40 --attack-steps 2 --min-steps 2 --max-steps 4 --class-min-steps 2 "
             "--class-max-steps 3 --permutations 5 --repairings 2 --bootstrap 20 --power-repeats 1")
    env = dict(os.environ, EXTRA=extra, SHIP="0", OUT=str(tmp_path / "cache"), DEVICE="cpu", GIT_PYTHON_REFRESH="quiet")
    before = sorted(os.listdir(REPO / "assets" / "results"))
    done = subprocess.run(["bash", str(REPO / "bench" / "reproduce_cifar10.sh")], env=env, capture_output=True,
                          text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert len(re.findall(r"took \d+ s", out)) == 3
    assert len(re.findall(r"^## Table I:", out, flags=re.M)) == 3, out[-3000:]
    assert "Table IV" in out  # the λ = 0.5 run has class maps and the defence
    runs = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(runs) == 3 and all(r.startswith("cifar10-paper-resnet20-test-1000-") for r in runs)
    assert sorted(os.listdir(REPO / "assets" / "results")) == before
    # SWEEP_LIMIT=0: the main run only (here found complete in the cache, so it only reports)
    main_only = subprocess.run(["bash", str(REPO / "bench" / "reproduce_cifar10.sh")], env=dict(env, SWEEP_LIMIT="0"),
                               capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert main_only.returncode == 0, main_only.stderr[-2000:]
    assert len(re.findall(r"took \d+ s", main_only.stdout)) == 1 and "Table I at" not in main_only.stdout
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == runs
