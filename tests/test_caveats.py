"""Caveats on SVCCA and IdCor: the forced-correlation count against numpy, and the demo's real numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.metrics.caveats import correlation_caveats, forced_unit_correlations, idcor_caveat, svcca_caveat
from core.metrics.svcca import canonical_correlations, svcca_details
from experiments.reader import Experiment

REPO = Path(__file__).resolve().parents[1]
DEMO = next((REPO / "assets" / "demo").iterdir())


def numpy_unit_correlations(x: np.ndarray, y: np.ndarray) -> int:
    """Canonical correlations equal to 1, by numpy QR: cosines of the principal angles between the centred column spaces."""
    qx = np.linalg.qr(x - x.mean(axis=0))[0]
    qy = np.linalg.qr(y - y.mean(axis=0))[0]
    cosines = np.linalg.svd(qx.T @ qy, compute_uv=False)
    return int(np.sum(cosines > 1 - 1e-9))


@pytest.mark.parametrize(("n", "k_a", "k_b"), [(19, 16, 18), (19, 5, 6), (30, 20, 15), (50, 10, 45), (100, 40, 40)])
def test_forced_count_matches_generic_data(n, k_a, k_b):
    """Gaussian columns are generic: exactly the forced number of correlations is 1, in ours and in numpy's."""
    rng = np.random.default_rng(n + k_a + k_b)
    x, y = rng.normal(size=(n, k_a)), rng.normal(size=(n, k_b))
    expected = forced_unit_correlations(n, k_a, k_b)
    assert numpy_unit_correlations(x, y) == expected
    rho = canonical_correlations(torch.from_numpy(x), torch.from_numpy(y))
    assert int((rho > 1 - 1e-9).sum()) == expected


def test_forced_count_closed_form():
    assert forced_unit_correlations(19, 16, 18) == 16  # the demo: every correlation
    assert forced_unit_correlations(30, 20, 15) == 6
    assert forced_unit_correlations(1000, 100, 100) == 0
    assert forced_unit_correlations(10, 0, 9) == 0


def test_demo_svcca_is_forced_up_for_any_pairing():
    """The shipped demo's FMN pairs (20): the sample size forces most canonical correlations to 1 with the true
    pairing and with a shifted one alike, SVCCA cannot fall below the caveat's floor, and the caveat says so."""
    experiment = Experiment(str(DEMO))
    summary = experiment.correlation("fmn")
    positions = summary["positions"]  # images with both maps kept, as the correlation stage paired them
    x, y = (experiment.map_set(name) for name in ("essential", "adversarial-fmn"))
    x = x["maps"][x["row"][positions]].astype(np.float32).reshape(len(positions), -1)  # (n, 3072)
    y = y["maps"][y["row"][positions]].astype(np.float32).reshape(len(positions), -1)  # (n, 3072)
    assert x.shape[0] == summary["n"]
    true_pairs = svcca_details(torch.from_numpy(x), torch.from_numpy(y))
    assert true_pairs.svcca == pytest.approx(summary["svcca"], abs=1e-9)
    shifted = svcca_details(torch.from_numpy(x), torch.from_numpy(np.roll(y, 1, axis=0)))  # image i vs image i - 1
    for details in (true_pairs, shifted):
        k = min(details.k1, details.k2)
        forced = forced_unit_correlations(summary["n"], details.k1, details.k2)
        assert 0 < forced <= k
        assert int((details.correlations > 1 - 1e-6).sum()) >= forced  # the count the caveat predicts, computed
        assert details.svcca >= forced / k - 1e-9
    caveat = svcca_caveat(summary)
    assert caveat is not None and ("by construction" in caveat or "inflated by the sample size" in caveat)
    assert f"with {summary['n']} pairs" in caveat


def test_large_experiment_has_no_caveat():
    """The shipped CIFAR-10 reproduction's sets of hundreds of pairs read as they are; a set of ~100 pairs
    (PGD at 1/255, where few adversarial maps are kept) may carry one, and then it is IdCor's."""
    summaries = [json.loads(path.read_text())
                 for path in sorted((REPO / "assets" / "results").glob("cifar10-paper-*/correlations/*.json"))]
    assert len(summaries) >= 8 and all(s.get("svcca_k_a") is not None for s in summaries)  # 5 + 3 attack sets
    large = [s for s in summaries if s["n"] >= 300]
    assert len(large) >= 7 and all(correlation_caveats(s) == [] for s in large)
    for small in (s for s in summaries if s["n"] < 300):
        assert all("IdCor" in text for text in correlation_caveats(small))
        if not 0 <= small["idcor"] <= 1:
            assert correlation_caveats(small) == [idcor_caveat(small)]


def test_partial_forcing_gives_the_floor():
    text = svcca_caveat({"n": 30, "svcca": 0.7, "svcca_k_a": 20, "svcca_k_b": 15})
    assert text is not None and "6 of its 15" in text and "0.40" in text


def test_idcor_caveats():
    base = {"n": 19, "idcor": 1.26, "id_a": 92.9, "id_b": 129.0, "id_joint": 59.9}
    assert "from 19 points" in idcor_caveat(base)
    outside = {"n": 500, "idcor": 1.3, "id_a": 20.0, "id_b": 18.0, "id_joint": 12.0}
    assert "outside [0, 1]" in idcor_caveat(outside)
    negative = {"n": 500, "idcor": -0.2, "id_a": 10.0, "id_b": 10.0, "id_joint": 22.0}
    assert "outside [0, 1]" in idcor_caveat(negative)
    assert idcor_caveat({"n": 500, "idcor": 0.4, "id_a": 15.0, "id_b": 17.0, "id_joint": 26.0}) is None
    assert idcor_caveat({"n": 500, "idcor": None, "id_a": None, "id_b": None, "id_joint": None}) is None


def test_missing_fields_give_no_caveat():
    """Summaries written before k_a/k_b were stored, or with failed metrics, get no invented caveat."""
    assert correlation_caveats({"n": 19, "svcca": 1.0}) == []
    assert correlation_caveats({}) == []
