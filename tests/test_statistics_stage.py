"""The statistics stage and the noise ceiling against direct core.metrics calls on the same pairs, and the
compact maps of results-only copies against the maps they encode."""

from __future__ import annotations

import glob
import os
import shutil

import numpy as np
import pytest
import torch

from core.metrics.correlate import correlate, null_idcor_median
from core.metrics.power import default_sizes, idcor_power_curve
from experiments.compact_maps import CompactMaps, encode_maps
from experiments.format import ESSENTIAL, ESSENTIAL_REPEAT, STATUS_KEPT, adversarial_set, statistics_stage
from experiments.reader import Experiment
from precompute.cli import main
from precompute.report_cmd import build_report
from precompute.stages.correlations import paired_maps
from tests.fake_experiment import write_fake_experiment
from tests.fake_statistics import SMALL, add_noise_ceiling, add_statistics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = glob.glob(os.path.join(REPO, "assets", "demo", "*"))[0]


@pytest.fixture(scope="module")
def with_statistics(tmp_path_factory):
    """A fake experiment of 40 images (about 9 pairs per class) with its statistics and noise ceiling."""
    path = write_fake_experiment(str(tmp_path_factory.mktemp("stats")), n=40)
    ctx = add_statistics(path)
    add_noise_ceiling(path)
    return path, ctx


def direct(ctx, key: str, half_spectrum: bool) -> dict:
    """correlate() on the stage's pairs with the stage's settings, called directly."""
    positions, essential, adversarial = paired_maps(ctx.store, ESSENTIAL, adversarial_set(key), ctx.config.pool)
    labels = ctx.array("test", "labels")[positions]
    return correlate(essential, adversarial, permutations=SMALL["permutations"], seed=ctx.stage_seed("correlate", key),
                     repairings=SMALL["repairings"], strict=False, bootstrap=SMALL["bootstrap"], labels=labels,
                     cka=True, half_spectrum=half_spectrum)


@pytest.mark.parametrize("key", ["fmn", "pgd-8"])
def test_statistics_equal_a_direct_core_metrics_call(with_statistics, key):
    path, ctx = with_statistics
    stats = Experiment(path).statistics(key)
    for name, half in (("full", False), ("half_spectrum", True)):
        expected = direct(ctx, key, half)
        assert null_idcor_median(expected) == stats[name]["shuffled_idcor_median"]
        for dropped in ("cosine_values", "null_ids", "errors"):
            expected.pop(dropped, None)
        assert {k: v for k, v in stats[name].items() if k != "shuffled_idcor_median"} == expected  # exact
        assert expected["cosine_mean_ci"][0] <= expected["cosine_mean"] <= expected["cosine_mean_ci"][1]
        assert expected["p_value_within_class"] is not None and expected["cka"] is not None
    for metric, delta in stats["half_spectrum_delta"].items():
        assert delta == stats["half_spectrum"][metric] - stats["full"][metric]
    assert set(stats["half_spectrum_delta"]) >= {"cosine_mean", "cka", "idcor", "p_value_within_class"}


def test_statistics_agree_with_table_i_and_the_power_curve(with_statistics):
    """Same pairs, seed and permutations as the correlation stage: its n and p are Table I's; the power curve
    is core.metrics.power's on the same rows, from min(50, N) pairs up to all of them."""
    path, ctx = with_statistics
    experiment = Experiment(path)
    positions, essential, adversarial = paired_maps(ctx.store, ESSENTIAL, adversarial_set("fmn"), "avg")
    stats = experiment.statistics("fmn")
    assert stats["n"] == len(positions) == experiment.correlation("fmn")["n"]
    rows = [torch.from_numpy(x.astype(np.float64)).flatten(1) for x in (essential, adversarial)]
    curve = idcor_power_curve(*rows, sizes=default_sizes(len(positions), SMALL["power_sizes"]),
                              repeats=SMALL["power_repeats"], permutations=SMALL["permutations"],
                              seed=ctx.stage_seed("correlate", "fmn"))
    power = stats["power"]
    np.testing.assert_array_equal(power["sizes"], curve["sizes"])
    np.testing.assert_array_equal(power["p_values"], np.asarray(curve["p_values"]))
    np.testing.assert_array_equal(power["idcor"], np.asarray(curve["idcor"]))
    assert power["pairs_needed"] == curve["pairs_needed"] and power["sizes"][-1] == len(positions)
    assert experiment.stage(statistics_stage("fmn"))["n"] == len(positions)


def test_noise_ceiling_is_the_correlation_of_the_two_trainings(with_statistics):
    path, ctx = with_statistics
    ceiling = Experiment(path).noise_ceiling()
    positions, first, second = paired_maps(ctx.store, ESSENTIAL, ESSENTIAL_REPEAT, "avg")
    expected = correlate(first, second, permutations=SMALL["permutations"], seed=ctx.stage_seed("noise-ceiling"),
                         repairings=SMALL["repairings"], strict=False, cka=True)
    for key in ("n", "cosine_mean", "svcca", "cka", "idcor", "p_value", "repaired_cka_mean"):
        assert ceiling[key] == expected[key], key
    np.testing.assert_array_equal(ceiling["cosine"], np.asarray(expected["cosine_values"], np.float32))
    assert (ceiling["kept_first_only"], ceiling["kept_repeat_only"]) == (1, 0)
    assert ceiling["fold_batchnorm"] is True and ceiling["repeat_fold_batchnorm"] is False


def test_noise_ceiling_trains_the_repeat_with_batchnorm_flipped(tmp_path, monkeypatch):
    """The repeat goes through the maps stage's trainer with fold_batchnorm flipped, under its own map-set name."""
    import precompute.stages.noise_ceiling as ceiling_module
    from tests.fake_statistics import fake_context, write_repeat_maps

    path = write_fake_experiment(str(tmp_path), n=12)
    calls = []
    monkeypatch.setattr(ceiling_module, "run_map_stage",
                        lambda ctx, name, key: calls.append((ctx.config.fold_batchnorm, name, key)))
    write_repeat_maps(path)
    for fold in (True, False):
        ceiling_module.run_noise_ceiling_stages(fake_context(path, fold_batchnorm=fold))
    assert calls == [(False, ESSENTIAL_REPEAT, None), (True, ESSENTIAL_REPEAT, None)]


def test_report_prints_the_statistics_and_the_ceiling(with_statistics):
    path, _ = with_statistics
    experiment = Experiment(path)
    report = build_report(experiment)
    full = experiment.statistics("fmn")["full"]
    low, high = full["idcor_ci"]
    assert "## Table I with uncertainty and stronger baselines" in report
    row = next(line for line in report.splitlines() if line.startswith("| FMN | ") and "[" in line)
    assert f"{full['idcor']:.2f} [{low:.2f}, {high:.2f}]" in row and f"| {full['p_value_within_class']:.3f} |" in row
    assert f"| {full['cka']:.2f} |" in row
    delta = experiment.statistics("fmn")["half_spectrum_delta"]["cka"]
    assert f"({delta:+.2f})" in report and "**Noise ceiling**" in report
    assert f"N = {experiment.noise_ceiling()['n']}" in report


def test_report_without_statistics_is_unchanged():
    """Experiments without the stage get no new section (the shipped ones: their report stays as it was)."""
    assert "uncertainty" not in build_report(Experiment(DEMO))


def test_statistics_stage_survives_too_few_pairs(tmp_path):
    """6 images: 4 or fewer pairs and classes of one pair: intervals and within-class nulls say why, no crash."""
    path = write_fake_experiment(str(tmp_path))
    add_statistics(path)
    stats = Experiment(path).statistics("fmn")
    assert stats["n"] == 4 and set(stats["errors"]) >= {"bootstrap", "within_class"}
    assert "expected at least 4 pairs" in stats["errors"]["bootstrap"] or "subsample" in stats["errors"]["bootstrap"]
    assert stats["full"]["cosine_mean"] is not None and "cosine_mean_ci" not in stats["full"]


# ---------- compact maps ----------

def test_compact_encoding_round_trips_the_demo_maps_bit_for_bit():
    demo = Experiment(DEMO)
    for name in demo.map_set_names():
        maps = np.asarray(demo.map_set(name)["maps"])  # (M, 3, 32, 32) float32
        compact = CompactMaps(*encode_maps(maps, block=7).values())  # several blocks
        expected = maps.astype(np.float16)
        assert np.array_equal(np.asarray(compact).view(np.uint16), expected.view(np.uint16))
        rows = np.array([3, 0, len(maps) - 1])
        assert np.array_equal(compact[rows].view(np.uint16), expected[rows].view(np.uint16))
        assert np.array_equal(compact[-1], expected[-1]) and compact[2:5].shape == (3, 3, 32, 32)
        nonzero = int((expected.view(np.uint16) != 0).sum())
        assert compact.values.size == nonzero < maps.size // 10  # sparse: under a tenth of the entries


def test_reader_returns_the_same_maps_from_a_compact_copy(tmp_path, capsys):
    copy = str(tmp_path / os.path.basename(DEMO))
    shutil.copytree(DEMO, copy)
    assert main(["prune", copy, "--drop", "images", "maps", "train", "--compact-maps"]) == 0
    assert "kept 4 map sets as compact maps" in capsys.readouterr().out
    full, compact = Experiment(DEMO), Experiment(copy)  # verified: checksums of the new arrays recorded
    assert compact.results_only and not compact.maps_dropped and compact.has_maps(ESSENTIAL)
    assert not any(p.startswith("maps/") and p.endswith("/maps.npy") for p in compact.manifest["arrays"])
    for name in full.map_set_names():
        for i in range(full.n):
            dense, status = full.image_map(name, i)
            decoded, decoded_status = compact.image_map(name, i)
            assert status == decoded_status
            if dense is None:
                assert decoded is None
            else:
                np.testing.assert_array_equal(decoded, dense.astype(np.float16).astype(np.float32))
    positions, essential, _ = paired_maps(compact.store, ESSENTIAL, adversarial_set("fmn"), "avg")
    assert len(positions) == full.correlation("fmn")["n"] and essential.dtype == np.float32


@pytest.mark.parametrize(("argv", "message"), [
    (["prune", "{dir}", "--drop", "train", "--compact-maps"], "expected --compact-maps together with --drop maps"),
    (["run", "--bootstrap", "-1", "--limit", "2"], "expected --bootstrap >= 0, got -1"),
    (["run", "--power-sizes", "1", "--limit", "2"], "expected --power-sizes >= 2, got 1"),
], ids=["compact-without-drop-maps", "negative-bootstrap", "one-power-size"])
def test_bad_statistics_options_are_one_line(argv, message, tmp_path, capsys):
    copy = str(tmp_path / "copy")
    shutil.copytree(DEMO, copy)
    out = ["--out", str(tmp_path / "out")] if argv[0] == "run" else []
    assert main([word.replace("{dir}", copy) for word in argv] + out) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists() and "compact_values" not in open(os.path.join(copy, "manifest.json")).read()


def test_kept_status_is_what_the_pairs_use(with_statistics):
    path, ctx = with_statistics
    experiment = Experiment(path)
    status = [np.asarray(experiment.map_set(n)["status"]) for n in (ESSENTIAL, adversarial_set("fmn"))]
    both = np.flatnonzero((status[0] == STATUS_KEPT) & (status[1] == STATUS_KEPT))
    np.testing.assert_array_equal(experiment.correlation("fmn")["positions"], both)
