"""Table I per basis and layer (ui.basis_table): which experiments are grouped, their labels, their cells."""

from __future__ import annotations

from ui.basis_table import comparable, config_label, config_where, per_basis_rows, where_groups

BASE = {"model": "resnet20", "checkpoint_sha256": "ab", "data": "cifar10", "image_size": 32, "lam": 0.5}


def _config(**changes: object) -> dict:
    return {**BASE, **changes}


def test_where_names_basis_wavelet_and_layer():
    assert config_where(_config()) == "fourier"
    assert config_where(_config(basis="dct")) == "dct"
    assert config_where(_config(basis="wavelet", wavelet="db2", wavelet_levels=2)) == "wavelet-db2-L2"
    assert config_where(_config(layer="layer1")) == "fourier at layer1"
    assert config_label(_config(basis="dct", lam=0.2), with_lam=True) == "dct, λ 0.2"


def test_groups_need_the_same_model_weights_data_and_size():
    current = _config()
    assert not comparable(current, _config(checkpoint_sha256="cd"))
    assert not comparable(current, _config(image_size=64))
    candidates = [("a", current), ("b", _config(basis="dct")), ("c", _config(basis="phase", data="imagenette")),
                  ("d", _config(basis="dct")), ("e", _config(layer="layer1", model="resnet18"))]
    assert where_groups(current, candidates) == {"fourier": "a", "dct": "b"}  # first found per label
    assert where_groups(current, [("a", current), ("b", _config(data="other"))]) == {}  # one label: no table


def test_labels_name_lambda_only_when_the_groups_differ_in_it():
    current = _config()
    candidates = [("a", current), ("b", _config(basis="dct", lam=0.2)), ("c", _config(lam=0.2))]
    assert where_groups(current, candidates) == {"fourier, λ 0.5": "a", "dct, λ 0.2": "b", "fourier, λ 0.2": "c"}


def test_rows_hold_each_groups_stored_numbers():
    summaries = {
        "fourier": {"pgd-8": {"n": 254, "svcca": 0.654, "cosine_mean": 0.2549, "repaired_cosine_mean": 0.181,
                              "idcor": -0.12, "p_value": 0.3069}},
        "dct": {"fmn": {"n": 268, "svcca": 0.77, "cosine_mean": 0.271, "idcor": 0.2656, "p_value": 0.1089}},
    }
    rows = {row["attack"]: row for row in per_basis_rows(summaries)}
    assert list(rows) == ["FMN", "PGD ε=8/255"]  # the paper's attack order
    pgd, fmn = rows["PGD ε=8/255"], rows["FMN"]
    assert (pgd["fourier · N"], pgd["fourier · SVCCA"], pgd["fourier · cosine"]) == (254, "0.65", "0.25")
    assert pgd["fourier · re-paired cosine"] == "0.18" and pgd["fourier · IdCor (p)"] == "-0.12 (0.307)"
    assert pgd["dct · N"] == "–" and pgd["dct · IdCor (p)"] == "–"  # dct lacks PGD
    assert fmn["dct · IdCor (p)"] == "0.27 (0.109)" and fmn["dct · re-paired cosine"] == "–"
