"""`correlate()` and `python -m precompute correlate`: outputs, and every bad input -> exit 2 with one line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from core.metrics import correlate
from precompute.cli import main

JSON_KEYS = {
    "n", "dim", "cosine_mean", "cosine_std", "cosine_values", "svcca", "svcca_k_a", "svcca_k_b", "idcor", "p_value",
    "id_a", "id_b", "id_joint", "null_ids", "permutations", "seed", "pool", "pool_size",
}  # fmt: skip


def paired_maps(n: int = 60, shape: tuple[int, ...] = (12,), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative sparse-ish maps and a noisy copy: rows paired."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(size=(n, *shape)) * (rng.uniform(size=(n, *shape)) < 0.5)
    return a, np.clip(a + 0.2 * rng.normal(size=a.shape), 0, None)


def save(tmp_path, name: str, array: np.ndarray, **kwargs) -> str:
    path = tmp_path / name
    if name.endswith(".npz"):
        np.savez(path, **({"maps": array} | kwargs))
    else:
        np.save(path, array, allow_pickle=array.dtype == object)
    return str(path)


def test_json_output_has_all_keys_and_equals_the_library(tmp_path, capsys):
    a, b = paired_maps()
    code = main(["correlate", save(tmp_path, "a.npy", a), save(tmp_path, "b.npz", b), "--permutations", "20", "--seed", "3", "--json"])
    out = capsys.readouterr()
    assert code == 0 and out.err == ""
    result = json.loads(out.out)
    assert JSON_KEYS <= set(result)
    assert len(result["cosine_values"]) == 60 and len(result["null_ids"]) == 20
    expected = correlate(a, b, permutations=20, seed=3)
    for key in ("cosine_mean", "cosine_std", "svcca", "idcor", "p_value", "id_joint"):
        assert result[key] == pytest.approx(expected[key], rel=1e-12), key
    assert result["pool"] == "none" and result["n"] == 60 and result["dim"] == 12


def test_table_output_names_every_metric(tmp_path, capsys):
    a, b = paired_maps()
    code = main(["correlate", save(tmp_path, "a.npy", a), save(tmp_path, "b.npy", b), "--permutations", "10", "--repairings", "2"])
    out = capsys.readouterr().out
    assert code == 0
    for word in ("cosine", "svcca", "idcor", "p = ", "N = 60", "re-paired baseline over 2", "IdCor of the shuffled pairings"):
        assert word in out


def test_small_sets_print_their_caveats(tmp_path, capsys):
    """12 pairs of 192 entries: SVCCA is 1 by construction, and both outputs say so (60 pairs of 12: no caveat)."""
    rng = np.random.default_rng(5)
    a, b = rng.uniform(size=(12, 3, 8, 8)), rng.uniform(size=(12, 3, 8, 8))
    assert main(["correlate", save(tmp_path, "a.npy", a), save(tmp_path, "b.npy", b), "--permutations", "5"]) == 0
    assert "caveat: SVCCA is 1 by construction here: with 12 pairs" in capsys.readouterr().out
    assert main(["correlate", save(tmp_path, "a.npy", a), save(tmp_path, "b.npy", b), "--permutations", "5", "--json"]) == 0
    caveats = json.loads(capsys.readouterr().out)["caveats"]
    assert any("by construction" in text for text in caveats)
    big_a, big_b = paired_maps()
    assert main(["correlate", save(tmp_path, "c.npy", big_a), save(tmp_path, "d.npy", big_b), "--permutations", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["caveats"] == []


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_large_maps_are_pooled_to_32(tmp_path, capsys, pool):
    a, b = paired_maps(n=20, shape=(3, 64, 64), seed=1)
    main(["correlate", save(tmp_path, "a.npy", a), save(tmp_path, "b.npy", b), "--permutations", "5", "--pool", pool, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert (result["pool"], result["pool_size"], result["dim"]) == (pool, 32, 3 * 32 * 32)
    reduce = np.mean if pool == "avg" else np.max
    pooled = [reduce(m.reshape(20, 3, 32, 2, 32, 2), axis=(3, 5)).reshape(20, -1) for m in (a, b)]
    cosines = [p @ q / (np.linalg.norm(p) * np.linalg.norm(q)) for p, q in zip(*pooled, strict=True)]
    np.testing.assert_allclose(result["cosine_values"], cosines, rtol=1e-10)


def test_repairings_add_the_baseline_keys():
    a, b = paired_maps()
    result = correlate(a, b, permutations=5, repairings=3)
    assert {"repairings", "repaired_cosine_mean", "repaired_cosine_std", "repaired_svcca_mean", "repaired_svcca_std"} <= set(result)
    json.dumps(result, allow_nan=False)  # JSON-friendly: no NaN, no tensors


def test_correlate_accepts_tensors_and_arrays_alike():
    a, b = paired_maps(n=30)
    from_arrays = correlate(a, b, permutations=4)
    from_tensors = correlate(torch.from_numpy(a).float(), torch.from_numpy(b).float(), permutations=4)
    assert from_tensors["n"] == 30
    assert from_tensors["cosine_mean"] == pytest.approx(from_arrays["cosine_mean"], rel=1e-6)


def _truncated(tmp_path, array: np.ndarray) -> str:
    path = tmp_path / "truncated.npy"
    np.save(path, array)
    path.write_bytes(path.read_bytes()[:200])  # header intact, data cut short
    return str(path)


def _bad_inputs(tmp_path) -> dict[str, tuple[list[str], str]]:
    a, b = paired_maps()
    nan, inf = b.copy(), b.copy()
    nan[3, 2], inf[5, 1] = np.nan, np.inf
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"this is not an array")
    ok_a, ok_b = save(tmp_path, "a.npy", a), save(tmp_path, "b.npy", b)
    return {
        "mismatched-n": ([ok_a, save(tmp_path, "short.npy", b[:50])], "same number of paired rows"),
        "nan": ([ok_a, save(tmp_path, "nan.npy", nan)], "finite values"),
        "inf": ([ok_a, save(tmp_path, "inf.npy", inf)], "finite values"),
        "two-rows": ([save(tmp_path, "a2.npy", a[:2]), save(tmp_path, "b2.npy", b[:2])], "at least 3 paired rows"),
        "missing-file": ([ok_a, str(tmp_path / "missing.npy")], "not found"),
        "unreadable-file": ([ok_a, str(garbage)], "readable .npy/.npz"),
        "npz-with-two-arrays": ([ok_a, save(tmp_path, "two.npz", b, extra=b)], "exactly one array"),
        "object-array": ([ok_a, save(tmp_path, "obj.npy", np.array([{"a": 1}] * 60, dtype=object))], "readable .npy/.npz"),
        "object-array-in-npz": ([ok_a, save(tmp_path, "obj.npz", np.array([{"a": 1}] * 60, dtype=object))], "numeric array"),
        "truncated-file": ([ok_a, _truncated(tmp_path, b)], "readable .npy/.npz"),
        "complex-array": ([ok_a, save(tmp_path, "complex.npy", b.astype(np.complex128))], "real numeric array"),
        "three-dimensional": ([ok_a, save(tmp_path, "b3.npy", b.reshape(60, 3, 4))], r"\(N, D\) or \(N, C, H, W\)"),
        "half-spectrum-of-rows": ([ok_a, ok_b, "--half-spectrum"], r"\(N, C, H, W\) maps for half_spectrum"),
        "labels-of-another-length": ([ok_a, ok_b, "--labels", save(tmp_path, "l59.npy", np.arange(59) % 3)], r"shape \(60,\)"),
        "labels-one-class": ([ok_a, ok_b, "--labels", save(tmp_path, "l1.npy", np.zeros(60, int))], "at least 2 classes"),
        "labels-lone-pair": ([ok_a, ok_b, "--labels", save(tmp_path, "lp.npy", np.r_[np.zeros(59, int), 1])], "1 pair in class"),
        "labels-not-integer": ([ok_a, ok_b, "--labels", save(tmp_path, "lf.npy", np.arange(60) / 2)], "integer class labels"),
        "negative-bootstrap": ([ok_a, ok_b, "--bootstrap", "-3"], "bootstrap >= 0"),
        "bad-pool": ([ok_a, ok_b, "--pool", "median"], "invalid choice"),
        "negative-permutations": ([ok_a, ok_b, "--permutations", "-1"], "permutations >= 0"),
    }


BAD_CASES = [
    "mismatched-n", "nan", "inf", "two-rows", "missing-file", "unreadable-file", "npz-with-two-arrays", "object-array",
    "object-array-in-npz", "truncated-file", "complex-array", "three-dimensional", "bad-pool", "negative-permutations",
    "half-spectrum-of-rows", "labels-of-another-length", "labels-one-class", "labels-lone-pair", "labels-not-integer",
    "negative-bootstrap",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case):
    argv, message = _bad_inputs(tmp_path)[case]
    code = main(["correlate", *argv])  # every case fails before any metric is computed
    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    assert out.err.count("\n") == 1 and out.err.startswith("error: ")
    assert re.search(message, out.err), out.err


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "message"),
    [
        (np.ones((5, 3)), np.ones((5, 3)), {"pool": "median"}, "expected pool in"),
        (np.ones((5, 3)), [[1.0] * 3] * 5, {}, "numpy array or torch tensor"),
        (np.array([["x"] * 3] * 5), np.ones((5, 3)), {}, "real numbers"),
    ],
    ids=["unknown-pool", "list-input", "string-array"],
)
def test_correlate_rejects_bad_arguments(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        correlate(a, b, permutations=2, **kwargs)


def test_lenient_correlate_keeps_cosines_of_degenerate_maps():
    """Identical rows break TwoNN (distance 0 everywhere): strict raises, lenient keeps the cosines."""
    import numpy as np
    import pytest

    from core.metrics.correlate import correlate

    a = np.ones((6, 12), np.float32)
    b = np.ones((6, 12), np.float32)
    b[:, 0] = 0.5
    with pytest.raises(ValueError):
        correlate(a, b, permutations=3)
    result = correlate(a, b, permutations=3, strict=False, repairings=2)
    expected = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    np.testing.assert_allclose(result["cosine_values"], expected, rtol=1e-6)
    assert result["idcor"] is None and result["p_value"] is None and "idcor" in result["errors"]
    assert result["null_ids"] == []


def test_different_widths_give_svcca_cka_idcor_and_no_cosine(tmp_path, capsys):
    """(60, 12) against (60, 5): every width-free metric equals its own reference; cosine is null with a note."""
    from core.metrics import idcor, linear_cka, svcca

    a, b = paired_maps()
    narrow = b[:, :5]
    assert main(["correlate", save(tmp_path, "a.npy", a), save(tmp_path, "n.npy", narrow), "--permutations", "7", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    ta, tb = torch.from_numpy(a), torch.from_numpy(narrow)
    assert result["svcca"] == pytest.approx(svcca(ta, tb), rel=1e-12)
    assert result["cka"] == pytest.approx(linear_cka(ta, tb), rel=1e-12)
    reference = idcor(ta, tb, permutations=7, seed=0)
    assert (result["idcor"], result["p_value"]) == pytest.approx((reference.idcor, reference.p_value), rel=1e-12)
    assert result["cosine_mean"] is None and result["cosine_values"] == [] and "same shape" in result["cosine_note"]
    assert (result["dim"], result["dim_a"], result["dim_b"]) == (None, 12, 5)
    assert main(["correlate", save(tmp_path, "a.npy", a), save(tmp_path, "n.npy", narrow), "--permutations", "3",
                 "--repairings", "2", "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    assert "features D = 12 (A), 5 (B)" in out and "cosine: n/a" in out


def test_statistics_flags_add_their_keys_and_table_lines(tmp_path, capsys):
    a, b = paired_maps(n=60, shape=(3, 4, 4))
    labels = save(tmp_path, "labels.npy", np.arange(60) % 3)
    argv = ["correlate", save(tmp_path, "a.npy", a), save(tmp_path, "b.npy", b), "--permutations", "10",
            "--repairings", "2", "--bootstrap", "20", "--labels", labels, "--half-spectrum", "--power"]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = correlate(a, b, permutations=10, repairings=2, bootstrap=20, labels=np.arange(60) % 3,
                         half_spectrum=True, cka=True, power=True)
    for key in ("cosine_mean_ci", "svcca_ci", "idcor_ci", "p_value_within_class", "within_class_repaired_cosine_mean",
                "within_class_repaired_svcca_std", "cka", "repaired_cka_mean", "dim"):
        assert result[key] == pytest.approx(expected[key], rel=1e-12), key
    assert result["dim"] == 3 * (16 + 4) // 2 and result["power"]["sizes"] == expected["power"]["sizes"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for text in ("95% interval", "IdCor within classes: p = ", "re-paired within classes", "half spectrum",
                 "IdCor against the number of pairs", "half-sampling, 20 subsets of 30 of 60 pairs"):
        assert text in out, text
    low, high = result["cosine_mean_ci"]
    assert f"[{low:.4f}, {high:.4f}]" in out


def test_bootstrap_without_a_count_uses_the_default():
    from core.metrics.bootstrap import DEFAULT_RESAMPLES
    from precompute.cli import build_parser

    args = build_parser().parse_args(["correlate", "a.npy", "b.npy", "--bootstrap"])
    assert args.bootstrap == DEFAULT_RESAMPLES
    assert build_parser().parse_args(["correlate", "a.npy", "b.npy"]).bootstrap == 0
